//! Mutual TLS in a real handshake. A local HTTPS gateway with a CA of its own
//! refuses, like WeChat's `/secapi/`, any connection that does not present a
//! client certificate from that CA; it refuses `/pay/*` the same way, so a
//! payment that gets through would prove the till sends its certificate
//! where it should not. Every certificate is generated here, at test time.

use std::convert::Infallible;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CertifiedIssuer, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, PKCS_RSA_SHA256, RsaKeySize,
};
use scanpay::config::Settings;
use scanpay::wechat::Fields;
use scanpay::wechat::api::Unclear;
use scanpay::wechat::client::{ClientSettings, Endpoint, GatewayClient};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig, crypto};

const ANSWER: &str = "<xml><return_code><![CDATA[SUCCESS]]></return_code><result_code><![CDATA[SUCCESS]]></result_code><recall><![CDATA[N]]></recall></xml>";

type Ca = CertifiedIssuer<'static, KeyPair>;

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A certificate and its key, signed by a CA.
struct Leaf {
    cert: Certificate,
    key: KeyPair,
}

impl Leaf {
    fn new(ca: &Ca, names: &[&str], usage: ExtendedKeyUsagePurpose, key: KeyPair) -> Self {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, &names[0]);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, ca).unwrap();
        Self { cert, key }
    }

    /// What merchant.client_cert and merchant.client_key hold: WeChat's
    /// apiclient_key.pem is an RSA key in PKCS#8.
    fn merchant(ca: &Ca) -> Self {
        let key = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048).unwrap();
        Self::new(
            ca,
            &["1900000109"],
            ExtendedKeyUsagePurpose::ClientAuth,
            key,
        )
    }

    /// apiclient_cert.pem and apiclient_key.pem, concatenated as the
    /// configuration does.
    fn identity_pem(&self) -> Vec<u8> {
        format!("{}\n{}", self.cert.pem(), self.key.serialize_pem()).into_bytes()
    }
}

/// What the gateway saw of one connection.
#[derive(Debug)]
enum Seen {
    Request {
        path: String,
        client_cert: Option<CertificateDer<'static>>,
    },
    /// The handshake failed, in rustls's words.
    Refused(String),
}

struct Gateway {
    url: String,
    seen: mpsc::UnboundedReceiver<Seen>,
}

impl Gateway {
    /// Serves on 127.0.0.1 with a certificate from `ca`, and requires every
    /// client to present one from `ca` too.
    async fn start(ca: &Ca) -> Self {
        let provider = Arc::new(crypto::aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider.clone())
            .build()
            .unwrap();
        let server = Leaf::new(
            ca,
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
            KeyPair::generate().unwrap(),
        );
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![server.cert.der().clone()],
                PrivatePkcs8KeyDer::from(server.key.serialize_der()).into(),
            )
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let (tx, seen) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let tls = match acceptor.accept(tcp).await {
                        Ok(tls) => tls,
                        Err(e) => {
                            let _ = tx.send(Seen::Refused(e.to_string()));
                            return;
                        }
                    };
                    let client_cert = tls.get_ref().1.peer_certificates().map(|c| c[0].clone());
                    let answer = service_fn(move |request: Request<Incoming>| {
                        let _ = tx.send(Seen::Request {
                            path: request.uri().path().to_string(),
                            client_cert: client_cert.clone(),
                        });
                        async { Ok::<_, Infallible>(Response::new(ANSWER.to_string())) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), answer)
                        .await;
                });
            }
        });
        Self { url, seen }
    }

    async fn next(&mut self) -> Seen {
        tokio::time::timeout(Duration::from_secs(5), self.seen.recv())
            .await
            .expect("the gateway saw a connection")
            .unwrap()
    }
}

fn client(url: &str, extra_root: Option<&Ca>, merchant: &Leaf) -> GatewayClient {
    GatewayClient::new(&ClientSettings {
        base_url: url.to_string(),
        sandbox: false,
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
        client_identity_pem: Some(merchant.identity_pem()),
        extra_root_pem: extra_root.map(|ca| ca.pem().into_bytes()),
        negative_test: None,
    })
    .unwrap()
}

fn fields() -> Fields {
    let mut fields = Fields::new();
    fields.set("out_trade_no", "T0120261122140307000012");
    fields
}

/// A failure to get an answer: a failed handshake is one the request never
/// left for (unreachable), a rejected one after it an unclear transport error.
fn transport(answer: Result<Fields, Unclear>) -> String {
    match answer {
        Err(Unclear::Transport(text) | Unclear::Unreachable(text)) => text,
        other => panic!("expected a transport failure, got {other:?}"),
    }
}

#[tokio::test]
async fn reverse_presents_the_configured_merchant_certificate() {
    let ca = ca("Test Gateway CA");
    let merchant = Leaf::merchant(&ca);
    let mut gateway = Gateway::start(&ca).await;
    // Through the configuration, as the till loads it.
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let cert = write("apiclient_cert.pem", merchant.cert.pem());
    let key = write("apiclient_key.pem", merchant.key.serialize_pem());
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let roots = write("ca.pem", ca.pem());
    let env = [
        ("SCANPAY_GATEWAY_MODE", "wechat"),
        ("SCANPAY_GATEWAY_BASE_URL", &gateway.url),
        ("SCANPAY_GATEWAY_EXTRA_CA_FILE", &roots),
        ("SCANPAY_MERCHANT_APPID", "wx2421b1c4370ec43b"),
        ("SCANPAY_MERCHANT_MCH_ID", "1900000109"),
        ("SCANPAY_MERCHANT_CLIENT_CERT", &cert),
        ("SCANPAY_MERCHANT_CLIENT_KEY", &key),
        ("SCANPAY_API_KEY", "0123456789abcdef0123456789ABCDEF"),
    ];
    let settings = Settings::load(
        None,
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
    .unwrap();
    let client = GatewayClient::new(&settings.client).unwrap();

    let answer = client.post(Endpoint::Reverse, &fields()).await.unwrap();
    assert_eq!(answer.get("return_code"), Some("SUCCESS"));
    match gateway.next().await {
        Seen::Request { path, client_cert } => {
            assert_eq!(path, "/secapi/pay/reverse");
            assert_eq!(client_cert.as_ref(), Some(merchant.cert.der()));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn pay_and_query_present_no_certificate() {
    let ca = ca("Test Gateway CA");
    let merchant = Leaf::merchant(&ca);
    let mut gateway = Gateway::start(&ca).await;
    let client = client(&gateway.url, Some(&ca), &merchant);
    for endpoint in [Endpoint::Micropay, Endpoint::OrderQuery] {
        transport(client.post(endpoint, &fields()).await);
        match gateway.next().await {
            Seen::Refused(why) => assert!(why.contains("no certificates"), "{endpoint:?}: {why}"),
            other => panic!("{endpoint:?}: {other:?}"),
        }
    }
    // The same client and gateway do talk, with the certificate.
    client.post(Endpoint::Reverse, &fields()).await.unwrap();
}

#[tokio::test]
async fn a_gateway_certificate_from_an_unknown_ca_is_not_trusted() {
    let ca = ca("Test Gateway CA");
    let merchant = Leaf::merchant(&ca);
    let mut gateway = Gateway::start(&ca).await;
    let client = client(&gateway.url, None, &merchant);
    let text = transport(client.post(Endpoint::Reverse, &fields()).await);
    // The exact words depend on the platform verifier (and on whether the
    // machine has a system root store); that it is the certificate does not.
    assert!(
        text.contains("certificate") && text.contains("gateway.extra_ca_file"),
        "{text}"
    );
    assert!(matches!(gateway.next().await, Seen::Refused(_)));
}

#[tokio::test]
async fn a_merchant_certificate_from_another_ca_is_refused() {
    let ours = ca("Test Gateway CA");
    let stranger = Leaf::merchant(&ca("Someone Else's CA"));
    let mut gateway = Gateway::start(&ours).await;
    let client = client(&gateway.url, Some(&ours), &stranger);
    transport(client.post(Endpoint::Reverse, &fields()).await);
    match gateway.next().await {
        Seen::Refused(why) => assert!(why.contains("UnknownIssuer"), "{why}"),
        other => panic!("{other:?}"),
    }
}

/// `scanpay check`'s certificate step: a handshake with the merchant's
/// certificate succeeds and is answered; one from another CA fails in the
/// handshake, and the failure says so.
#[tokio::test]
async fn the_certificate_probe_tells_an_accepted_certificate_from_a_refused_one() {
    use scanpay::wechat::client::CertificateProbe;
    let ca = ca("Test Gateway CA");
    let merchant = Leaf::merchant(&ca);
    let mut gateway = Gateway::start(&ca).await;
    let probe = client(&gateway.url, Some(&ca), &merchant)
        .probe_certificate()
        .await;
    assert_eq!(probe, CertificateProbe::Answered { status: 200 });
    match gateway.next().await {
        Seen::Request { path, client_cert } => {
            assert_eq!(path, "/secapi/pay/reverse");
            assert_eq!(client_cert.as_ref(), Some(merchant.cert.der()));
        }
        other => panic!("{other:?}"),
    }
    let stranger = Leaf::merchant(&self::ca("Another CA"));
    match client(&gateway.url, Some(&ca), &stranger)
        .probe_certificate()
        .await
    {
        // `scanpay check` reads the alert as the certificate refused.
        CertificateProbe::Failed(why) => assert!(why.contains("alert"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(gateway.next().await, Seen::Refused(_)));
}
