//! The HTTP side of the gateway: one pooled reqwest client (rustls) for the
//! plain endpoints and one carrying the merchant's certificate for `/secapi/`.
//! Whatever goes wrong on the way comes back as [`Unclear`]: never a success,
//! never a definite failure.
//!
//! The gateway is not trusted to behave: redirects are never followed (a
//! re-sent micropay would carry the customer's payment code to another host),
//! and no answer is read past [`MAX_BODY`] bytes (the daily bill: past
//! [`MAX_BILL_BODY`]) or past the request's deadline, so a hostile or broken
//! server cannot exhaust a small till.

use std::time::Duration;

use super::api::{Answer, Merchant, Unclear};
use super::sign::{ApiKey, sign_request};
use super::xml::{self, Fields, MAX_BODY};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Micropay,
    OrderQuery,
    Reverse,
    /// 申请退款: mutual TLS, like reverse.
    Refund,
    RefundQuery,
    /// The daily bill: CSV text (or gzip) on success, not XML.
    DownloadBill,
    /// WeChat's sandbox: fetches the key sandbox requests are signed with.
    SandboxSignKey,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Micropay => "/pay/micropay",
            Endpoint::OrderQuery => "/pay/orderquery",
            Endpoint::Reverse => "/secapi/pay/reverse",
            Endpoint::Refund => "/secapi/pay/refund",
            Endpoint::RefundQuery => "/pay/refundquery",
            Endpoint::DownloadBill => "/pay/downloadbill",
            Endpoint::SandboxSignKey => "/pay/getsignkey",
        }
    }

    fn needs_certificate(self) -> bool {
        matches!(self, Endpoint::Reverse | Endpoint::Refund)
    }
}

/// The largest daily bill read. XML answers stop at [`MAX_BODY`] (64 KiB),
/// far too small for a bill: a busy day of 2 000 orders is about 600 KB of
/// text, a month's legacy export more; 64 MiB leaves room and still bounds
/// a hostile server.
pub const MAX_BILL_BODY: usize = 64 * 1024 * 1024;

/// The least time a bill download is given, whatever `read_timeout` (made
/// for small XML answers) says: a bill of many MiB takes longer to arrive.
pub const BILL_TIMEOUT: Duration = Duration::from_secs(60);

/// The path prefix of WeChat's old sandbox.
pub const SANDBOX_PREFIX: &str = "/sandboxnew";

#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub base_url: String,
    pub sandbox: bool,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    /// The merchant's apiclient certificate and key, PEM, concatenated.
    pub client_identity_pem: Option<Vec<u8>>,
    /// Roots to trust besides the system's, PEM (`gateway.extra_ca_file`): for
    /// a TLS-inspecting proxy, or a test gateway with its own CA.
    pub extra_root_pem: Option<Vec<u8>>,
    /// Sent as `Wechatpay-Negative-Test` to pick a sandbox error case.
    pub negative_test: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "merchant.client_cert / merchant.client_key are not a usable PEM certificate and private key ({0}); download apiclient_cert.pem and apiclient_key.pem again from the merchant platform"
    )]
    Identity(String),
    #[error(
        "gateway.extra_ca_file is not a PEM bundle of CA certificates ({0}); it must hold -----BEGIN CERTIFICATE----- blocks (convert a DER file with `openssl x509 -inform der -in ca.cer -out ca.pem`)"
    )]
    ExtraRoots(String),
    #[error("could not set up the HTTPS client: {0}")]
    Setup(String),
}

#[derive(Debug, Clone)]
pub struct GatewayClient {
    plain: reqwest::Client,
    with_certificate: Option<reqwest::Client>,
    base_url: String,
    prefix: &'static str,
    negative_test: Option<String>,
    read_timeout: Duration,
}

/// Whether `url` names this machine: an IP in 127.0.0.0/8, `::1`, or
/// exactly `localhost`. The parser has already normalised the host (`127.1`
/// reads as 127.0.0.1, names in lower case); an IPv4-mapped IPv6 address
/// (`::ffff:a.b.c.d`) is not loopback here.
pub fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or("");
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>()
            .is_ok_and(|ip| ip.is_loopback())
    } else if let Ok(v4) = host.parse::<std::net::Ipv4Addr>() {
        v4.is_loopback()
    } else {
        host == "localhost"
    }
}

impl GatewayClient {
    pub fn new(settings: &ClientSettings) -> Result<Self, ClientError> {
        // A gateway on this machine (the simulator, a test) is reached
        // directly: an HTTP(S)_PROXY from the environment must not carry
        // its traffic, or a test's, anywhere else.
        let direct = reqwest::Url::parse(&settings.base_url).is_ok_and(|url| is_loopback(&url));
        let roots = match &settings.extra_root_pem {
            Some(pem) => extra_roots(pem)?,
            None => Vec::new(),
        };
        let builder = || {
            let builder = reqwest::Client::builder();
            let builder = if direct { builder.no_proxy() } else { builder };
            builder
                .tls_certs_merge(roots.iter().cloned())
                .connect_timeout(settings.connect_timeout)
                // A total deadline: reqwest applies it from connecting until
                // the last byte of the body, so a server trickling an answer
                // cannot hold a payment longer than this.
                .timeout(settings.read_timeout)
                // A 3xx is an answer, never a reason to send the signed
                // request (and the payment code in it) somewhere else.
                .redirect(reqwest::redirect::Policy::none())
                .pool_idle_timeout(Duration::from_secs(90))
                .user_agent(concat!("scanpay/", env!("CARGO_PKG_VERSION")))
        };
        let plain = builder()
            .build()
            .map_err(|e| ClientError::Setup(chain(&e)))?;
        let with_certificate = match &settings.client_identity_pem {
            Some(pem) => {
                let identity = reqwest::Identity::from_pem(pem)
                    .map_err(|e| ClientError::Identity(chain(&e)))?;
                Some(
                    builder()
                        .identity(identity)
                        .build()
                        .map_err(|e| ClientError::Identity(chain(&e)))?,
                )
            }
            None => None,
        };
        Ok(Self {
            plain,
            with_certificate,
            base_url: settings.base_url.trim_end_matches('/').to_string(),
            prefix: if settings.sandbox { SANDBOX_PREFIX } else { "" },
            negative_test: settings.negative_test.clone(),
            read_timeout: settings.read_timeout,
        })
    }

    pub fn url(&self, endpoint: Endpoint) -> String {
        format!("{}{}{}", self.base_url, self.prefix, endpoint.path())
    }

    /// Posts signed `fields` and decodes the answer. Classification (and the
    /// signature check) is the caller's: this only says whether an answer came.
    pub async fn post(&self, endpoint: Endpoint, fields: &Fields) -> Answer {
        let client = match (endpoint.needs_certificate(), &self.with_certificate) {
            (true, Some(client)) => client,
            _ => &self.plain,
        };
        let mut request = client
            .post(self.url(endpoint))
            .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .body(xml::encode(fields));
        if let Some(case) = &self.negative_test {
            request = request.header("Wechatpay-Negative-Test", case);
        }
        let body = self.answer(endpoint, request, MAX_BODY).await?;
        Ok(xml::decode(&body)?)
    }

    /// Sends `request` and reads a successful answer's body up to `cap`; a
    /// redirect, an HTTP error page or a transport failure is unclear.
    async fn answer(
        &self,
        endpoint: Endpoint,
        request: reqwest::RequestBuilder,
        cap: usize,
    ) -> Result<Vec<u8>, Unclear> {
        let response = request
            .send()
            .await
            .map_err(|e| self.transport(endpoint, &e))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(redirect(endpoint, &response));
        }
        if !status.is_success() {
            // The page only feeds a short snippet: a huge one is not read.
            let body = self
                .read_capped(endpoint, response, MAX_BODY)
                .await
                .unwrap_or_default();
            return Err(http_error(endpoint, status.as_u16(), &body));
        }
        self.read_capped(endpoint, response, cap).await
    }

    /// Posts a signed downloadbill request ([`super::api::download_bill_request`])
    /// and returns the answer's raw bytes: the bill's CSV text, gzipped or not,
    /// or WeChat's XML failure — [`super::bill::classify_download`] tells
    /// which. Read up to [`MAX_BILL_BODY`], within the larger of the read
    /// timeout and [`BILL_TIMEOUT`].
    pub async fn download_bill(&self, fields: &Fields) -> Result<Vec<u8>, Unclear> {
        let endpoint = Endpoint::DownloadBill;
        let request = self
            .plain
            .post(self.url(endpoint))
            .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .timeout(self.read_timeout.max(BILL_TIMEOUT))
            .body(xml::encode(fields));
        self.answer(endpoint, request, MAX_BILL_BODY).await
    }

    /// The body, refused before reading when it announces more than `cap`
    /// bytes ([`MAX_BODY`] for XML answers), and read chunk by chunk up to
    /// that limit otherwise (a chunked or close-delimited answer announces
    /// nothing). The request's total deadline bounds the time spent here.
    async fn read_capped(
        &self,
        endpoint: Endpoint,
        mut response: reqwest::Response,
        cap: usize,
    ) -> Result<Vec<u8>, Unclear> {
        if let Some(length) = response.content_length()
            && length > cap as u64
        {
            return Err(Unclear::Untrusted(format!(
                "the answer from {} announces {length} bytes, more than the {cap} accepted; it was not read",
                endpoint.path()
            )));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport(endpoint, &e))?
        {
            if body.len() + chunk.len() > cap {
                return Err(Unclear::Untrusted(format!(
                    "the answer from {} is longer than the {cap} bytes accepted; reading stopped there",
                    endpoint.path()
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Fetches the sandbox signing key (`/sandboxnew/pay/getsignkey`), signed
    /// with the real key as WeChat requires.
    pub async fn sandbox_sign_key(&self, merchant: &Merchant) -> Result<ApiKey, String> {
        let mut fields = Fields::new();
        fields
            .set("mch_id", merchant.mch_id.as_str())
            .set("nonce_str", super::api::nonce());
        sign_request(&mut fields, &merchant.key, super::SignType::Md5);
        let answer = self
            .post(Endpoint::SandboxSignKey, &fields)
            .await
            .map_err(|e| e.to_string())?;
        match (answer.get("return_code"), answer.get("sandbox_signkey")) {
            (Some("SUCCESS"), Some(key)) if !key.is_empty() => Ok(ApiKey::new(key)),
            _ => Err(format!(
                "the sandbox refused to give a signing key: {}",
                answer.get("return_msg").unwrap_or("no reason given")
            )),
        }
    }

    /// `scanpay check`: posts an unsigned, empty `<xml></xml>` to
    /// `/secapi/pay/reverse` with the client certificate. WeChat refuses the
    /// body unread (it is not signed), so nothing is reversed; what matters is
    /// whether the TLS handshake with the certificate succeeds and the
    /// certificate is accepted.
    pub async fn probe_certificate(&self) -> CertificateProbe {
        let Some(client) = &self.with_certificate else {
            return CertificateProbe::NotConfigured;
        };
        if !self.base_url.starts_with("https://") {
            return CertificateProbe::NoTls;
        }
        let sent = client
            .post(self.url(Endpoint::Reverse))
            .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .body("<xml></xml>")
            .send()
            .await;
        match sent {
            Ok(response) => CertificateProbe::Answered {
                status: response.status().as_u16(),
            },
            Err(e) => CertificateProbe::Failed(self.transport(Endpoint::Reverse, &e).to_string()),
        }
    }

    fn transport(&self, endpoint: Endpoint, e: &reqwest::Error) -> Unclear {
        // Connecting comes before writing: a connect error (refused, DNS,
        // a connect timeout, a failed TLS handshake) means no byte of the
        // request left. A pooled connection that died fails later, as a
        // request error, and stays unclear.
        if e.is_connect() {
            let cause = chain(e);
            // The operator's fix for an untrusted gateway is a setting, so name it.
            let hint = if cause.contains("certificate") {
                " (a TLS-inspecting proxy? trust its CA with gateway.extra_ca_file)"
            } else {
                ""
            };
            return Unclear::Unreachable(format!(
                "could not connect to {}: {cause}{hint}",
                self.base_url
            ));
        }
        let what = if e.is_timeout() {
            let deadline = match endpoint {
                Endpoint::DownloadBill => self.read_timeout.max(BILL_TIMEOUT),
                _ => self.read_timeout,
            };
            format!(
                "no answer from {} within {} ms",
                endpoint.path(),
                deadline.as_millis()
            )
        } else if e.is_body() || e.is_decode() {
            format!(
                "the answer from {} was cut off: {}",
                endpoint.path(),
                chain(e)
            )
        } else {
            format!("{} failed: {}", endpoint.path(), chain(e))
        };
        Unclear::Transport(what)
    }
}

/// What `/secapi/` made of the client certificate (see
/// [`GatewayClient::probe_certificate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateProbe {
    /// No client certificate is configured (a loopback gateway needs none).
    NotConfigured,
    /// The gateway is plain http: no TLS, so nothing to prove.
    NoTls,
    /// The TLS handshake with the certificate succeeded and the server
    /// answered with this HTTP status (an HTML 400 is WeChat refusing the
    /// certificate after the handshake, see [`http_error`]).
    Answered { status: u16 },
    /// No answer: the handshake (or the connection) failed, in these words.
    Failed(String),
}

/// The certificates of a PEM bundle. Text that is not PEM reads as no
/// certificate at all rather than an error, so none is an error here.
pub fn extra_roots(pem: &[u8]) -> Result<Vec<reqwest::Certificate>, ClientError> {
    let roots = reqwest::Certificate::from_pem_bundle(pem)
        .map_err(|e| ClientError::ExtraRoots(chain(&e)))?;
    if roots.is_empty() {
        return Err(ClientError::ExtraRoots("no certificate in it".into()));
    }
    Ok(roots)
}

/// A 3xx answer, which is not followed. The message names where it pointed
/// by host only: a Location's path and query may carry anything.
fn redirect(endpoint: Endpoint, response: &reqwest::Response) -> Unclear {
    let status = response.status().as_u16();
    let target = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|location| response.url().join(location).ok())
        .and_then(|url| {
            let host = url.host_str()?.to_string();
            Some(match url.port() {
                Some(port) => format!("{}://{host}:{port}", url.scheme()),
                None => format!("{}://{host}", url.scheme()),
            })
        })
        .unwrap_or_else(|| "no usable Location".to_string());
    tracing::error!(
        status,
        target = %target,
        "the gateway answered {} with a redirect, which is not followed: check gateway.base_url",
        endpoint.path()
    );
    Unclear::Transport(format!(
        "HTTP {status} from {}: a redirect to {target}, not followed (check gateway.base_url)",
        endpoint.path()
    ))
}

/// A non-200 answer. On `/secapi/` an HTML 400 is WeChat refusing the client
/// certificate: the order is merely unclear, but the operator must hear of it.
fn http_error(endpoint: Endpoint, status: u16, body: &[u8]) -> Unclear {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    let snippet: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if endpoint.needs_certificate() && status == 400 {
        tracing::error!(
            status,
            "the gateway refused the client certificate on {}: check merchant.client_cert and merchant.client_key",
            endpoint.path()
        );
        return Unclear::Transport(format!(
            "HTTP 400 from {}: the client certificate was refused (check merchant.client_cert and merchant.client_key)",
            endpoint.path()
        ));
    }
    Unclear::Transport(format!("HTTP {status} from {}: {snippet}", endpoint.path()))
}

/// An error with its causes, which is where reqwest keeps the useful part.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_paths_carry_the_prefix() {
        let settings = ClientSettings {
            base_url: "http://127.0.0.1:1/".into(),
            sandbox: true,
            connect_timeout: Duration::from_millis(100),
            read_timeout: Duration::from_millis(100),
            client_identity_pem: None,
            extra_root_pem: None,
            negative_test: None,
        };
        let client = GatewayClient::new(&settings).unwrap();
        assert_eq!(
            client.url(Endpoint::Reverse),
            "http://127.0.0.1:1/sandboxnew/secapi/pay/reverse"
        );
        let live = GatewayClient::new(&ClientSettings {
            sandbox: false,
            ..settings
        })
        .unwrap();
        assert_eq!(
            live.url(Endpoint::Micropay),
            "http://127.0.0.1:1/pay/micropay"
        );
    }

    #[test]
    fn a_certificate_that_is_not_pem_is_a_configuration_error() {
        let settings = ClientSettings {
            base_url: "https://api.mch.weixin.qq.com".into(),
            sandbox: false,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            client_identity_pem: Some(b"not a certificate".to_vec()),
            extra_root_pem: None,
            negative_test: None,
        };
        let err = GatewayClient::new(&settings).unwrap_err();
        assert!(err.to_string().contains("merchant.client_cert"), "{err}");
    }

    #[test]
    fn an_html_400_on_secapi_names_the_certificate() {
        let unclear = http_error(
            Endpoint::Reverse,
            400,
            b"<html><body>400 Bad Request</body></html>",
        );
        assert!(
            unclear.to_string().contains("client certificate"),
            "{unclear}"
        );
        let other = http_error(
            Endpoint::Micropay,
            502,
            b"<html>\n<body>502 Bad Gateway</body></html>",
        );
        assert_eq!(
            other,
            Unclear::Transport(
                "HTTP 502 from /pay/micropay: <html> <body>502 Bad Gateway</body></html>".into()
            )
        );
    }
}
