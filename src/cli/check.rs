//! `scanpay check`: proves a merchant's setup against the configured gateway
//! without moving money, before the first customer finds out.
//!
//! 1. A signed orderquery for an order number that cannot exist (`CHECK` and
//!    random letters). WeChat checks the signature, then the appid and
//!    mch_id, then looks for the order: ORDERNOTEXIST, correctly signed, is a
//!    gateway that took our key, appid and mch_id. A signature complaint
//!    names the key; APPID / MCHID errors name those settings.
//! 2. The client certificate: an unsigned, empty body posted to
//!    `/secapi/pay/reverse` with it. An answer proves the TLS handshake with
//!    the certificate; an HTML 400 is the certificate refused.
//!
//! It opens no journal and writes no file: it may run beside a working till.

use super::{Exit, out};
use crate::config::Settings;
use crate::domain::OutTradeNo;
use crate::wechat::api::{Unclear, nonce, query_request};
use crate::wechat::client::{CertificateProbe, Endpoint, GatewayClient};
use crate::wechat::sign::verify;

/// One finding: `ok`, `FAIL` (with the exit code it earns) or `skip`.
enum Finding {
    Ok(String),
    Fail(Exit, String),
    Skip(String),
}

impl Finding {
    fn print(&self) {
        match self {
            Finding::Ok(text) => out(format_args!("ok   {text}")),
            Finding::Fail(_, text) => out(format_args!("FAIL {text}")),
            Finding::Skip(text) => out(format_args!("skip {text}")),
        }
    }
}

/// Exit 0 when every finding holds; 3 when a setting is wrong; 1 when the
/// gateway could not be reached or gave no verdict.
pub async fn run(mut settings: Settings) -> Exit {
    if settings.is_simulated() {
        Finding::Fail(
            Exit::Config,
            "merchant: none is configured, so scanpay uses its built-in simulator: set merchant.appid, merchant.mch_id and the API key (SCANPAY_API_KEY or merchant.api_key_file), then check again".into(),
        )
        .print();
        return Exit::Config;
    }
    let client = match GatewayClient::new(&settings.client) {
        Ok(client) => client,
        Err(e) => {
            Finding::Fail(Exit::Config, format!("client: {e}")).print();
            return Exit::Config;
        }
    };
    out(format_args!(
        "checking merchant {} (appid {}) at {}",
        settings.merchant.mch_id,
        settings.merchant.appid,
        client.url(Endpoint::OrderQuery)
    ));
    if settings.client.sandbox {
        match client.sandbox_sign_key(&settings.merchant).await {
            Ok(key) => settings.merchant.key = key,
            Err(e) => {
                let finding = Finding::Fail(
                    Exit::Config,
                    format!(
                        "key: the sandbox signing key could not be fetched with the API key: {e}"
                    ),
                );
                finding.print();
                return Exit::Config;
            }
        }
    }
    let findings = [
        identity(&client, &settings).await,
        certificate(&client, &settings).await,
    ];
    let mut exit = Exit::OK;
    for finding in &findings {
        finding.print();
        if let Finding::Fail(code, _) = finding {
            // A wrong setting is the more useful code to act on.
            if exit == Exit::OK || *code == Exit::Config {
                exit = *code;
            }
        }
    }
    exit
}

/// Step 1: the key, appid and mch_id, through a query about no order.
async fn identity(client: &GatewayClient, settings: &Settings) -> Finding {
    let merchant = &settings.merchant;
    let text: String = nonce().chars().take(24).collect();
    let number = OutTradeNo::parse(&format!("CHECK{text}")).expect("29 letters and digits");
    let fields = query_request(merchant, &number, &nonce());
    let answer = match client.post(Endpoint::OrderQuery, &fields).await {
        Ok(answer) => answer,
        Err(Unclear::Transport(why) | Unclear::Unreachable(why)) => {
            return Finding::Fail(
                Exit::Internal,
                format!(
                    "gateway: {why}; check gateway.base_url, the network and any proxy, then check again"
                ),
            );
        }
        Err(other) => {
            return Finding::Fail(
                Exit::Internal,
                format!("gateway: {other}; is gateway.base_url WeChat Pay's API?"),
            );
        }
    };
    let get = |name| answer.get(name).unwrap_or("");
    let key_hint = "copy the API key again from the merchant platform (账户中心 → API安全) into merchant.api_key_file or SCANPAY_API_KEY, and check merchant.sign_type";
    if get("return_code") != "SUCCESS" {
        let msg = get("return_msg");
        let lower = msg.to_ascii_lowercase();
        return if msg.contains("签名") || lower.contains("sign") {
            Finding::Fail(
                Exit::Config,
                format!("key: WeChat Pay refused the signature ({msg}): {key_hint}"),
            )
        } else if lower.contains("appid") {
            Finding::Fail(
                Exit::Config,
                format!(
                    "appid: WeChat Pay refused merchant.appid {} ({msg})",
                    merchant.appid
                ),
            )
        } else if lower.contains("mch_id") || msg.contains("商户号") {
            Finding::Fail(
                Exit::Config,
                format!(
                    "mch_id: WeChat Pay refused merchant.mch_id {} ({msg})",
                    merchant.mch_id
                ),
            )
        } else {
            Finding::Fail(
                Exit::Internal,
                format!("gateway: the query was refused: {msg:?}"),
            )
        };
    }
    if !verify(&answer, &merchant.key, merchant.sign_type) {
        return Finding::Fail(
            Exit::Config,
            format!(
                "key: the gateway's answer is not signed with this API key ({}): {key_hint}",
                merchant.sign_type.wire_name()
            ),
        );
    }
    let (code, description) = (get("err_code"), get("err_code_des"));
    match (get("result_code"), code) {
        ("FAIL", "ORDERNOTEXIST") => Finding::Ok(format!(
            "key, appid, mch_id: a query signed with this key got a correctly signed ORDERNOTEXIST for {number} (appid {} and mch_id {} belong together)",
            merchant.appid, merchant.mch_id
        )),
        ("SUCCESS", _) => Finding::Ok(format!(
            "key, appid, mch_id: a query signed with this key got a correctly signed answer for {number}"
        )),
        (_, "SIGNERROR") => Finding::Fail(
            Exit::Config,
            format!("key: WeChat Pay refused the signature ({description}): {key_hint}"),
        ),
        (_, "APPID_NOT_EXIST") => Finding::Fail(
            Exit::Config,
            format!(
                "appid: merchant.appid {} is not known to WeChat Pay: copy the AppID bound to mch_id {} from the merchant platform (产品中心 → AppID账号管理)",
                merchant.appid, merchant.mch_id
            ),
        ),
        (_, "MCHID_NOT_EXIST") => Finding::Fail(
            Exit::Config,
            format!(
                "mch_id: merchant.mch_id {} is not known to WeChat Pay: copy the 商户号 from the merchant platform (账户中心 → 商户信息)",
                merchant.mch_id
            ),
        ),
        (_, "APPID_MCHID_NOT_MATCH") => Finding::Fail(
            Exit::Config,
            format!(
                "appid, mch_id: merchant.appid {} is not bound to merchant.mch_id {}: bind them on the merchant platform (产品中心 → AppID账号管理) or fix the one that is wrong",
                merchant.appid, merchant.mch_id
            ),
        ),
        (_, "NOAUTH") => Finding::Fail(
            Exit::Config,
            format!(
                "mch_id: merchant {} may not use the payment-code API ({description}): enable 付款码支付 on the merchant platform",
                merchant.mch_id
            ),
        ),
        (_, code) => Finding::Fail(
            Exit::Internal,
            format!(
                "gateway: no verdict, the query answered {code} ({description}); try again in a minute"
            ),
        ),
    }
}

/// Step 2: the client certificate, through a TLS handshake with `/secapi/`.
async fn certificate(client: &GatewayClient, settings: &Settings) -> Finding {
    let fix = "download apiclient_cert.pem and apiclient_key.pem of this mch_id again from the merchant platform (账户中心 → API安全) and set merchant.client_cert and merchant.client_key";
    match client.probe_certificate().await {
        CertificateProbe::NotConfigured => Finding::Skip(format!(
            "client certificate: loopback gateway {} needs none and none is set (WeChat Pay requires merchant.client_cert and merchant.client_key)",
            settings.client.base_url
        )),
        CertificateProbe::NoTls => Finding::Skip(
            "client certificate: loopback gateway over http has no client certificate to check (no TLS)".into(),
        ),
        CertificateProbe::Answered { status: 400 } => Finding::Fail(
            Exit::Config,
            format!("client certificate: /secapi/ refused it (HTTP 400): {fix}"),
        ),
        CertificateProbe::Answered { status } => Finding::Ok(format!(
            "client certificate: /secapi/ accepted it in a TLS handshake (HTTP {status} to an empty, unsigned request: nothing was reversed)"
        )),
        // With TLS 1.3 a refused client certificate shows after the handshake,
        // as the server's fatal alert (UnknownCA, BadCertificate, …).
        CertificateProbe::Failed(why)
            if ["certificate", "handshake", "tls", "alert", "unknownca"]
                .iter()
                .any(|word| why.to_ascii_lowercase().contains(word)) =>
        {
            Finding::Fail(
                Exit::Config,
                format!("client certificate: the TLS handshake with /secapi/ failed ({why}): {fix}"),
            )
        }
        CertificateProbe::Failed(why) => Finding::Fail(
            Exit::Internal,
            format!("client certificate: /secapi/ could not be reached ({why})"),
        ),
    }
}
