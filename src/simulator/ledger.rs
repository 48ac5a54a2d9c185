//! The simulated gateway's book of orders: what each order's state is, what
//! money moved, and every call made about it. Each method is one gateway call
//! applied to the book; the scenario of the order says how it goes, this
//! module keeps the rules that hold whatever the scenario (an order is charged
//! at most once, a reverse refunds and closes for good, a re-sent micropay
//! never charges again, one out_refund_no never refunds twice, refunds never
//! exceed the charge). The daily bill is drawn from it (`bill_lines`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::time::Instant;

use rand::RngExt;
use time::macros::{format_description, offset};
use time::{Date, OffsetDateTime};

use super::bill::{BillLine, BillState};
use super::scenarios::{
    Customer, MicropayReply, OTHER_PARTY_EXTRA_FEE, QueryReply, RefundScenario, RefundStatus,
    ReverseReply, Scenario, Start,
};
use crate::domain::AuthCode;
use crate::wechat::Fields;

/// One order as the gateway sees it, for the till's tests and the trainer.
///
/// A number taken by another party (scenarios 53, 54) has two entries: first
/// this till's customer (`foreign: false`, NOTPAY, never charged), so a
/// lookup by out_trade_no finds it; then the other party's order
/// (`foreign: true`), which every query and reverse of the number reaches.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct LedgerEntry {
    pub out_trade_no: String,
    pub total_fee: u64,
    pub scenario: String,
    /// Another party's order under this out_trade_no (another till with our
    /// till id got there first): its `charged` is another customer's money,
    /// and its `refunded` what a reverse of the number took back from them.
    #[serde(default)]
    pub foreign: bool,
    /// SUCCESS | USERPAYING | NOTPAY | PAYERROR | REVOKED | REFUND | CLOSED,
    /// as queries answer. NOTPAY is an order the gateway never created
    /// (queries say ORDERNOTEXIST). REVOKED is a reversed order, whether or
    /// not it had been charged (as WeChat's orderquery answers): `charged`
    /// and `refunded` tell, and the bill shows it as a REVOKED row. REFUND is
    /// an order refunded through `/secapi/pay/refund` (see `refunds`).
    pub trade_state: String,
    /// Fen of the order paid (cash and coupons), and fen given back: by a
    /// reverse, or by every refund but a REFUNDCLOSE one.
    pub charged: u64,
    pub refunded: u64,
    pub transaction_id: Option<String>,
    /// Never the full payment code.
    pub auth_code_last4: String,
    /// The till's device_info of the micropay (the bill's 设备号).
    #[serde(default)]
    pub device_info: String,
    /// When it was charged, Beijing time, yyyyMMddHHmmss (the answer's time_end).
    #[serde(default)]
    pub time_end: Option<String>,
    /// The refunds made through `/secapi/pay/refund`, in the order made.
    #[serde(default)]
    pub refunds: Vec<LedgerRefund>,
    /// Every accepted request about this order, in arrival order. A call
    /// about a taken number is recorded on both of its entries.
    pub calls: Vec<CallRecord>,
}

impl LedgerEntry {
    pub fn net_charged(&self) -> u64 {
        self.charged - self.refunded
    }
}

/// One refund of an order, as the gateway recorded it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct LedgerRefund {
    pub out_refund_no: String,
    pub refund_id: String,
    pub refund_fee: u64,
    /// SUCCESS | PROCESSING | REFUNDCLOSE | CHANGE: what the next refundquery answers.
    pub refund_status: String,
    /// The refund scenario its refund_fee picked.
    pub scenario: String,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct CallRecord {
    /// micropay | orderquery | reverse | closeorder | refund | refundquery
    pub call: String,
    /// Since the first micropay for this order arrived (0 before it).
    pub after_micropay_ms: u64,
    /// Short: "SUCCESS", "USERPAYING", "SYSTEMERROR", "recall=Y", "timeout", "html502", …;
    /// "fault:drop", "fault:delay", … when a network fault spoilt the answer.
    pub answer: String,
}

/// What the gateway answers to one call, before it is signed and encoded.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// result_code SUCCESS with these fields.
    Success(Fields),
    /// Like `Success`, but the signature is spoiled after signing.
    SuccessBadSign(Fields),
    /// Like `Success`, correctly signed, but about another order than the one
    /// asked for.
    AboutAnotherOrder(Fields),
    /// result_code FAIL with this err_code.
    Fail(&'static str),
    /// result_code FAIL with this err_code and this err_code_des, where the
    /// call's wording differs from the code's usual one.
    FailSaying(&'static str, &'static str),
    /// No XML at all: HTTP 502 and an HTML page.
    BadGateway,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub answer: Answer,
    /// Hold the answer back for `slow_answer` (the till should time out).
    pub slow: bool,
}

impl Outcome {
    pub fn fail(code: &'static str) -> Self {
        Self {
            answer: Answer::Fail(code),
            slow: false,
        }
    }

    pub fn success(fields: Fields) -> Self {
        Self {
            answer: Answer::Success(fields),
            slow: false,
        }
    }

    /// The short form kept in [`CallRecord::answer`] and logged.
    pub fn summary(&self) -> String {
        if self.slow {
            return "timeout".into();
        }
        match &self.answer {
            Answer::Success(fields) => match (
                fields.get("recall"),
                fields.get("trade_state"),
                fields.get("refund_status_0"),
            ) {
                (Some(recall), _, _) => format!("recall={recall}"),
                (None, Some(state), _) => state.to_string(),
                (None, None, Some(status)) => status.to_string(),
                (None, None, None) => "SUCCESS".into(),
            },
            Answer::SuccessBadSign(_) => "SUCCESS(bad sign)".into(),
            Answer::AboutAnotherOrder(fields) => format!(
                "{}(another order)",
                fields.get("trade_state").unwrap_or("SUCCESS")
            ),
            Answer::Fail(code) | Answer::FailSaying(code, _) => code.to_string(),
            Answer::BadGateway => "html502".into(),
        }
    }
}

/// When a call arrived, and the network fault (its name) spoiling its answer.
#[derive(Clone, Copy, Debug)]
pub struct Arrival {
    pub at: Instant,
    pub fault: Option<&'static str>,
}

impl Arrival {
    pub fn now(fault: Option<&'static str>) -> Self {
        Self {
            at: Instant::now(),
            fault,
        }
    }
}

/// A micropay request, already checked by the server.
pub struct MicropayRequest<'a> {
    pub out_trade_no: &'a str,
    pub total_fee: u64,
    pub auth_code: &'a AuthCode,
    pub attach: Option<&'a str>,
    pub device_info: Option<&'a str>,
    pub body: Option<&'a str>,
    /// The scenario asked for by a `Wechatpay-Negative-Test` header.
    pub forced: Option<Scenario>,
}

/// How a query or reverse names its order; `transaction_id` wins when both
/// are sent (微信公众号支付接口文档).
#[derive(Clone, Copy, Debug)]
pub enum OrderRef<'a> {
    TransactionId(&'a str),
    OutTradeNo(&'a str),
}

/// A refund request, already checked for form by the server.
pub struct RefundRequest<'a> {
    pub order: OrderRef<'a>,
    pub out_refund_no: &'a str,
    pub total_fee: u64,
    pub refund_fee: u64,
    pub refund_desc: Option<&'a str>,
}

/// How a refundquery names what it asks about; WeChat's precedence is
/// refund_id, out_refund_no, transaction_id, out_trade_no.
#[derive(Clone, Copy, Debug)]
pub enum RefundRef<'a> {
    RefundId(&'a str),
    OutRefundNo(&'a str),
    Order(OrderRef<'a>),
}

/// WeChat refunds one order at most 50 times.
pub const MAX_REFUNDS_PER_ORDER: usize = 50;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Known to the ledger (a micropay arrived) but not to the gateway.
    NotCreated,
    UserPaying,
    Success,
    PayError,
    /// Reversed, before or after a charge (`charged` tells; the query does not).
    Revoked,
    /// Paid, then refunded in part or in full through the refund API (转入退款).
    Refund,
    Closed,
}

impl State {
    fn wire_name(self) -> &'static str {
        match self {
            State::NotCreated => "NOTPAY",
            State::UserPaying => "USERPAYING",
            State::Success => "SUCCESS",
            State::PayError => "PAYERROR",
            State::Revoked => "REVOKED",
            State::Refund => "REFUND",
            State::Closed => "CLOSED",
        }
    }

    /// trade_state_desc, as WeChat words it (微信扫码支付的响应; 统一下单).
    fn description(self) -> &'static str {
        match self {
            State::NotCreated => "订单未支付",
            State::UserPaying => "需要用户输入支付密码",
            State::Success => "支付成功",
            State::PayError => "支付失败，请撤销订单",
            State::Revoked => "订单已撤销",
            State::Refund => "转入退款",
            State::Closed => "订单已关闭",
        }
    }
}

/// The payer of this till's paid orders, and of another party's.
const OPENID: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";
const OTHER_PARTY_OPENID: &str = "oUpF8uN95hNH1fQAsbMRJ0QnAkTA";

struct Order {
    out_trade_no: String,
    total_fee: u64,
    foreign: bool,
    openid: &'static str,
    /// None for an order first seen in a reverse.
    scenario: Option<Scenario>,
    state: State,
    charged: u64,
    refunded: u64,
    transaction_id: Option<String>,
    /// When the charge happened, Beijing time.
    charged_at: Option<OffsetDateTime>,
    auth_code_last4: String,
    attach: String,
    device_info: String,
    body: String,
    refunds: Vec<Refund>,
    first_micropay: Option<Instant>,
    queries: u32,
    reverses: u32,
    calls: Vec<CallRecord>,
}

impl Order {
    fn new(out_trade_no: &str) -> Self {
        Self {
            out_trade_no: out_trade_no.to_string(),
            total_fee: 0,
            foreign: false,
            openid: OPENID,
            scenario: None,
            state: State::NotCreated,
            charged: 0,
            refunded: 0,
            transaction_id: None,
            charged_at: None,
            auth_code_last4: String::new(),
            attach: String::new(),
            device_info: String::new(),
            body: String::new(),
            refunds: Vec::new(),
            first_micropay: None,
            queries: 0,
            reverses: 0,
            calls: Vec::new(),
        }
    }

    fn charge(&mut self, transaction_id: String) {
        self.state = State::Success;
        self.charged = self.total_fee;
        self.transaction_id = Some(transaction_id);
        self.charged_at = Some(beijing_now());
    }

    fn time_end(&self) -> Option<String> {
        self.charged_at.map(|at| {
            at.format(format_description!(
                "[year][month][day][hour][minute][second]"
            ))
            .expect("a date formats with a fixed numeric description")
        })
    }

    /// Closes the order for good; a payment is returned to the customer.
    /// Queries then say REVOKED whether or not it had been charged, as
    /// WeChat's do: only `charged` (and the bill's REVOKED row) tell.
    fn revoke(&mut self) {
        if matches!(self.state, State::Closed | State::Revoked | State::Refund) {
            return;
        }
        self.refunded = self.charged;
        self.state = State::Revoked;
    }

    /// What may still be refunded: the charge less what was given back.
    fn refundable(&self) -> u64 {
        self.charged - self.refunded
    }

    fn cash_fee(&self) -> u64 {
        let coupons: u64 = self
            .scenario
            .map_or(0, |s| s.coupons().iter().map(|c| c.0).sum());
        self.total_fee.saturating_sub(coupons)
    }

    /// The fields of an accepted refund's answer.
    fn refund_fields(&self, refund: &Refund) -> Fields {
        let mut fields = Fields::new();
        fields
            .set_opt("transaction_id", self.transaction_id.as_deref())
            .set("out_trade_no", self.out_trade_no.as_str())
            .set("out_refund_no", refund.out_refund_no.as_str())
            .set("refund_id", refund.refund_id.as_str())
            .set("refund_fee", refund.refund_fee.to_string())
            .set("total_fee", self.total_fee.to_string())
            .set("cash_fee", self.cash_fee().to_string());
        fields
    }

    /// A refundquery answer about the refunds at `indices`.
    fn refund_query_fields(&self, indices: &[usize]) -> Fields {
        let mut fields = Fields::new();
        let shown: u64 = indices.iter().map(|&i| self.refunds[i].refund_fee).sum();
        fields
            .set_opt("transaction_id", self.transaction_id.as_deref())
            .set("out_trade_no", self.out_trade_no.as_str())
            .set("total_fee", self.total_fee.to_string())
            .set("cash_fee", self.cash_fee().to_string())
            .set("refund_fee", shown.to_string())
            .set("refund_count", indices.len().to_string());
        for (n, &i) in indices.iter().enumerate() {
            let refund = &self.refunds[i];
            fields
                .set(&format!("out_refund_no_{n}"), refund.out_refund_no.as_str())
                .set(&format!("refund_id_{n}"), refund.refund_id.as_str())
                .set(&format!("refund_channel_{n}"), "ORIGINAL")
                .set(&format!("refund_fee_{n}"), refund.refund_fee.to_string())
                .set(&format!("refund_status_{n}"), refund.status.wire_name())
                .set(&format!("refund_recv_accout_{n}"), "支付用户的零钱");
            if let Some(at) = refund.succeeded_at {
                fields.set(&format!("refund_success_time_{n}"), bill_time(at));
            }
        }
        fields
    }

    fn record(&mut self, call: &str, arrival: Arrival, outcome: &Outcome) {
        let since = self
            .first_micropay
            .map_or(0, |t| arrival.at.saturating_duration_since(t).as_millis());
        self.calls.push(CallRecord {
            call: call.to_string(),
            after_micropay_ms: u64::try_from(since).unwrap_or(u64::MAX),
            answer: arrival
                .fault
                .map_or_else(|| outcome.summary(), |fault| format!("fault:{fault}")),
        });
    }

    /// The fields of a paid micropay answer, also sent by a SUCCESS query.
    fn paid_fields(&self) -> Fields {
        let scenario = self.scenario.unwrap_or(Scenario::Success);
        let reported_fee = self.total_fee + u64::from(scenario.misreports_fee());
        let coupons = scenario.coupons();
        let coupon_fee: u64 = coupons.iter().map(|c| c.0).sum();
        let mut fields = Fields::new();
        fields
            .set("openid", self.openid)
            .set("is_subscribe", "N")
            .set("trade_type", "MICROPAY")
            .set("bank_type", "OTHERS")
            .set("fee_type", "CNY")
            .set("total_fee", reported_fee.to_string())
            .set("cash_fee_type", "CNY")
            .set(
                "cash_fee",
                self.total_fee.saturating_sub(coupon_fee).to_string(),
            );
        if !coupons.is_empty() {
            fields
                .set("coupon_fee", coupon_fee.to_string())
                .set("coupon_count", coupons.len().to_string());
        }
        for (n, (fee, kind)) in coupons.iter().enumerate() {
            fields
                .set(&format!("coupon_type_{n}"), *kind)
                .set(&format!("coupon_id_{n}"), format!("{}", 2_000_000_000 + n))
                .set(&format!("coupon_fee_{n}"), fee.to_string());
        }
        let no_cash: u64 = coupons
            .iter()
            .filter(|c| c.1 == "NO_CASH")
            .map(|c| c.0)
            .sum();
        if no_cash > 0 {
            fields.set(
                "settlement_total_fee",
                (self.total_fee - no_cash).to_string(),
            );
        }
        fields
            .set_opt("transaction_id", self.transaction_id.as_deref())
            .set("out_trade_no", self.out_trade_no.as_str())
            .set_opt("attach", Some(self.attach.as_str()))
            .set_opt("time_end", self.time_end().as_deref());
        fields
    }

    fn query_fields(&self) -> Fields {
        // A refunded order still reports the payment it was; a reversed one
        // says the same whether it had been charged or not.
        let mut fields = if matches!(self.state, State::Success | State::Refund) {
            self.paid_fields()
        } else {
            let mut fields = Fields::new();
            fields
                .set("out_trade_no", self.out_trade_no.as_str())
                .set_opt("attach", Some(self.attach.as_str()));
            fields
        };
        fields
            .set("trade_state", self.state.wire_name())
            .set("trade_state_desc", self.state.description());
        fields
    }

    /// A signed-looking answer about a neighbouring order of the merchant (our
    /// number with another last character), closed: what a proxy that mixes
    /// up or replays answers hands back.
    fn another_orders_fields(&self, transaction_id: String) -> Fields {
        let mut other = self.out_trade_no.clone();
        let last = other.pop();
        other.push(if last == Some('1') { '2' } else { '1' });
        let mut fields = Fields::new();
        fields
            .set("transaction_id", transaction_id)
            .set("out_trade_no", other)
            .set("trade_state", State::Closed.wire_name())
            .set("trade_state_desc", State::Closed.description());
        fields
    }

    fn entry(&self) -> LedgerEntry {
        LedgerEntry {
            out_trade_no: self.out_trade_no.clone(),
            total_fee: self.total_fee,
            foreign: self.foreign,
            scenario: self
                .scenario
                .map_or("no-micropay", Scenario::name)
                .to_string(),
            trade_state: self.state.wire_name().to_string(),
            charged: self.charged,
            refunded: self.refunded,
            transaction_id: self.transaction_id.clone(),
            auth_code_last4: self.auth_code_last4.clone(),
            device_info: self.device_info.clone(),
            time_end: self.time_end(),
            refunds: self
                .refunds
                .iter()
                .map(|r| LedgerRefund {
                    out_refund_no: r.out_refund_no.clone(),
                    refund_id: r.refund_id.clone(),
                    refund_fee: r.refund_fee,
                    refund_status: r.status.wire_name().to_string(),
                    scenario: r.scenario.name().to_string(),
                })
                .collect(),
            calls: self.calls.clone(),
        }
    }

    /// The bill's rows about this order that fall on `date` (Beijing).
    fn bill_lines(&self, date: Date, lines: &mut Vec<BillLine>) {
        let coupon_fee: u64 = self
            .scenario
            .map_or(0, |s| s.coupons().iter().map(|c| c.0).sum());
        let no_cash: u64 = self.scenario.map_or(0, |s| {
            s.coupons()
                .iter()
                .filter(|c| c.1 == "NO_CASH")
                .map(|c| c.0)
                .sum()
        });
        let line = |time: OffsetDateTime, state: BillState| BillLine {
            time,
            device_info: self.device_info.clone(),
            transaction_id: self.transaction_id.clone().unwrap_or_default(),
            out_trade_no: self.out_trade_no.clone(),
            openid: self.openid.to_string(),
            state,
            settlement_fee: 0,
            coupon_fee: 0,
            refund_id: String::new(),
            out_refund_no: String::new(),
            refund_fee: 0,
            refund_status: "",
            body: self.body.clone(),
            attach: self.attach.clone(),
            total_fee: 0,
            refund_requested: 0,
        };
        if let Some(at) = self.charged_at.filter(|at| at.date() == date) {
            let charge = |state| BillLine {
                settlement_fee: self.total_fee - no_cash,
                coupon_fee,
                total_fee: self.total_fee,
                ..line(at, state)
            };
            match self.state {
                State::Success | State::Refund => lines.push(charge(BillState::Success)),
                // A charge the reverse returned: one row with the charge and
                // its return, so the day's sums net to nothing.
                State::Revoked => lines.push(BillLine {
                    refund_fee: self.charged,
                    refund_status: RefundStatus::Success.wire_name(),
                    refund_requested: self.charged,
                    ..charge(BillState::Revoked)
                }),
                State::NotCreated | State::UserPaying | State::PayError | State::Closed => {}
            }
        }
        for refund in &self.refunds {
            if refund.status.counts() && refund.applied_at.date() == date {
                lines.push(BillLine {
                    refund_id: refund.refund_id.clone(),
                    out_refund_no: refund.out_refund_no.clone(),
                    refund_fee: refund.refund_fee,
                    refund_status: refund.status.wire_name(),
                    refund_requested: refund.refund_fee,
                    ..line(refund.applied_at, BillState::Refund)
                });
            }
        }
    }
}

/// One refund as the gateway holds it.
struct Refund {
    out_refund_no: String,
    refund_id: String,
    refund_fee: u64,
    scenario: RefundScenario,
    status: RefundStatus,
    /// When it was accepted, Beijing time: the day of its bill row.
    applied_at: OffsetDateTime,
    succeeded_at: Option<OffsetDateTime>,
    /// Kept as WeChat keeps it; not sent back.
    #[allow(dead_code)]
    desc: String,
}

pub struct Ledger {
    /// The orders the gateway holds, one per out_trade_no.
    orders: BTreeMap<String, Order>,
    /// This till's requests turned away because another party's order held
    /// their number (its order is the one in `orders`): customers never
    /// charged, kept so tests can see them and the calls about the number.
    turned_away: BTreeMap<String, Order>,
    /// Keyed hashes of the payment codes seen, for scenario 34. A hash with a
    /// per-run random key, never the code: nothing here may hold a customer's
    /// payment code.
    codes_seen: HashSet<u64>,
    code_hasher: RandomState,
    transactions: TransactionIds,
    refund_ids: TransactionIds,
    /// out_refund_no → the out_trade_no of its order: unique per merchant.
    refund_numbers: HashMap<String, String>,
}

impl Default for Ledger {
    fn default() -> Self {
        Self {
            orders: BTreeMap::new(),
            turned_away: BTreeMap::new(),
            codes_seen: HashSet::new(),
            code_hasher: RandomState::new(),
            transactions: TransactionIds::new("4200"),
            refund_ids: TransactionIds::new("5030"),
            refund_numbers: HashMap::new(),
        }
    }
}

impl Ledger {
    /// Every entry sorted by out_trade_no, this till's own before another
    /// party's under the same number.
    pub fn snapshot(&self) -> Vec<LedgerEntry> {
        let mut entries: Vec<LedgerEntry> = self
            .turned_away
            .values()
            .chain(self.orders.values())
            .map(Order::entry)
            .collect();
        entries.sort_by(|a, b| {
            (a.out_trade_no.as_str(), a.foreign).cmp(&(b.out_trade_no.as_str(), b.foreign))
        });
        entries
    }

    pub fn micropay(&mut self, request: &MicropayRequest<'_>, arrival: Arrival) -> Outcome {
        if let Some(order) = self.orders.get_mut(request.out_trade_no)
            && order.state != State::NotCreated
        {
            // The gateway has this out_trade_no: never charge it again.
            let outcome = Outcome::fail(match order.state {
                State::Success | State::Refund => "ORDERPAID",
                State::Revoked => "ORDERREVERSED",
                State::Closed => "ORDERCLOSED",
                _ => "OUT_TRADE_NO_USED",
            });
            order.first_micropay.get_or_insert(arrival.at);
            order.record("micropay", arrival, &outcome);
            if let Some(mine) = self.turned_away.get_mut(request.out_trade_no) {
                mine.record("micropay", arrival, &outcome);
            }
            return outcome;
        }

        let seen_before = !self
            .codes_seen
            .insert(self.code_hasher.hash_one(request.auth_code.expose()));
        let mut scenario = request
            .forced
            .unwrap_or_else(|| Scenario::for_fee(request.total_fee));
        if scenario == Scenario::SandboxCouponRetryFirst && seen_before {
            scenario = Scenario::SandboxCouponRetryAgain;
        }
        let script = scenario.micropay();

        // A new order, or a retry of one the gateway never created.
        let order = self
            .orders
            .entry(request.out_trade_no.to_string())
            .or_insert_with_key(|no| Order::new(no));
        if script.start == Start::NumberTaken {
            // The other party's order takes the number; this request's
            // customer is kept aside, never charged.
            let mut theirs = Order::new(request.out_trade_no);
            theirs.foreign = true;
            theirs.openid = OTHER_PARTY_OPENID;
            theirs.total_fee = request.total_fee.saturating_add(OTHER_PARTY_EXTRA_FEE);
            theirs.scenario = Some(scenario);
            theirs.first_micropay = Some(arrival.at);
            theirs.charge(self.transactions.next());
            *order = theirs;
        }
        let order = match script.start {
            Start::NumberTaken => self
                .turned_away
                .entry(request.out_trade_no.to_string())
                .or_insert_with_key(|no| Order::new(no)),
            _ => order,
        };
        order.total_fee = request.total_fee;
        order.scenario = Some(scenario);
        order.auth_code_last4 = last4(request.auth_code.expose());
        order.attach = request.attach.unwrap_or_default().to_string();
        order.device_info = request.device_info.unwrap_or_default().to_string();
        order.body = request.body.unwrap_or_default().to_string();
        order.first_micropay.get_or_insert(arrival.at);
        match script.start {
            Start::Charge => order.charge(self.transactions.next()),
            Start::Pending => order.state = State::UserPaying,
            Start::Fail => order.state = State::PayError,
            Start::NotCreated | Start::NumberTaken => order.state = State::NotCreated,
        }
        let answer = match script.reply {
            MicropayReply::Paid => Answer::Success(order.paid_fields()),
            MicropayReply::PaidBadSign => Answer::SuccessBadSign(order.paid_fields()),
            MicropayReply::Error(code) => Answer::Fail(code),
            MicropayReply::BadGateway => Answer::BadGateway,
        };
        let outcome = Outcome {
            answer,
            slow: script.slow,
        };
        order.record("micropay", arrival, &outcome);
        outcome
    }

    pub fn query(&mut self, order: OrderRef<'_>, arrival: Arrival) -> Outcome {
        let Some(order) = find(&mut self.orders, order) else {
            return Outcome::fail("ORDERNOTEXIST");
        };
        order.queries += 1;
        if let (State::UserPaying, Some(scenario)) = (order.state, order.scenario) {
            match scenario.customer_at_query(order.queries) {
                Customer::StillPaying => {}
                Customer::Paid => order.charge(self.transactions.next()),
                Customer::PaymentFailed => order.state = State::PayError,
            }
        }
        let reply = order
            .scenario
            .map_or(QueryReply::TheOrder, |s| s.query_reply(order.queries));
        let answer = match (order.state, reply) {
            (State::NotCreated, _) => Answer::Fail("ORDERNOTEXIST"),
            (_, QueryReply::AnotherOrderClosed) => {
                Answer::AboutAnotherOrder(order.another_orders_fields(self.transactions.next()))
            }
            (_, QueryReply::TheOrder) => Answer::Success(order.query_fields()),
        };
        let outcome = Outcome {
            answer,
            slow: order.scenario.is_some_and(Scenario::slow_queries),
        };
        order.record("orderquery", arrival, &outcome);
        if let Some(mine) = self.turned_away.get_mut(&order.out_trade_no) {
            mine.record("orderquery", arrival, &outcome);
        }
        outcome
    }

    /// Reverses (撤销) an order: refunds a payment, and stops a customer who
    /// is still paying from ever completing. An out_trade_no never seen is
    /// recorded as reversed, so a micropay arriving late gets ORDERREVERSED.
    pub fn reverse(&mut self, order: OrderRef<'_>, arrival: Arrival) -> Outcome {
        let order = match (find(&mut self.orders, order), order) {
            (Some(found), _) => found,
            (None, OrderRef::OutTradeNo(no)) => self
                .orders
                .entry(no.to_string())
                .or_insert_with_key(|no| Order::new(no)),
            (None, OrderRef::TransactionId(_)) => return Outcome::fail("INVALID_TRANSACTIONID"),
        };
        order.reverses += 1;
        if order.state == State::Refund {
            // A refunded order is past reversing: its refunds stand.
            let outcome = Outcome {
                answer: Answer::FailSaying("INVALID_REQUEST", "订单已退款，不能撤销"),
                slow: false,
            };
            order.record("reverse", arrival, &outcome);
            return outcome;
        }
        let reply = match (order.state, order.scenario) {
            (State::UserPaying, Some(scenario)) => scenario.reverse(order.reverses),
            _ => ReverseReply::Reversed,
        };
        let recall = |flag: &str| {
            let mut fields = Fields::new();
            fields.set("recall", flag);
            Outcome::success(fields)
        };
        let outcome = match reply {
            ReverseReply::Reversed => {
                order.revoke();
                recall("N")
            }
            ReverseReply::PaidThenReversed => {
                order.charge(self.transactions.next());
                order.revoke();
                recall("N")
            }
            ReverseReply::Recall => recall("Y"),
            ReverseReply::SystemError => Outcome::fail("SYSTEMERROR"),
            ReverseReply::StillPaying => Outcome {
                answer: Answer::FailSaying("USERPAYING", "正在支付中不能发起撤销"),
                slow: false,
            },
        };
        order.record("reverse", arrival, &outcome);
        if let Some(mine) = self.turned_away.get_mut(&order.out_trade_no) {
            mine.record("reverse", arrival, &outcome);
        }
        outcome
    }

    /// Closes (关闭) an unpaid order so it can never be paid.
    pub fn close(&mut self, out_trade_no: &str, arrival: Arrival) -> Outcome {
        let Some(order) = self.orders.get_mut(out_trade_no) else {
            return Outcome::fail("ORDERNOTEXIST");
        };
        let outcome = match order.state {
            State::NotCreated => Outcome::fail("ORDERNOTEXIST"),
            State::Success | State::Refund => Outcome::fail("ORDERPAID"),
            State::Closed => Outcome::fail("ORDERCLOSED"),
            State::Revoked => Outcome::fail("ORDERREVERSED"),
            State::UserPaying | State::PayError => {
                order.state = State::Closed;
                let mut fields = Fields::new();
                fields.set("result_msg", "OK");
                Outcome::success(fields)
            }
        };
        order.record("closeorder", arrival, &outcome);
        if let Some(mine) = self.turned_away.get_mut(out_trade_no) {
            mine.record("closeorder", arrival, &outcome);
        }
        outcome
    }
}

impl Ledger {
    /// Refunds (申请退款) part or all of a paid order. The same
    /// out_refund_no again answers about the refund it made, never a second
    /// one; the refund_fee picks the scenario ([`RefundScenario::for_fee`]).
    pub fn refund(&mut self, request: &RefundRequest<'_>, arrival: Arrival) -> Outcome {
        if let Some(key) = self.refund_numbers.get(request.out_refund_no) {
            let order = self
                .orders
                .get_mut(key)
                .expect("a refund number belongs to an order of the book");
            let refund = order
                .refunds
                .iter()
                .find(|r| r.out_refund_no == request.out_refund_no)
                .expect("a refund number is one of its order's refunds");
            let same_order = match request.order {
                OrderRef::OutTradeNo(no) => no == order.out_trade_no,
                OrderRef::TransactionId(id) => order.transaction_id.as_deref() == Some(id),
            };
            let outcome = if same_order
                && refund.refund_fee == request.refund_fee
                && request.total_fee == order.total_fee
            {
                Outcome::success(order.refund_fields(refund))
            } else {
                refused("订单金额或退款金额与之前请求不一致，请核实后再试")
            };
            order.record("refund", arrival, &outcome);
            return outcome;
        }
        let Some(order) = find(&mut self.orders, request.order) else {
            return Outcome::fail("ORDERNOTEXIST");
        };
        let refusal = match order.state {
            State::NotCreated => Some(Outcome::fail("ORDERNOTEXIST")),
            State::Success | State::Refund => None,
            State::Revoked => Some(refused("订单已撤销，不能退款")),
            State::Closed => Some(refused("订单已关闭，不能退款")),
            State::UserPaying | State::PayError => Some(refused("订单未支付，不能退款")),
        }
        .or_else(|| {
            (request.total_fee != order.total_fee).then(|| refused("订单金额与原订单金额不一致"))
        })
        .or_else(|| {
            (order.refunds.len() >= MAX_REFUNDS_PER_ORDER)
                .then(|| refused("一笔订单最多可退款50次"))
        })
        .or_else(|| {
            (request.refund_fee > order.refundable())
                .then(|| refused("申请退款金额超过订单可退金额"))
        });
        if let Some(outcome) = refusal {
            order.record("refund", arrival, &outcome);
            return outcome;
        }
        let scenario = RefundScenario::for_fee(request.refund_fee);
        let Some(status) = scenario.starts_as() else {
            // NOTENOUGH: the merchant's balance is too low; nothing happens.
            let outcome = Outcome::fail("NOTENOUGH");
            order.record("refund", arrival, &outcome);
            return outcome;
        };
        let now = beijing_now();
        let refund = Refund {
            out_refund_no: request.out_refund_no.to_string(),
            refund_id: self.refund_ids.next(),
            refund_fee: request.refund_fee,
            scenario,
            status,
            applied_at: now,
            succeeded_at: (status == RefundStatus::Success).then_some(now),
            desc: request.refund_desc.unwrap_or_default().to_string(),
        };
        if status.counts() {
            order.refunded += refund.refund_fee;
            order.state = State::Refund;
        }
        let outcome = match scenario {
            RefundScenario::SystemErrorAccepted => Outcome::fail("SYSTEMERROR"),
            _ => Outcome::success(order.refund_fields(&refund)),
        };
        self.refund_numbers
            .insert(refund.out_refund_no.clone(), order.out_trade_no.clone());
        order.refunds.push(refund);
        order.record("refund", arrival, &outcome);
        outcome
    }

    /// Answers a refundquery (查询退款): one refund, or every refund of an
    /// order. A PROCESSING refund of scenario 7 is SUCCESS from the next query on.
    pub fn refund_query(&mut self, by: RefundRef<'_>, arrival: Arrival) -> Outcome {
        let found = match by {
            RefundRef::RefundId(id) => self.orders.values_mut().find_map(|order| {
                let at = order.refunds.iter().position(|r| r.refund_id == id)?;
                Some((order, Some(at)))
            }),
            RefundRef::OutRefundNo(no) => self
                .refund_numbers
                .get(no)
                .and_then(|key| self.orders.get_mut(key))
                .and_then(|order| {
                    let at = order.refunds.iter().position(|r| r.out_refund_no == no)?;
                    Some((order, Some(at)))
                }),
            RefundRef::Order(by) => find(&mut self.orders, by).map(|order| (order, None)),
        };
        let Some((order, which)) = found.filter(|(order, _)| !order.refunds.is_empty()) else {
            return Outcome::fail("REFUNDNOTEXIST");
        };
        let indices: Vec<usize> = match which {
            Some(at) => vec![at],
            None => (0..order.refunds.len()).collect(),
        };
        let outcome = Outcome::success(order.refund_query_fields(&indices));
        for at in indices {
            let refund = &mut order.refunds[at];
            if refund.status == RefundStatus::Processing {
                refund.status = RefundStatus::Success;
                refund.succeeded_at = Some(beijing_now());
            }
        }
        order.record("refundquery", arrival, &outcome);
        outcome
    }

    /// Every row of the ALL bill of `date` (Beijing), in time order: a
    /// SUCCESS row per charge, a REVOKED row per charge a reverse returned
    /// (on the charge's day), a REFUND row per refund that moved money (on
    /// the day it was accepted). Every till's orders are in it.
    pub fn bill_lines(&self, date: Date) -> Vec<BillLine> {
        let mut lines = Vec::new();
        for order in self.orders.values() {
            order.bill_lines(date, &mut lines);
        }
        lines.sort_by(|a, b| (a.time, &a.out_trade_no).cmp(&(b.time, &b.out_trade_no)));
        lines
    }
}

/// INVALID_REQUEST: the request is well formed but breaks a refund rule.
fn refused(why: &'static str) -> Outcome {
    Outcome {
        answer: Answer::FailSaying("INVALID_REQUEST", why),
        slow: false,
    }
}

/// 交易时间 and refund_success_time: `yyyy-MM-dd HH:mm:ss`, Beijing time.
pub fn bill_time(at: OffsetDateTime) -> String {
    at.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]"
    ))
    .expect("a date formats with a fixed numeric description")
}

fn find<'a>(orders: &'a mut BTreeMap<String, Order>, order: OrderRef<'_>) -> Option<&'a mut Order> {
    match order {
        OrderRef::OutTradeNo(no) => orders.get_mut(no),
        OrderRef::TransactionId(id) => orders
            .values_mut()
            .find(|o| o.transaction_id.as_deref() == Some(id)),
    }
}

fn last4(code: &str) -> String {
    code[code.len().saturating_sub(4)..].to_string()
}

/// Now, in Beijing time (UTC+8), the gateway's clock.
pub fn beijing_now() -> OffsetDateTime {
    OffsetDateTime::now_utc().to_offset(offset!(+8))
}

/// 28-digit ids like WeChat's transaction ids `4200…` (and refund ids, with
/// another prefix): the day, a per-run random part (ids differ between runs)
/// and a sequence (ids never repeat in a run).
struct TransactionIds {
    prefix: &'static str,
    run: u32,
    sequence: u64,
}

impl TransactionIds {
    fn new(prefix: &'static str) -> Self {
        Self {
            prefix,
            run: rand::rng().random_range(0..1_000_000),
            sequence: 0,
        }
    }

    fn next(&mut self) -> String {
        self.sequence += 1;
        let day = beijing_now()
            .format(format_description!("[year][month][day]"))
            .expect("a date formats with a fixed numeric description");
        format!("{}{day}{:06}{:010}", self.prefix, self.run, self.sequence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code() -> AuthCode {
        AuthCode::parse("134539517967686076").unwrap()
    }

    fn pay(ledger: &mut Ledger, no: &str, fee: u64) -> Outcome {
        let code = code();
        let request = MicropayRequest {
            out_trade_no: no,
            total_fee: fee,
            auth_code: &code,
            attach: None,
            device_info: Some("T01"),
            body: Some("test"),
            forced: None,
        };
        ledger.micropay(&request, Arrival::now(None))
    }

    fn entry(ledger: &Ledger, no: &str) -> LedgerEntry {
        ledger
            .snapshot()
            .into_iter()
            .find(|e| e.out_trade_no == no)
            .unwrap()
    }

    #[test]
    fn a_resent_micropay_never_charges_twice() {
        let mut ledger = Ledger::default();
        assert!(matches!(
            pay(&mut ledger, "A1", 100).answer,
            Answer::Success(_)
        ));
        assert_eq!(
            pay(&mut ledger, "A1", 100).answer,
            Answer::Fail("ORDERPAID")
        );
        let a1 = entry(&ledger, "A1");
        assert_eq!((a1.charged, a1.refunded, a1.calls.len()), (100, 0, 2));
        assert_eq!(a1.auth_code_last4, "6076");
        assert_eq!(a1.transaction_id.as_ref().map(String::len), Some(28));
    }

    #[test]
    fn a_reverse_refunds_and_stops_a_paying_customer() {
        let mut ledger = Ledger::default();
        pay(&mut ledger, "B1", 40);
        ledger.reverse(OrderRef::OutTradeNo("B1"), Arrival::now(None));
        for _ in 0..3 {
            let answer = ledger
                .query(OrderRef::OutTradeNo("B1"), Arrival::now(None))
                .answer;
            let Answer::Success(fields) = answer else {
                panic!("{answer:?}")
            };
            assert_eq!(fields.get("trade_state"), Some("REVOKED"));
        }
        assert_eq!(entry(&ledger, "B1").net_charged(), 0);
        assert_eq!(entry(&ledger, "B1").charged, 0);

        pay(&mut ledger, "B2", 1);
        ledger.reverse(OrderRef::OutTradeNo("B2"), Arrival::now(None));
        let b2 = entry(&ledger, "B2");
        assert_eq!(
            (b2.charged, b2.refunded, b2.trade_state.as_str()),
            (1, 1, "REVOKED")
        );
        // A second reverse changes nothing; queries say REVOKED exactly as
        // for B1, never charged: only the ledger (and the bill) tell.
        ledger.reverse(OrderRef::OutTradeNo("B2"), Arrival::now(None));
        let answer = ledger
            .query(OrderRef::OutTradeNo("B2"), Arrival::now(None))
            .answer;
        let Answer::Success(fields) = answer else {
            panic!("{answer:?}")
        };
        assert_eq!(fields.get("trade_state"), Some("REVOKED"));
        let never_charged = ledger
            .query(OrderRef::OutTradeNo("B1"), Arrival::now(None))
            .answer;
        let Answer::Success(b1) = never_charged else {
            panic!("{never_charged:?}")
        };
        let names = |f: &Fields| f.iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>();
        assert_eq!(names(&fields), names(&b1));
        assert_eq!(fields.get("transaction_id"), None);
        assert_eq!(entry(&ledger, "B2").refunded, 1);
        assert_eq!(
            pay(&mut ledger, "B2", 1).answer,
            Answer::Fail("ORDERREVERSED")
        );
    }

    #[test]
    fn a_reverse_first_makes_the_late_micropay_orderreversed() {
        let mut ledger = Ledger::default();
        ledger.reverse(OrderRef::OutTradeNo("C1"), Arrival::now(None));
        assert_eq!(
            pay(&mut ledger, "C1", 1).answer,
            Answer::Fail("ORDERREVERSED")
        );
        assert_eq!(entry(&ledger, "C1").charged, 0);
        assert_eq!(entry(&ledger, "C1").scenario, "no-micropay");
    }

    #[test]
    fn a_taken_number_reaches_the_other_partys_order_and_never_charges_ours() {
        for (fee, code) in [(53, "OUT_TRADE_NO_USED"), (54, "ORDERPAID")] {
            let mut ledger = Ledger::default();
            assert_eq!(pay(&mut ledger, "E1", fee).answer, Answer::Fail(code));
            let query = ledger.query(OrderRef::OutTradeNo("E1"), Arrival::now(None));
            let Answer::Success(fields) = query.answer else {
                panic!("{query:?}")
            };
            let theirs = fee + OTHER_PARTY_EXTRA_FEE;
            assert_eq!(fields.get("trade_state"), Some("SUCCESS"));
            assert_eq!(fields.get("total_fee"), Some(theirs.to_string().as_str()));
            assert_eq!(fields.get("openid"), Some(OTHER_PARTY_OPENID));
            ledger.reverse(OrderRef::OutTradeNo("E1"), Arrival::now(None));

            let entries = ledger.snapshot();
            let view: Vec<_> = entries
                .iter()
                .map(|e| {
                    let calls: Vec<_> = e.calls.iter().map(|c| c.answer.as_str()).collect();
                    (
                        e.out_trade_no.as_str(),
                        e.foreign,
                        e.total_fee,
                        e.trade_state.as_str(),
                        e.charged,
                        e.refunded,
                        calls,
                    )
                })
                .collect();
            assert_eq!(
                view,
                [
                    (
                        "E1",
                        false,
                        fee,
                        "NOTPAY",
                        0,
                        0,
                        vec![code, "SUCCESS", "recall=N"]
                    ),
                    (
                        "E1",
                        true,
                        theirs,
                        "REVOKED",
                        theirs,
                        theirs,
                        vec!["SUCCESS", "recall=N"]
                    ),
                ],
                "fee {fee}"
            );
            assert_eq!(entries[0].transaction_id, None);
            assert_eq!(
                fields.get("transaction_id"),
                entries[1].transaction_id.as_deref()
            );
            // A re-sent micropay still charges nobody.
            assert_eq!(
                pay(&mut ledger, "E1", fee).answer,
                Answer::Fail("ORDERREVERSED")
            );
            assert_eq!(entry(&ledger, "E1").charged, 0);
        }
    }

    #[test]
    fn scenario_55s_first_answer_is_about_another_order() {
        let mut ledger = Ledger::default();
        pay(&mut ledger, "F1", 55);
        let first = ledger.query(OrderRef::OutTradeNo("F1"), Arrival::now(None));
        let Answer::AboutAnotherOrder(fields) = &first.answer else {
            panic!("{first:?}")
        };
        assert_eq!(fields.get("out_trade_no"), Some("F2"));
        assert_eq!(fields.get("trade_state"), Some("CLOSED"));
        assert_eq!(first.summary(), "CLOSED(another order)");
        let paid = entry(&ledger, "F1");
        assert_eq!((paid.trade_state.as_str(), paid.charged), ("SUCCESS", 55));
        assert_ne!(fields.get("transaction_id"), paid.transaction_id.as_deref());

        let second = ledger.query(OrderRef::OutTradeNo("F1"), Arrival::now(None));
        let Answer::Success(fields) = &second.answer else {
            panic!("{second:?}")
        };
        assert_eq!(fields.get("out_trade_no"), Some("F1"));
        assert_eq!(fields.get("transaction_id"), paid.transaction_id.as_deref());
    }

    #[test]
    fn the_second_order_with_a_scenario_34_code_succeeds() {
        let mut ledger = Ledger::default();
        assert!(pay(&mut ledger, "D1", 34).slow);
        let again = pay(&mut ledger, "D2", 34);
        let Answer::Success(fields) = again.answer else {
            panic!("{again:?}")
        };
        assert_eq!(fields.get("cash_fee"), Some("33"));
        assert_eq!(fields.get("coupon_fee_0"), Some("1"));
        assert_eq!(entry(&ledger, "D2").scenario, "sandbox-coupon-retry-again");
    }

    fn refund(ledger: &mut Ledger, no: &str, refund_no: &str, total: u64, fee: u64) -> Outcome {
        let request = RefundRequest {
            order: OrderRef::OutTradeNo(no),
            out_refund_no: refund_no,
            total_fee: total,
            refund_fee: fee,
            refund_desc: None,
        };
        ledger.refund(&request, Arrival::now(None))
    }

    fn refund_answer(outcome: &Outcome) -> String {
        match &outcome.answer {
            Answer::Success(fields) => format!(
                "SUCCESS {}",
                fields
                    .get("refund_id")
                    .or(fields.get("refund_status_0"))
                    .unwrap_or_default()
            ),
            Answer::Fail(code) => code.to_string(),
            Answer::FailSaying(code, why) => format!("{code}:{why}"),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn one_out_refund_no_refunds_once_and_refunds_never_exceed_the_charge() {
        let mut ledger = Ledger::default();
        pay(&mut ledger, "R1", 1000);
        let first = refund_answer(&refund(&mut ledger, "R1", "RF1", 1000, 600));
        assert!(first.starts_with("SUCCESS 5030"), "{first}");
        assert_eq!(
            refund_answer(&refund(&mut ledger, "R1", "RF1", 1000, 600)),
            first
        );
        assert_eq!(
            refund_answer(&refund(&mut ledger, "R1", "RF1", 1000, 500)),
            "INVALID_REQUEST:订单金额或退款金额与之前请求不一致，请核实后再试"
        );
        assert_eq!(
            refund_answer(&refund(&mut ledger, "R1", "RF2", 1000, 401)),
            "INVALID_REQUEST:申请退款金额超过订单可退金额"
        );
        assert_eq!(
            refund_answer(&refund(&mut ledger, "R1", "RF2", 999, 400)),
            "INVALID_REQUEST:订单金额与原订单金额不一致"
        );
        assert!(refund_answer(&refund(&mut ledger, "R1", "RF2", 1000, 400)).starts_with("SUCCESS"));
        let r1 = entry(&ledger, "R1");
        assert_eq!(
            (r1.trade_state.as_str(), r1.charged, r1.refunded),
            ("REFUND", 1000, 1000)
        );
        assert_eq!(r1.refunds.len(), 2);
        assert_eq!(
            refund_answer(&refund(&mut ledger, "NOPE", "RF3", 1, 1)),
            "ORDERNOTEXIST"
        );
        // A refunded order is not reversed, closed or paid again.
        assert_eq!(
            ledger
                .reverse(OrderRef::OutTradeNo("R1"), Arrival::now(None))
                .answer,
            Answer::FailSaying("INVALID_REQUEST", "订单已退款，不能撤销")
        );
        assert_eq!(
            pay(&mut ledger, "R1", 1000).answer,
            Answer::Fail("ORDERPAID")
        );
        let query = ledger.query(OrderRef::OutTradeNo("R1"), Arrival::now(None));
        assert_eq!(query.summary(), "REFUND");
    }

    #[test]
    fn only_paid_orders_are_refunded_and_at_most_50_times() {
        let mut ledger = Ledger::default();
        pay(&mut ledger, "U1", 41);
        assert_eq!(
            refund_answer(&refund(&mut ledger, "U1", "RU1", 41, 1)),
            "INVALID_REQUEST:订单未支付，不能退款"
        );
        pay(&mut ledger, "V1", 100);
        ledger.reverse(OrderRef::OutTradeNo("V1"), Arrival::now(None));
        assert_eq!(
            refund_answer(&refund(&mut ledger, "V1", "RV1", 100, 1)),
            "INVALID_REQUEST:订单已撤销，不能退款"
        );
        pay(&mut ledger, "M1", 100);
        for n in 0..MAX_REFUNDS_PER_ORDER {
            let answer = refund_answer(&refund(&mut ledger, "M1", &format!("RM{n}"), 100, 1));
            assert!(answer.starts_with("SUCCESS"), "{n}: {answer}");
        }
        assert_eq!(
            refund_answer(&refund(&mut ledger, "M1", "RM50", 100, 1)),
            "INVALID_REQUEST:一笔订单最多可退款50次"
        );
        assert_eq!(entry(&ledger, "M1").refunded, 50);
    }

    #[test]
    fn refund_scenarios_follow_the_refund_fee() {
        let mut ledger = Ledger::default();
        pay(&mut ledger, "S1", 1000);
        // 9: NOTENOUGH, nothing recorded, the same number may be tried again.
        assert_eq!(
            refund_answer(&refund(&mut ledger, "S1", "N9", 1000, 9)),
            "NOTENOUGH"
        );
        assert!(entry(&ledger, "S1").refunds.is_empty());
        // 8: SYSTEMERROR, yet recorded; the retry answers about it.
        assert_eq!(
            refund_answer(&refund(&mut ledger, "S1", "E8", 1000, 8)),
            "SYSTEMERROR"
        );
        let retry = refund_answer(&refund(&mut ledger, "S1", "E8", 1000, 8));
        assert_eq!(
            retry,
            format!("SUCCESS {}", entry(&ledger, "S1").refunds[0].refund_id)
        );
        // 7: PROCESSING at the first query, SUCCESS after.
        refund(&mut ledger, "S1", "P7", 1000, 7);
        let query = |ledger: &mut Ledger, no| {
            refund_answer(&ledger.refund_query(RefundRef::OutRefundNo(no), Arrival::now(None)))
        };
        assert_eq!(query(&mut ledger, "P7"), "SUCCESS PROCESSING");
        assert_eq!(query(&mut ledger, "P7"), "SUCCESS SUCCESS");
        // 10: CHANGE; 11: REFUNDCLOSE, which gives the amount back.
        refund(&mut ledger, "S1", "C10", 1000, 10);
        assert_eq!(query(&mut ledger, "C10"), "SUCCESS CHANGE");
        refund(&mut ledger, "S1", "X11", 1000, 11);
        assert_eq!(query(&mut ledger, "X11"), "SUCCESS REFUNDCLOSE");
        assert_eq!(entry(&ledger, "S1").refunded, 8 + 7 + 10);
        assert_eq!(query(&mut ledger, "NONE"), "REFUNDNOTEXIST");
        let all = ledger.refund_query(
            RefundRef::Order(OrderRef::OutTradeNo("S1")),
            Arrival::now(None),
        );
        let Answer::Success(fields) = all.answer else {
            panic!("{all:?}")
        };
        assert_eq!(fields.get("refund_count"), Some("4"));
        assert_eq!(fields.get("refund_status_3"), Some("REFUNDCLOSE"));
        assert_eq!(fields.get("out_refund_no_0"), Some("E8"));
    }

    #[test]
    fn the_bill_has_charges_refunds_and_returned_charges_of_the_day() {
        let mut ledger = Ledger::default();
        pay(&mut ledger, "B1", 300);
        pay(&mut ledger, "B2", 52);
        ledger.query(OrderRef::OutTradeNo("B2"), Arrival::now(None));
        ledger.reverse(OrderRef::OutTradeNo("B2"), Arrival::now(None));
        pay(&mut ledger, "B3", 41);
        ledger.reverse(OrderRef::OutTradeNo("B3"), Arrival::now(None));
        refund(&mut ledger, "B1", "RB1", 300, 100);
        refund(&mut ledger, "B1", "RB2", 300, 11);
        let today = beijing_now().date();
        let lines = ledger.bill_lines(today);
        let view: Vec<_> = lines
            .iter()
            .map(|l| {
                (
                    l.out_trade_no.as_str(),
                    l.state,
                    l.total_fee,
                    l.refund_fee,
                    l.out_refund_no.as_str(),
                )
            })
            .collect();
        assert_eq!(
            view,
            [
                ("B1", BillState::Success, 300, 0, ""),
                ("B2", BillState::Revoked, 52, 52, ""),
                ("B1", BillState::Refund, 0, 100, "RB1"),
            ]
        );
        assert!(ledger.bill_lines(today.previous_day().unwrap()).is_empty());
    }
}
