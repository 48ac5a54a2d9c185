//! The HTTP side: an axum server serving WeChat's v2 paths, the same under
//! the `/sandboxnew` prefix (with the sandbox key), and paths of its own,
//! `/_simulator/ledger`, `/_simulator/fault`, `/_simulator/bill` and
//! `/_simulator/health`, for tests and scripts that run the simulator as a
//! separate process. Those are also served on a control port that network
//! faults never touch.

use std::io;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::{Bytes, HttpBody};
use axum::extract::{ConnectInfo, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::SimulatorConfig;
use super::bill::{self, BillKind};
use super::faults::{self, Cut, Door, Fault, Switch};
use super::ledger::{
    Arrival, Ledger, LedgerEntry, MicropayRequest, OrderRef, Outcome, RefundRef, RefundRequest,
};
use super::scenarios::Scenario;
use super::wire;
use crate::domain::{AuthCode, OutTradeNo};
use crate::wechat::sign::{self, ApiKey, SignType};
use crate::wechat::xml::Fields;

/// The header of WeChat's newer sandbox that picks an error case.
const NEGATIVE_TEST: &str = "Wechatpay-Negative-Test";

const SANDBOX_PREFIX: &str = "/sandboxnew";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Micropay,
    OrderQuery,
    Reverse,
    CloseOrder,
    Refund,
    RefundQuery,
    /// Answers CSV text, not signed XML (see [`download_bill`]).
    DownloadBill,
    /// Sandbox only: hands out the key the sandbox signs with.
    GetSignKey,
}

/// The calls served both at the root and under [`SANDBOX_PREFIX`].
const ROUTES: &[(&str, Endpoint)] = &[
    ("/pay/micropay", Endpoint::Micropay),
    ("/pay/orderquery", Endpoint::OrderQuery),
    ("/secapi/pay/reverse", Endpoint::Reverse),
    ("/pay/closeorder", Endpoint::CloseOrder),
    ("/secapi/pay/refund", Endpoint::Refund),
    ("/pay/refundquery", Endpoint::RefundQuery),
    ("/pay/downloadbill", Endpoint::DownloadBill),
];

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Micropay => "micropay",
            Endpoint::OrderQuery => "orderquery",
            Endpoint::Reverse => "reverse",
            Endpoint::CloseOrder => "closeorder",
            Endpoint::Refund => "refund",
            Endpoint::RefundQuery => "refundquery",
            Endpoint::DownloadBill => "downloadbill",
            Endpoint::GetSignKey => "getsignkey",
        }
    }

    /// Parameters without which the call answers LACK_PARAMS (`sign` is
    /// checked before, by the signature). Queries, reverses and refunds also
    /// need one of transaction_id / out_trade_no (refundquery: or
    /// out_refund_no / refund_id).
    fn required(self) -> &'static [&'static str] {
        match self {
            Endpoint::Micropay => &[
                "appid",
                "mch_id",
                "nonce_str",
                "body",
                "out_trade_no",
                "total_fee",
                "spbill_create_ip",
                "auth_code",
            ],
            Endpoint::OrderQuery | Endpoint::Reverse | Endpoint::RefundQuery => {
                &["appid", "mch_id", "nonce_str"]
            }
            Endpoint::Refund => &[
                "appid",
                "mch_id",
                "nonce_str",
                "out_refund_no",
                "total_fee",
                "refund_fee",
            ],
            Endpoint::DownloadBill => &["appid", "mch_id", "nonce_str", "bill_date"],
            Endpoint::CloseOrder => &["appid", "mch_id", "nonce_str", "out_trade_no"],
            Endpoint::GetSignKey => &["mch_id", "nonce_str"],
        }
    }
}

/// What every request handler shares.
struct Gateway {
    config: SimulatorConfig,
    /// The key `/sandboxnew` calls are signed with, and its text for getsignkey.
    sandbox_key: ApiKey,
    sandbox_key_text: String,
    ledger: Mutex<Ledger>,
    faults: Arc<Switch>,
    /// While set, every downloadbill answers "Bill Creating".
    bill_creating: AtomicBool,
    /// Turns true at shutdown; cuts slow answers short.
    stopping: watch::Receiver<bool>,
}

impl Gateway {
    fn new(config: SimulatorConfig, stopping: watch::Receiver<bool>) -> Self {
        // ApiKey never reveals its text, so the sandbox key is derived through
        // the signature: lowercase hex MD5 of "sandbox=signkey&key=KEY".
        let sandbox_key_text = sign::sign(
            &[("sandbox", "signkey")].into_iter().collect(),
            &config.key,
            SignType::Md5,
        )
        .to_ascii_lowercase();
        Self {
            sandbox_key: ApiKey::new(sandbox_key_text.clone()),
            sandbox_key_text,
            config,
            ledger: Mutex::new(Ledger::default()),
            faults: Arc::new(Switch::new()),
            bill_creating: AtomicBool::new(false),
            stopping,
        }
    }

    /// The ledger, even after a handler panicked while holding it: a
    /// simulator that keeps answering is more use than one that cascades.
    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn key(&self, endpoint: Endpoint, sandbox: bool) -> &ApiKey {
        if sandbox && endpoint != Endpoint::GetSignKey {
            &self.sandbox_key
        } else {
            &self.config.key
        }
    }

    /// The business-layer checks every call shares, in WeChat's order.
    fn check(&self, endpoint: Endpoint, fields: &Fields) -> Result<(), &'static str> {
        if endpoint
            .required()
            .iter()
            .any(|name| fields.get(name).is_none_or(str::is_empty))
        {
            return Err("LACK_PARAMS");
        }
        if fields.get("mch_id") != Some(self.config.mch_id.as_str()) {
            return Err("MCHID_NOT_EXIST");
        }
        if endpoint != Endpoint::GetSignKey
            && fields.get("appid") != Some(self.config.appid.as_str())
        {
            return Err("APPID_MCHID_NOT_MATCH");
        }
        Ok(())
    }

    fn serve(
        &self,
        endpoint: Endpoint,
        fields: &Fields,
        headers: &HeaderMap,
        arrival: Arrival,
    ) -> Outcome {
        match endpoint {
            Endpoint::Micropay => self.micropay(fields, headers, arrival),
            Endpoint::OrderQuery => match order_ref(fields) {
                Some(order) => self.ledger().query(order, arrival),
                None => Outcome::fail("LACK_PARAMS"),
            },
            Endpoint::Reverse => match order_ref(fields) {
                Some(order) => self.ledger().reverse(order, arrival),
                None => Outcome::fail("LACK_PARAMS"),
            },
            Endpoint::CloseOrder => self
                .ledger()
                .close(fields.get("out_trade_no").unwrap_or_default(), arrival),
            Endpoint::Refund => self.refund(fields, arrival),
            Endpoint::RefundQuery => match refund_ref(fields) {
                Some(by) => self.ledger().refund_query(by, arrival),
                None => Outcome::fail("LACK_PARAMS"),
            },
            // Answered by `download_bill`, never here.
            Endpoint::DownloadBill => Outcome::fail("SYSTEMERROR"),
            Endpoint::GetSignKey => {
                let mut answer = Fields::new();
                answer.set("sandbox_signkey", self.sandbox_key_text.as_str());
                Outcome::success(answer)
            }
        }
    }

    fn micropay(&self, fields: &Fields, headers: &HeaderMap, arrival: Arrival) -> Outcome {
        let field = |name| fields.get(name).unwrap_or_default();
        let Some(total_fee) = field("total_fee")
            .parse::<u64>()
            .ok()
            .filter(|fee| *fee > 0)
        else {
            return Outcome::fail("PARAM_ERROR");
        };
        if OutTradeNo::parse(field("out_trade_no")).is_err() {
            return Outcome::fail("PARAM_ERROR");
        }
        let Ok(auth_code) = AuthCode::parse(field("auth_code")) else {
            return Outcome::fail("AUTH_CODE_INVALID");
        };
        let forced = headers
            .get(NEGATIVE_TEST)
            .and_then(|value| value.to_str().ok())
            .and_then(Scenario::for_negative_test);
        let request = MicropayRequest {
            out_trade_no: field("out_trade_no"),
            total_fee,
            auth_code: &auth_code,
            attach: fields.get("attach"),
            device_info: fields.get("device_info"),
            body: fields.get("body"),
            forced,
        };
        self.ledger().micropay(&request, arrival)
    }

    fn refund(&self, fields: &Fields, arrival: Arrival) -> Outcome {
        let Some(order) = order_ref(fields) else {
            return Outcome::fail("LACK_PARAMS");
        };
        let fee = |name| {
            fields
                .get(name)
                .and_then(|fee| fee.parse::<u64>().ok())
                .filter(|fee| *fee > 0)
        };
        let out_refund_no = fields.get("out_refund_no").unwrap_or_default();
        let (Some(total_fee), Some(refund_fee)) = (fee("total_fee"), fee("refund_fee")) else {
            return Outcome::fail("PARAM_ERROR");
        };
        if !valid_out_refund_no(out_refund_no) {
            return Outcome::fail("PARAM_ERROR");
        }
        let request = RefundRequest {
            order,
            out_refund_no,
            total_fee,
            refund_fee,
            refund_desc: fields.get("refund_desc"),
        };
        self.ledger().refund(&request, arrival)
    }

    /// Switches the network fault; returns once it holds (or at shutdown).
    async fn set_fault(&self, fault: Fault) {
        tokio::select! {
            () = self.faults.set(fault) => {}
            () = stopped(self.stopping.clone()) => {}
        }
    }

    /// Holds a "timing out" answer back for `slow_answer`, or until shutdown.
    async fn stall(&self) {
        tokio::select! {
            () = tokio::time::sleep(self.config.slow_answer) => {}
            () = stopped(self.stopping.clone()) => {}
        }
    }
}

/// Resolves at shutdown.
async fn stopped(mut stopping: watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

/// out_refund_no: at most 64 of `[0-9A-Za-z_-|*@]` (申请退款).
fn valid_out_refund_no(no: &str) -> bool {
    (1..=64).contains(&no.len())
        && no
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-|*@".contains(&b))
}

/// refund_id, then out_refund_no, then the order, as WeChat reads them.
fn refund_ref(fields: &Fields) -> Option<RefundRef<'_>> {
    let given = |name| fields.get(name).filter(|value| !value.is_empty());
    given("refund_id")
        .map(RefundRef::RefundId)
        .or_else(|| given("out_refund_no").map(RefundRef::OutRefundNo))
        .or_else(|| order_ref(fields).map(RefundRef::Order))
}

/// `transaction_id` wins when both are sent, as at WeChat.
fn order_ref(fields: &Fields) -> Option<OrderRef<'_>> {
    let given = |name| fields.get(name).filter(|value| !value.is_empty());
    given("transaction_id")
        .map(OrderRef::TransactionId)
        .or_else(|| given("out_trade_no").map(OrderRef::OutTradeNo))
}

async fn call(
    gateway: Arc<Gateway>,
    endpoint: Endpoint,
    sandbox: bool,
    cut: Cut,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Read once, on arrival: a switch during the call affects the next one. A
    // call that got in just before `refuse` closed the door is served.
    let fault = gateway.faults.now();
    if fault == Fault::Http500 {
        info!(
            call = endpoint.name(),
            sandbox,
            fault = fault.name(),
            "not processed"
        );
        return faults::server_error();
    }
    let (response, slow) = answer(&gateway, endpoint, sandbox, &method, &headers, &body, fault);
    if slow || fault == Fault::Delay {
        gateway.stall().await;
    }
    match fault {
        Fault::Drop => {
            // The second half of the body never leaves.
            let length = response.body().size_hint().exact().unwrap_or(0);
            cut.withhold(usize::try_from(length.div_ceil(2)).unwrap_or(0));
            response
        }
        Fault::Garbage => faults::garbage(),
        _ => response,
    }
}

/// The gateway's answer to a call, and whether it is held back for
/// `slow_answer`; `fault` only spoils its signature and labels its record.
fn answer(
    gateway: &Gateway,
    endpoint: Endpoint,
    sandbox: bool,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
    fault: Fault,
) -> (Response, bool) {
    let key = gateway.key(endpoint, sandbox);
    let request = match wire::open(method, body, key) {
        Ok(request) => request,
        Err(refusal) => {
            info!(
                call = endpoint.name(),
                sandbox,
                answer = refusal.0,
                fault = fault.name(),
                "refused"
            );
            return (refusal.into_response(), false);
        }
    };
    let fields = &request.fields;
    if endpoint == Endpoint::DownloadBill {
        let answer = match gateway.check(endpoint, fields) {
            Ok(()) => download_bill(gateway, fields),
            Err(code) => Err(BillFailure::new(code)),
        };
        let summary = match &answer {
            Ok(body) => format!("bill of {} bytes", body.len()),
            Err(failure) => failure.return_msg.to_string(),
        };
        info!(call = endpoint.name(), sandbox, bill_date = fields.get("bill_date").unwrap_or_default(), answer = %summary, fault = fault.name(), "answered");
        let response = match answer {
            Ok(body) => (
                StatusCode::OK,
                [(CONTENT_TYPE, bill_content_type(fields))],
                body,
            )
                .into_response(),
            Err(failure) => failure.into_response(),
        };
        return (response, false);
    }
    // The ledger records the fault instead of an answer the till never read
    // as sent.
    let arrival = Arrival::now(fault.spoils_answer().then(|| fault.name()));
    let outcome = match gateway.check(endpoint, fields) {
        Ok(()) => gateway.serve(endpoint, fields, headers, arrival),
        Err(code) => Outcome::fail(code),
    };
    let order = fields
        .get("out_trade_no")
        .or(fields.get("transaction_id"))
        .unwrap_or_default();
    info!(out_trade_no = order, call = endpoint.name(), sandbox, answer = %outcome.summary(), fault = fault.name(), "answered");
    let response = wire::reply(&request, outcome.answer, key, fault == Fault::BadSign);
    (response, outcome.slow)
}

/// A downloadbill failure: unsigned XML, `return_code=FAIL`, as WeChat sends.
struct BillFailure {
    return_msg: &'static str,
    error_code: Option<&'static str>,
}

impl BillFailure {
    fn new(return_msg: &'static str) -> Self {
        Self {
            return_msg,
            error_code: None,
        }
    }
}

impl IntoResponse for BillFailure {
    fn into_response(self) -> Response {
        let mut fields = Fields::new();
        fields
            .set("return_code", "FAIL")
            .set("return_msg", self.return_msg)
            .set_opt("error_code", self.error_code);
        (
            StatusCode::OK,
            [(CONTENT_TYPE, "text/xml; charset=utf-8")],
            crate::wechat::xml::encode(&fields),
        )
            .into_response()
    }
}

/// What WeChat says for a day without trades.
const NO_BILL: BillFailure = BillFailure {
    return_msg: "No Bill Exist",
    error_code: Some("20002"),
};

/// The day's bill from the ledger: CSV text, gzipped for tar_type=GZIP; a
/// day with no row is "No Bill Exist". The simulator builds bills at once
/// (WeChat: from 09:00 the next day), so today's is there too; "Bill
/// Creating" is answered only while switched on (`/_simulator/bill`).
fn download_bill(gateway: &Gateway, fields: &Fields) -> Result<Vec<u8>, BillFailure> {
    let date = time::Date::parse(
        fields.get("bill_date").unwrap_or_default(),
        time::macros::format_description!("[year][month][day]"),
    )
    .map_err(|_| BillFailure::new("invalid bill_date"))?;
    let kind = BillKind::from_wire(fields.get("bill_type").unwrap_or_default())
        .ok_or(BillFailure::new("invalid bill_type"))?;
    let gzip = match fields.get("tar_type").unwrap_or_default() {
        "" => false,
        "GZIP" => true,
        _ => return Err(BillFailure::new("invalid tar_type")),
    };
    if gateway.bill_creating.load(Ordering::SeqCst) {
        return Err(BillFailure::new("Bill Creating"));
    }
    let mut lines = gateway.ledger().bill_lines(date);
    lines.retain(|line| kind.includes(line.state));
    if lines.is_empty() {
        return Err(NO_BILL);
    }
    let text = bill::render(&lines, &gateway.config.appid, &gateway.config.mch_id);
    if !gzip {
        return Ok(text.into_bytes());
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(text.as_bytes())
        .and_then(|()| encoder.finish())
        .map_err(|_| BillFailure::new("SYSTEMERROR"))
}

fn bill_content_type(fields: &Fields) -> &'static str {
    if fields.get("tar_type") == Some("GZIP") {
        "application/x-gzip"
    } else {
        "text/plain; charset=utf-8"
    }
}

/// The `/_simulator/bill` switch.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct BillSwitch {
    creating: bool,
}

/// `/_simulator/*`: what tests and scripts read and switch.
fn control_routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/_simulator/health", get(|| async { "ok" }))
        .route(
            "/_simulator/ledger",
            get(|State(gateway): State<Arc<Gateway>>| async move {
                Json(gateway.ledger().snapshot())
            }),
        )
        .route(
            "/_simulator/bill",
            get(|State(gateway): State<Arc<Gateway>>| async move {
                Json(BillSwitch {
                    creating: gateway.bill_creating.load(Ordering::SeqCst),
                })
            })
            .post(
                |State(gateway): State<Arc<Gateway>>, body: Bytes| async move {
                    match serde_json::from_slice::<BillSwitch>(&body) {
                        Ok(switch) => {
                            gateway.bill_creating.store(switch.creating, Ordering::SeqCst);
                            Json(switch).into_response()
                        }
                        Err(error) => (
                            StatusCode::BAD_REQUEST,
                            format!("{error}: e.g. {{\"creating\": true}}\n"),
                        )
                            .into_response(),
                    }
                },
            ),
        )
        .route(
            "/_simulator/fault",
            get(|State(gateway): State<Arc<Gateway>>| async move { Json(gateway.faults.get()) })
                .post(set_fault),
        )
}

/// Read by hand rather than by axum's `Json`, so a `curl -d '{"mode":"drop"}'`
/// without a JSON Content-Type works too.
async fn set_fault(State(gateway): State<Arc<Gateway>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Fault>(&body) {
        Ok(fault) => {
            gateway.set_fault(fault).await;
            Json(fault).into_response()
        }
        Err(error) => (
            StatusCode::BAD_REQUEST,
            format!(
                "{error}: e.g. {{\"mode\": \"drop\"}} or {{\"mode\": \"flap\", \"up_ms\": 500, \"down_ms\": 1500}}\n"
            ),
        )
            .into_response(),
    }
}

fn router(gateway: Arc<Gateway>) -> Router {
    let sandbox_routes = ROUTES
        .iter()
        .map(|&(path, endpoint)| (format!("{SANDBOX_PREFIX}{path}"), endpoint, true))
        .chain([(
            format!("{SANDBOX_PREFIX}/pay/getsignkey"),
            Endpoint::GetSignKey,
            true,
        )]);
    let routes = ROUTES
        .iter()
        .map(|&(path, endpoint)| (path.to_string(), endpoint, false))
        .chain(sandbox_routes);

    let mut router = control_routes();
    for (path, endpoint, sandbox) in routes {
        // `any`, not `post`: WeChat answers a GET with REQUIRE_POST_METHOD, not 405.
        router = router.route(
            &path,
            any(
                move |State(gateway): State<Arc<Gateway>>,
                      ConnectInfo(cut): ConnectInfo<Cut>,
                      method: Method,
                      headers: HeaderMap,
                      body: Bytes| {
                    call(gateway, endpoint, sandbox, cut, method, headers, body)
                },
            ),
        );
    }
    router.with_state(gateway)
}

/// A running simulator. Dropping it stops the server too.
pub struct Simulator {
    addr: SocketAddr,
    control_addr: SocketAddr,
    gateway: Arc<Gateway>,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Binds `listen` (port 0 picks a free port) and a control port on the
    /// same host, and serves on the current tokio runtime; returns as soon
    /// as the sockets are bound.
    pub async fn start(listen: SocketAddr, config: SimulatorConfig) -> io::Result<Simulator> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let control = TcpListener::bind(SocketAddr::new(addr.ip(), 0)).await?;
        let control_addr = control.local_addr()?;
        let (stop, stopping) = watch::channel(false);
        let gateway = Arc::new(Gateway::new(config, stopping.clone()));
        let door = Door::new(listener, gateway.faults.clone())?;
        let gateway_app = router(gateway.clone());
        let control_app = control_routes().with_state(gateway.clone());
        let server = tokio::spawn(async move {
            let served = tokio::join!(
                axum::serve(
                    door,
                    gateway_app.into_make_service_with_connect_info::<Cut>()
                )
                .with_graceful_shutdown(stopped(stopping.clone()))
                .into_future(),
                axum::serve(control, control_app)
                    .with_graceful_shutdown(stopped(stopping))
                    .into_future(),
            );
            for error in [served.0.err(), served.1.err()].into_iter().flatten() {
                warn!(%error, "the gateway simulator stopped");
            }
        });
        info!(%addr, %control_addr, "gateway simulator listening");
        Ok(Simulator {
            addr,
            control_addr,
            gateway,
            stop,
            server: Some(server),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL a client uses (the gateway's port).
    pub fn base_url(&self) -> String {
        url(self.addr)
    }

    /// The base URL of the control port, which serves `/_simulator/*` alone
    /// and which no fault touches (`refuse` closes `base_url`'s port).
    pub fn control_url(&self) -> String {
        url(self.control_addr)
    }

    /// Switches the network fault of the WeChat endpoints. Returns once the
    /// gateway's port is closed (`refuse`) or open again, so the very next
    /// call meets the new fault.
    pub async fn set_fault(&self, fault: Fault) {
        self.gateway.set_fault(fault).await;
    }

    /// While `creating`, every downloadbill answers "Bill Creating" (as
    /// WeChat does before it has built the day's bill).
    pub fn set_bill_creating(&self, creating: bool) {
        self.gateway.bill_creating.store(creating, Ordering::SeqCst);
    }

    /// The network fault as last set.
    pub fn fault(&self) -> Fault {
        self.gateway.faults.get()
    }

    /// Every order so far, sorted by out_trade_no.
    pub fn ledger(&self) -> Vec<LedgerEntry> {
        self.gateway.ledger().snapshot()
    }

    /// Stops accepting, cuts slow answers short, and waits for the server.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// A server bound to 0.0.0.0 or [::] is reached through loopback.
fn url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        ip if !ip.is_unspecified() => ip,
        IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
        IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}
