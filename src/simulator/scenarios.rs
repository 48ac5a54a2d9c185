//! The scripted customers and gateway moods, chosen by `total_fee` like
//! WeChat's own sandbox (仿真测试) does, so a cashier or a test picks a
//! behaviour just by typing an amount.
//!
//! Everything here is pure: a scenario says what happens at the micropay, at
//! the n-th query and at the n-th reverse. Time only enters as "this answer is
//! slow" (the server sleeps `slow_answer`) and as counts of calls, never as a
//! wall-clock schedule, so tests with scaled-down timings are deterministic.

use std::sync::LazyLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Success,
    Coupon,
    FullCoupon,
    SandboxUserPaying,
    SandboxTimeoutPaid,
    SandboxTimeoutPayError,
    SandboxEverythingTimesOut,
    SandboxCouponRetryFirst,
    /// A later order with the auth_code of a [`Scenario::SandboxCouponRetryFirst`]
    /// order: not in the fee table, the ledger picks it.
    SandboxCouponRetryAgain,
    PaysAtSecondQuery,
    UserPayingForever,
    SystemErrorCharged,
    SystemErrorNoOrder,
    NotEnough,
    AuthCodeExpire,
    PayError,
    RecallTwice,
    ReverseSystemError,
    TamperedSign,
    MisreportedFee,
    BadGateway,
    PaysDuringReverse,
    /// Another till with our till id minted the same out_trade_no and its
    /// customer paid first; the micropay is refused with this code.
    NumberTaken(Taken),
    AnswerAboutAnotherOrder,
    ReverseWhilePaying,
    PasswordRequired,
}

use Scenario::*;

/// WeChat asks for the password above 1000 yuan (提交付款码支付).
const PASSWORD_ABOVE: u64 = 100_000;

/// The fee table: the single source for [`Scenario::for_fee`] and the README.
#[rustfmt::skip]
const TABLE: &[(u64, Scenario, &str)] = &[
    (1, Success, "immediate success (so is every amount not in this table)"),
    (2, Coupon, "success with a 0.01 coupon: cash_fee=1, coupon_count=1, coupon_*_0 fields"),
    (3, FullCoupon, "success paid by two coupons: cash_fee=0, coupon_*_0/_1, settlement_total_fee"),
    (30, SandboxUserPaying, "micropay USERPAYING; the first query is SUCCESS"),
    (31, SandboxTimeoutPaid, "micropay answers late (slow_answer) but charges; query SUCCESS"),
    (32, SandboxTimeoutPayError, "micropay answers late, nothing charged; query PAYERROR"),
    (33, SandboxEverythingTimesOut, "micropay and every query answer late (USERPAYING, never charged); reverse recall=N"),
    (34, SandboxCouponRetryFirst, "like 33 for the first order with an auth_code; later orders with it succeed with a coupon"),
    (40, PaysAtSecondQuery, "USERPAYING; the customer pays at the 2nd query"),
    (41, UserPayingForever, "USERPAYING until reversed; never charged"),
    (42, SystemErrorCharged, "micropay SYSTEMERROR but charged; query SUCCESS"),
    (43, SystemErrorNoOrder, "micropay SYSTEMERROR, no order created: ORDERNOTEXIST; reverse recall=N"),
    (44, NotEnough, "NOTENOUGH (balance too low)"),
    (45, AuthCodeExpire, "AUTHCODEEXPIRE (payment code expired)"),
    (46, PayError, "USERPAYING; the query says PAYERROR"),
    (47, RecallTwice, "USERPAYING forever; reverse answers recall=Y twice, then recall=N"),
    (48, ReverseSystemError, "USERPAYING forever; every reverse answers SYSTEMERROR"),
    (49, TamperedSign, "charged, but the micropay answer's sign is tampered; queries are signed right"),
    (50, MisreportedFee, "charged, but every SUCCESS answer reports total_fee+1"),
    (51, BadGateway, "micropay answers HTTP 502 with an nginx HTML page, no order: ORDERNOTEXIST"),
    (52, PaysDuringReverse, "USERPAYING; the customer pays just as the reverse arrives, which refunds"),
    (53, NumberTaken(Taken::OutTradeNoUsed), "another party's paid order (total_fee+1000) holds the number: OUT_TRADE_NO_USED, customer not charged; queries and reverses reach that order"),
    (54, NumberTaken(Taken::OrderPaid), "like 53, answered ORDERPAID"),
    (55, AnswerAboutAnotherOrder, "USERPAYING; the customer pays as the 1st query arrives, whose signed answer is about another order (CLOSED); the 2nd query is SUCCESS"),
    (56, ReverseWhilePaying, "USERPAYING forever; the 1st reverse answers USERPAYING (正在支付中不能发起撤销), the next recall=N"),
    (PASSWORD_ABOVE + 1, PasswordRequired, "any amount over 1000.00 yuan: password needed, USERPAYING; the first query is SUCCESS"),
];

/// (fee in fen, scenario name, one-line description), in fee order.
pub fn scenario_table() -> &'static [(u64, &'static str, &'static str)] {
    static PUBLIC: LazyLock<Vec<(u64, &'static str, &'static str)>> = LazyLock::new(|| {
        TABLE
            .iter()
            .map(|&(fee, scenario, description)| (fee, scenario.name(), description))
            .collect()
    });
    &PUBLIC
}

/// The fen by which the other party's order under a taken number (see
/// [`Scenario::NumberTaken`]) differs from the one asked for.
pub const OTHER_PARTY_EXTRA_FEE: u64 = 1000;

/// How the gateway refuses a micropay whose out_trade_no already holds
/// another party's paid order (提交付款码支付 lists both codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    OutTradeNoUsed,
    OrderPaid,
}

impl Taken {
    pub fn err_code(self) -> &'static str {
        match self {
            Taken::OutTradeNoUsed => "OUT_TRADE_NO_USED",
            Taken::OrderPaid => "ORDERPAID",
        }
    }
}

/// What becomes of the order when its micropay arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Paid at once.
    Charge,
    /// The customer is asked to confirm on the phone (USERPAYING).
    Pending,
    /// The payment failed; no money moved (PAYERROR).
    Fail,
    /// The gateway fell over before creating the order.
    NotCreated,
    /// The number already holds another party's order, paid by another
    /// customer for `total_fee` + [`OTHER_PARTY_EXTRA_FEE`]; this request's
    /// customer is not charged, and later calls about the number reach that
    /// order.
    NumberTaken,
}

/// What the micropay answer says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MicropayReply {
    Paid,
    /// Paid, with one hex digit of `sign` flipped.
    PaidBadSign,
    Error(&'static str),
    /// HTTP 502 with an HTML page instead of XML.
    BadGateway,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Micropay {
    pub start: Start,
    pub reply: MicropayReply,
    /// Answer only after `slow_answer`, past the till's read timeout.
    pub slow: bool,
}

/// What a still-paying customer has done by the time a query arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Customer {
    StillPaying,
    Paid,
    PaymentFailed,
}

/// Which order an orderquery answer is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryReply {
    /// The order asked for, as the gateway has it.
    TheOrder,
    /// A correctly signed answer about another order of the merchant (CLOSED,
    /// another out_trade_no and transaction_id), as a misrouted or replayed
    /// answer through a proxy would be.
    AnotherOrderClosed,
}

/// How the gateway takes a reverse of an order that is not closed yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReverseReply {
    /// recall=N: closed, and a payment is returned.
    Reversed,
    /// recall=Y: "call reverse again"; nothing changes yet.
    Recall,
    SystemError,
    /// err_code USERPAYING, 正在支付中不能发起撤销: the customer is still
    /// paying, so the gateway will not reverse yet; nothing changes.
    StillPaying,
    /// The customer's payment lands first, then the reverse refunds it.
    PaidThenReversed,
}

impl Scenario {
    pub fn for_fee(total_fee: u64) -> Scenario {
        if total_fee > PASSWORD_ABOVE {
            return PasswordRequired;
        }
        TABLE
            .iter()
            .find(|row| row.0 == total_fee)
            .map_or(Success, |row| row.1)
    }

    /// The newer sandbox picks a case with the `Wechatpay-Negative-Test` header.
    pub fn for_negative_test(header: &str) -> Option<Scenario> {
        match header {
            "MICROPAY_USERPAYING" => Some(SandboxUserPaying),
            "MICROPAY_TIMEOUT" => Some(SandboxTimeoutPaid),
            "MICROPAY_PAYERROR" => Some(SandboxTimeoutPayError),
            "MICROPAY_PAY_QUERY_TIMEOUT" => Some(SandboxEverythingTimesOut),
            _ => None,
        }
    }

    /// The name shown in the ledger and the README.
    pub fn name(self) -> &'static str {
        match self {
            Success => "success",
            Coupon => "coupon",
            FullCoupon => "full-coupon",
            SandboxUserPaying => "sandbox-userpaying",
            SandboxTimeoutPaid => "sandbox-timeout-paid",
            SandboxTimeoutPayError => "sandbox-timeout-payerror",
            SandboxEverythingTimesOut => "sandbox-everything-times-out",
            SandboxCouponRetryFirst => "sandbox-coupon-retry",
            SandboxCouponRetryAgain => "sandbox-coupon-retry-again",
            PaysAtSecondQuery => "pays-at-second-query",
            UserPayingForever => "userpaying-forever",
            SystemErrorCharged => "systemerror-charged",
            SystemErrorNoOrder => "systemerror-no-order",
            NotEnough => "notenough",
            AuthCodeExpire => "authcodeexpire",
            PayError => "payerror",
            RecallTwice => "recall-twice",
            ReverseSystemError => "reverse-systemerror",
            TamperedSign => "tampered-sign",
            MisreportedFee => "misreported-fee",
            BadGateway => "bad-gateway",
            PaysDuringReverse => "pays-during-reverse",
            NumberTaken(Taken::OutTradeNoUsed) => "number-taken-out-trade-no-used",
            NumberTaken(Taken::OrderPaid) => "number-taken-orderpaid",
            AnswerAboutAnotherOrder => "answer-about-another-order",
            ReverseWhilePaying => "reverse-while-paying",
            PasswordRequired => "password-required",
        }
    }

    pub fn micropay(self) -> Micropay {
        let (start, reply, slow) = match self {
            Success | Coupon | FullCoupon | SandboxCouponRetryAgain | MisreportedFee => {
                (Start::Charge, MicropayReply::Paid, false)
            }
            TamperedSign => (Start::Charge, MicropayReply::PaidBadSign, false),
            SystemErrorCharged => (Start::Charge, MicropayReply::Error("SYSTEMERROR"), false),
            SystemErrorNoOrder => (
                Start::NotCreated,
                MicropayReply::Error("SYSTEMERROR"),
                false,
            ),
            BadGateway => (Start::NotCreated, MicropayReply::BadGateway, false),
            NumberTaken(taken) => (
                Start::NumberTaken,
                MicropayReply::Error(taken.err_code()),
                false,
            ),
            NotEnough => (Start::Fail, MicropayReply::Error("NOTENOUGH"), false),
            AuthCodeExpire => (Start::Fail, MicropayReply::Error("AUTHCODEEXPIRE"), false),
            SandboxTimeoutPaid => (Start::Charge, MicropayReply::Paid, true),
            // Nobody waits for these late answers; SYSTEMERROR is what a
            // patient client would finally read.
            SandboxTimeoutPayError => (Start::Fail, MicropayReply::Error("SYSTEMERROR"), true),
            SandboxEverythingTimesOut | SandboxCouponRetryFirst => {
                (Start::Pending, MicropayReply::Error("USERPAYING"), true)
            }
            SandboxUserPaying
            | PaysAtSecondQuery
            | UserPayingForever
            | PayError
            | RecallTwice
            | ReverseSystemError
            | PaysDuringReverse
            | AnswerAboutAnotherOrder
            | ReverseWhilePaying
            | PasswordRequired => (Start::Pending, MicropayReply::Error("USERPAYING"), false),
        };
        Micropay { start, reply, slow }
    }

    /// What a customer still paying has done by the `nth` query (1-based).
    pub fn customer_at_query(self, nth: u32) -> Customer {
        match self {
            // 55: the payment lands while the first query's answer goes
            // astray, so a till that believes that answer leaves a charge.
            SandboxUserPaying | AnswerAboutAnotherOrder | PasswordRequired => Customer::Paid,
            PaysAtSecondQuery if nth >= 2 => Customer::Paid,
            PayError => Customer::PaymentFailed,
            _ => Customer::StillPaying,
        }
    }

    /// Which order the answer to the `nth` query (1-based) is about.
    pub fn query_reply(self, nth: u32) -> QueryReply {
        match self {
            AnswerAboutAnotherOrder if nth == 1 => QueryReply::AnotherOrderClosed,
            _ => QueryReply::TheOrder,
        }
    }

    /// Every query of these orders answers only after `slow_answer`.
    pub fn slow_queries(self) -> bool {
        matches!(self, SandboxEverythingTimesOut | SandboxCouponRetryFirst)
    }

    /// The `nth` reverse (1-based) of an order that is not closed yet.
    pub fn reverse(self, nth: u32) -> ReverseReply {
        match self {
            RecallTwice if nth <= 2 => ReverseReply::Recall,
            ReverseSystemError => ReverseReply::SystemError,
            ReverseWhilePaying if nth == 1 => ReverseReply::StillPaying,
            PaysDuringReverse => ReverseReply::PaidThenReversed,
            _ => ReverseReply::Reversed,
        }
    }

    /// The coupons a paid order of this scenario used: (fen, CASH or NO_CASH).
    /// NO_CASH (免充值) coupons lower `settlement_total_fee`.
    pub fn coupons(self) -> &'static [(u64, &'static str)] {
        match self {
            Coupon | SandboxCouponRetryAgain => &[(1, "CASH")],
            // Only fee 3 plays this, so the coupons add up to exactly 3.
            FullCoupon => &[(1, "CASH"), (2, "NO_CASH")],
            _ => &[],
        }
    }

    /// Paid answers of this scenario lie about `total_fee` (by one fen more).
    pub fn misreports_fee(self) -> bool {
        self == MisreportedFee
    }
}

/// How a refund goes, chosen by its `refund_fee` in fen (the order's amount
/// plays no part): the second table of the README.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefundScenario {
    /// Accepted, and refundquery says SUCCESS.
    Refunded,
    /// Accepted; the first refundquery about it says PROCESSING, later ones SUCCESS.
    ProcessingThenSuccess,
    /// Accepted and recorded, but the answer is SYSTEMERROR; the same
    /// out_refund_no again answers SUCCESS about that refund.
    SystemErrorAccepted,
    /// NOTENOUGH: the merchant's balance is too low; nothing is recorded.
    NotEnough,
    /// Accepted; refundquery says CHANGE (the card is frozen or closed: the
    /// merchant platform must handle it).
    Change,
    /// Accepted; refundquery says REFUNDCLOSE: no money moved, and the
    /// amount may be refunded again under a new out_refund_no.
    Closed,
}

/// What a refund's status starts as, and what refundquery then answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundStatus {
    Success,
    Processing,
    #[serde(rename = "REFUNDCLOSE")]
    RefundClose,
    Change,
}

impl RefundStatus {
    pub fn wire_name(self) -> &'static str {
        match self {
            RefundStatus::Success => "SUCCESS",
            RefundStatus::Processing => "PROCESSING",
            RefundStatus::RefundClose => "REFUNDCLOSE",
            RefundStatus::Change => "CHANGE",
        }
    }

    /// Whether the money left the merchant (or is on its way): every status
    /// but REFUNDCLOSE counts against what remains refundable.
    pub fn counts(self) -> bool {
        self != RefundStatus::RefundClose
    }
}

/// The refund table: the single source for [`RefundScenario::for_fee`] and the README.
#[rustfmt::skip]
const REFUND_TABLE: &[(u64, RefundScenario, &str)] = &[
    (7, RefundScenario::ProcessingThenSuccess, "accepted; the 1st refundquery says PROCESSING, later ones SUCCESS"),
    (8, RefundScenario::SystemErrorAccepted, "SYSTEMERROR, but the refund is recorded: the same out_refund_no again answers SUCCESS about it (same refund_id)"),
    (9, RefundScenario::NotEnough, "NOTENOUGH (the merchant's balance is too low); nothing recorded"),
    (10, RefundScenario::Change, "accepted; refundquery says CHANGE (a frozen card: handle it on the merchant platform)"),
    (11, RefundScenario::Closed, "accepted; refundquery says REFUNDCLOSE: nothing refunded, the amount stays refundable"),
];

/// (refund_fee in fen, scenario name, one-line description), in fee order;
/// every other refund_fee is accepted and refundquery says SUCCESS.
pub fn refund_scenario_table() -> &'static [(u64, &'static str, &'static str)] {
    static PUBLIC: LazyLock<Vec<(u64, &'static str, &'static str)>> = LazyLock::new(|| {
        REFUND_TABLE
            .iter()
            .map(|&(fee, scenario, description)| (fee, scenario.name(), description))
            .collect()
    });
    &PUBLIC
}

impl RefundScenario {
    pub fn for_fee(refund_fee: u64) -> RefundScenario {
        REFUND_TABLE
            .iter()
            .find(|row| row.0 == refund_fee)
            .map_or(RefundScenario::Refunded, |row| row.1)
    }

    pub fn name(self) -> &'static str {
        match self {
            RefundScenario::Refunded => "refund-success",
            RefundScenario::ProcessingThenSuccess => "refund-processing",
            RefundScenario::SystemErrorAccepted => "refund-systemerror-accepted",
            RefundScenario::NotEnough => "refund-notenough",
            RefundScenario::Change => "refund-change",
            RefundScenario::Closed => "refund-closed",
        }
    }

    /// The status a refund of this scenario is recorded with; `None` when
    /// it is refused and nothing is recorded.
    pub fn starts_as(self) -> Option<RefundStatus> {
        match self {
            RefundScenario::Refunded | RefundScenario::SystemErrorAccepted => {
                Some(RefundStatus::Success)
            }
            RefundScenario::ProcessingThenSuccess => Some(RefundStatus::Processing),
            RefundScenario::NotEnough => None,
            RefundScenario::Change => Some(RefundStatus::Change),
            RefundScenario::Closed => Some(RefundStatus::RefundClose),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_maps_back_to_its_scenario() {
        for &(fee, scenario, _) in TABLE {
            assert_eq!(Scenario::for_fee(fee), scenario, "fee {fee}");
        }
        let names: Vec<_> = scenario_table().iter().map(|row| row.1).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert!(
            scenario_table().windows(2).all(|w| w[0].0 < w[1].0),
            "table in fee order"
        );
    }

    #[test]
    fn amounts_off_the_table_succeed_and_big_ones_need_the_password() {
        assert_eq!(Scenario::for_fee(4), Success);
        assert_eq!(Scenario::for_fee(1234), Success);
        assert_eq!(Scenario::for_fee(PASSWORD_ABOVE), Success);
        assert_eq!(Scenario::for_fee(PASSWORD_ABOVE + 1), PasswordRequired);
        assert_eq!(Scenario::for_fee(u64::MAX), PasswordRequired);
    }

    #[test]
    fn full_coupons_cover_the_whole_fee() {
        let covered: u64 = FullCoupon.coupons().iter().map(|c| c.0).sum();
        assert_eq!(Scenario::for_fee(covered), FullCoupon);
    }

    #[test]
    fn scripts_follow_the_counts() {
        assert_eq!(
            PaysAtSecondQuery.customer_at_query(1),
            Customer::StillPaying
        );
        assert_eq!(PaysAtSecondQuery.customer_at_query(2), Customer::Paid);
        assert_eq!(RecallTwice.reverse(2), ReverseReply::Recall);
        assert_eq!(RecallTwice.reverse(3), ReverseReply::Reversed);
        assert_eq!(ReverseSystemError.reverse(9), ReverseReply::SystemError);
        assert_eq!(ReverseWhilePaying.reverse(1), ReverseReply::StillPaying);
        assert_eq!(ReverseWhilePaying.reverse(2), ReverseReply::Reversed);
        assert_eq!(
            Scenario::for_negative_test("MICROPAY_TIMEOUT"),
            Some(SandboxTimeoutPaid)
        );
        assert_eq!(Scenario::for_negative_test("nonsense"), None);
        assert_eq!(
            AnswerAboutAnotherOrder.query_reply(1),
            QueryReply::AnotherOrderClosed
        );
        assert_eq!(AnswerAboutAnotherOrder.query_reply(2), QueryReply::TheOrder);
        assert_eq!(
            Scenario::for_fee(54).micropay().reply,
            MicropayReply::Error("ORDERPAID")
        );
        assert_eq!(
            Scenario::for_fee(53).micropay(),
            Micropay {
                start: Start::NumberTaken,
                reply: MicropayReply::Error("OUT_TRADE_NO_USED"),
                slow: false
            }
        );
    }

    #[test]
    fn refund_rows_map_back_and_other_fees_refund() {
        for &(fee, scenario, _) in REFUND_TABLE {
            assert_eq!(RefundScenario::for_fee(fee), scenario, "fee {fee}");
        }
        assert_eq!(RefundScenario::for_fee(1), RefundScenario::Refunded);
        assert_eq!(RefundScenario::for_fee(1234), RefundScenario::Refunded);
        assert_eq!(RefundScenario::NotEnough.starts_as(), None);
        assert!(!RefundStatus::RefundClose.counts());
        assert!(RefundStatus::Change.counts());
        assert!(
            refund_scenario_table().windows(2).all(|w| w[0].0 < w[1].0),
            "table in fee order"
        );
    }
}
