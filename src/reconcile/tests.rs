//! The matcher against bills written the way WeChat writes them (the
//! simulator's renderer, read back by the till's parser): a bill generated
//! from a journal agrees with it, and each injected disagreement is found,
//! alone, with its order.

use proptest::prelude::*;
use time::OffsetDateTime;
use time::macros::{date, offset};

use super::*;
use crate::domain::{OutTradeNo, TillId};
use crate::journal::day_bounds;
use crate::simulator::{BillLine, BillState, render_bill};
use crate::wechat::bill::parse_bill;
use std::collections::BTreeMap;

const TILL: &str = "T01";

/// One sale of the generated day.
#[derive(Debug, Clone)]
struct Sale {
    state: OrderState,
    fee: u64,
    /// For a reversed order: the customer had paid, the reverse returned it.
    returned: bool,
    refunds: Vec<(u64, RefundState)>,
}

fn day_from() -> i64 {
    day_bounds(date!(2026 - 11 - 22), offset!(+8)).0
}

fn at(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap()
        .to_offset(offset!(+8))
}

fn order(i: usize, sale: &Sale) -> OrderRow {
    let created = day_from() + 60_000 * i as i64 + 1_000;
    OrderRow {
        id: OrderId(i as i64 + 1),
        out_trade_no: OutTradeNo::parse(&format!("{TILL}2611220000XX{i:06}")).unwrap(),
        till_id: TillId::parse(TILL).unwrap(),
        total_fee: Fen(sale.fee),
        body: "咖啡".into(),
        auth_code_masked: "**************6076".into(),
        created_at_ms: created,
        micropay_sent_at_ms: Some(created + 10),
        state: sale.state,
        finished_at_ms: Some(created + 500),
        transaction_id: (sale.state == OrderState::Paid).then(|| format!("42000{i:08}")),
        err_code: None,
        message: None,
    }
}

fn journal_day(sales: &[Sale]) -> JournalDay {
    let (from_ms, to_ms) = day_bounds(date!(2026 - 11 - 22), offset!(+8));
    let orders: Vec<OrderRow> = sales.iter().enumerate().map(|(i, s)| order(i, s)).collect();
    let mut refunds = Vec::new();
    for (order, sale) in orders.iter().zip(sales) {
        for (n, (fee, state)) in sale.refunds.iter().enumerate() {
            refunds.push((
                order.out_trade_no.to_string(),
                RefundRow {
                    id: refunds.len() as i64 + 1,
                    order_id: order.id,
                    out_refund_no: format!("{}R{:02}", order.out_trade_no, n + 1),
                    refund_fee: Fen(*fee),
                    reason: None,
                    created_at_ms: order.created_at_ms + 1_000 + n as i64,
                    state: *state,
                    refund_id: Some(format!("50000{n:08}")),
                    err_code: None,
                    message: None,
                },
            ));
        }
    }
    JournalDay {
        from_ms,
        to_ms,
        orders,
        refunds,
    }
}

fn line(device: &str, no: &str, time: i64, state: BillState, fee: u64) -> BillLine {
    BillLine::charge(device, no, "4200000000000".into(), at(time), state, fee)
}

/// The bill a faithful WeChat writes for `day`, with `others` (fee, state)
/// rows of another till mixed in.
fn bill_of(day: &JournalDay, others: &[(u64, u8)]) -> Bill {
    let mut lines = Vec::new();
    for order in &day.orders {
        let no = order.out_trade_no.as_str();
        let time = order.created_at_ms + 100;
        match order.state {
            OrderState::Paid => {
                lines.push(line(TILL, no, time, BillState::Success, order.total_fee.0))
            }
            OrderState::Reversed if order.err_code.as_deref() == Some("RETURNED") => {
                lines.push(BillLine {
                    refund_fee: order.total_fee.0,
                    refund_status: "SUCCESS",
                    refund_requested: order.total_fee.0,
                    ..line(TILL, no, time, BillState::Revoked, order.total_fee.0)
                })
            }
            _ => {}
        }
    }
    for (no, refund) in &day.refunds {
        if moved_money(refund.state) {
            lines.push(BillLine {
                refund_id: refund.refund_id.clone().unwrap_or_default(),
                out_refund_no: refund.out_refund_no.clone(),
                refund_fee: refund.refund_fee.0,
                refund_status: "SUCCESS",
                refund_requested: refund.refund_fee.0,
                settlement_fee: 0,
                total_fee: 0,
                ..line(TILL, no, refund.created_at_ms, BillState::Refund, 0)
            });
        }
    }
    for (i, (fee, state)) in others.iter().enumerate() {
        let state =
            [BillState::Success, BillState::Refund, BillState::Revoked][*state as usize % 3];
        let no = format!("T022611220000YY{i:06}");
        lines.push(line("T02", &no, day.from_ms + 5_000, state, *fee));
    }
    lines.sort_by_key(|l| l.time);
    if lines.is_empty() {
        return Bill::default(); // "No Bill Exist"
    }
    parse_bill(render_bill(&lines, "wx1", "100").as_bytes()).unwrap()
}

fn sale() -> impl Strategy<Value = Sale> {
    let state = prop_oneof![
        4 => Just(OrderState::Paid),
        1 => Just(OrderState::Failed),
        1 => Just(OrderState::Reversed),
        1 => Just(OrderState::Closed),
        1 => Just(OrderState::NeedsAttention),
    ];
    let refund_state = prop_oneof![
        Just(RefundState::Refunded),
        Just(RefundState::Processing),
        Just(RefundState::Change),
        Just(RefundState::Refused),
        Just(RefundState::Closed),
    ];
    (
        state,
        2u64..200_000,
        any::<bool>(),
        prop::collection::vec((1u64..500, refund_state), 0..3),
    )
        .prop_map(|(state, fee, returned, refunds)| Sale {
            state,
            fee,
            returned: returned && state == OrderState::Reversed,
            refunds: if state == OrderState::Paid {
                refunds
            } else {
                Vec::new()
            },
        })
}

/// A day with at least one paid order carrying a refund that moved money,
/// so every injection has something to work on.
fn sales() -> impl Strategy<Value = Vec<Sale>> {
    prop::collection::vec(sale(), 0..30).prop_map(|mut sales| {
        sales.insert(
            0,
            Sale {
                state: OrderState::Paid,
                fee: 1_234,
                returned: false,
                refunds: vec![(100, RefundState::Refunded)],
            },
        );
        sales
    })
}

/// A reversed order the customer had paid carries err_code RETURNED here,
/// so `bill_of` knows to write its REVOKED row.
fn marked(mut day: JournalDay, sales: &[Sale]) -> JournalDay {
    for (order, sale) in day.orders.iter_mut().zip(sales) {
        if sale.returned {
            order.err_code = Some("RETURNED".into());
        }
    }
    day
}

#[derive(Debug, Clone, Copy)]
enum Injection {
    DropCharge,
    ChangeAmount,
    AddCharge,
    DropRefund,
    RefundAmount,
    AddRefund,
    /// The bill says REVOKED where the journal has the order paid.
    FlipBillState,
    /// The journal has a charged order as needing attention.
    FlipJournalState,
}

fn injection() -> impl Strategy<Value = Injection> {
    prop_oneof![
        Just(Injection::DropCharge),
        Just(Injection::ChangeAmount),
        Just(Injection::AddCharge),
        Just(Injection::DropRefund),
        Just(Injection::RefundAmount),
        Just(Injection::AddRefund),
        Just(Injection::FlipBillState),
        Just(Injection::FlipJournalState),
    ]
}

/// Applies `what` to the `pick`-th candidate; returns the discrepancy it must
/// cause: its kind and order number.
fn inject(
    what: Injection,
    pick: prop::sample::Index,
    day: &mut JournalDay,
    bill: &mut Bill,
) -> (Kind, String) {
    let mine = |row: &BillRow, state: TradeState| {
        row.device_info.as_deref() == Some(TILL) && row.trade_state == state
    };
    let charges: Vec<usize> = (0..bill.rows.len())
        .filter(|&i| mine(&bill.rows[i], TradeState::Success))
        .collect();
    let refunds: Vec<usize> = (0..bill.rows.len())
        .filter(|&i| mine(&bill.rows[i], TradeState::Refund))
        .collect();
    let charge = charges[pick.index(charges.len())];
    let refund = refunds[pick.index(refunds.len())];
    match what {
        Injection::DropCharge => {
            let row = bill.rows.remove(charge);
            (Kind::PaidNotInBill, row.out_trade_no)
        }
        Injection::ChangeAmount => {
            bill.rows[charge].total_fee.0 += 1;
            (Kind::AmountMismatch, bill.rows[charge].out_trade_no.clone())
        }
        Injection::AddCharge => {
            let mut row = bill.rows[charge].clone();
            row.out_trade_no = "T01NOTINTHEJOURNAL".into();
            bill.rows.push(row);
            (Kind::ChargeNotInJournal, "T01NOTINTHEJOURNAL".into())
        }
        Injection::DropRefund => {
            let row = bill.rows.remove(refund);
            (Kind::RefundNotInBill, row.out_trade_no)
        }
        Injection::RefundAmount => {
            let fee = bill.rows[refund].refund_fee.get_or_insert(Fen(0));
            fee.0 += 1;
            (
                Kind::RefundAmountMismatch,
                bill.rows[refund].out_trade_no.clone(),
            )
        }
        Injection::AddRefund => {
            let mut row = bill.rows[refund].clone();
            row.out_refund_no = Some("RMADEONTHEPLATFORM".into());
            let no = row.out_trade_no.clone();
            bill.rows.push(row);
            (Kind::RefundNotInJournal, no)
        }
        Injection::FlipBillState => {
            bill.rows[charge].trade_state = TradeState::Revoked;
            (Kind::PaidButRevoked, bill.rows[charge].out_trade_no.clone())
        }
        Injection::FlipJournalState => {
            let no = bill.rows[charge].out_trade_no.clone();
            let order = day
                .orders
                .iter_mut()
                .find(|o| o.out_trade_no.as_str() == no)
                .unwrap();
            order.state = OrderState::NeedsAttention;
            (Kind::ChargedNotPaid, no)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn the_bill_of_a_journal_agrees_with_it(
        sales in sales(),
        others in prop::collection::vec((1u64..100_000, 0u8..3), 0..10),
    ) {
        let day = marked(journal_day(&sales), &sales);
        let bill = bill_of(&day, &others);
        let result = reconcile(TILL, &day, &bill);
        prop_assert!(result.discrepancies.is_empty(), "{:#?}", result.discrepancies);
        let paid = sales.iter().filter(|s| s.state == OrderState::Paid).count() as u64;
        let returned = sales.iter().filter(|s| s.returned).count();
        prop_assert_eq!(result.returned.len(), returned);
        prop_assert_eq!(result.matched, paid + returned as u64);
        prop_assert_eq!(result.totals.bill_charged, result.totals.journal_paid);
        prop_assert_eq!(result.totals.bill_refunded, result.totals.journal_refunded);
        let other_rows: u64 = result.other_tills.values().map(|o| o.rows).sum();
        prop_assert_eq!(other_rows, others.len() as u64);
    }

    #[test]
    fn each_injected_disagreement_is_found_alone(
        sales in sales(),
        others in prop::collection::vec((1u64..100_000, 0u8..3), 0..10),
        what in injection(),
        pick in any::<prop::sample::Index>(),
    ) {
        let mut day = marked(journal_day(&sales), &sales);
        let mut bill = bill_of(&day, &others);
        let (kind, no) = inject(what, pick, &mut day, &mut bill);
        let result = reconcile(TILL, &day, &bill);
        let found: Vec<(Kind, &str)> = result
            .discrepancies
            .iter()
            .map(|d| (d.kind, d.out_trade_no.as_str()))
            .collect();
        prop_assert_eq!(found, vec![(kind, no.as_str())], "{:?}", what);
        prop_assert!(!result.discrepancies[0].advice.is_empty());
    }
}

fn one(state: OrderState, fee: u64) -> Sale {
    Sale {
        state,
        fee,
        returned: false,
        refunds: Vec::new(),
    }
}

#[test]
fn no_bill_exist_agrees_with_a_day_without_payments_only() {
    let quiet = journal_day(&[one(OrderState::Failed, 100)]);
    assert!(
        reconcile(TILL, &quiet, &Bill::default())
            .discrepancies
            .is_empty()
    );
    let busy = journal_day(&[one(OrderState::Paid, 100), one(OrderState::Paid, 200)]);
    let result = reconcile(TILL, &busy, &Bill::default());
    let kinds: Vec<Kind> = result.discrepancies.iter().map(|d| d.kind).collect();
    assert_eq!(kinds, [Kind::PaidNotInBill, Kind::PaidNotInBill]);
}

#[test]
fn a_paid_order_whose_charge_may_straddle_midnight_is_not_missed() {
    let mut day = journal_day(&[one(OrderState::Paid, 100)]);
    // Sent at 23:59:59.9, recorded paid after midnight: on either bill.
    day.orders[0].micropay_sent_at_ms = Some(day.to_ms - 100);
    day.orders[0].finished_at_ms = Some(day.to_ms + 400);
    assert!(
        reconcile(TILL, &day, &Bill::default())
            .discrepancies
            .is_empty()
    );
    // …and matched when this bill has it.
    let bill = {
        let mut whole = journal_day(&[one(OrderState::Paid, 100)]);
        whole.orders[0] = day.orders[0].clone();
        bill_of(&whole, &[])
    };
    let result = reconcile(TILL, &day, &bill);
    assert_eq!((result.matched, result.discrepancies.len()), (1, 0));
}

#[test]
fn each_kind_of_charge_the_journal_lacks_says_what_to_do() {
    let day = journal_day(&[
        one(OrderState::NeedsAttention, 1234),
        one(OrderState::Failed, 500),
        one(OrderState::Reversed, 52),
    ]);
    let mut paid = day.clone();
    for order in &mut paid.orders {
        order.state = OrderState::Paid;
    }
    let bill = bill_of(&paid, &[(700, 0)]);
    let result = reconcile(TILL, &day, &bill);
    let found: Vec<(Kind, &str)> = result
        .discrepancies
        .iter()
        .map(|d| (d.kind, d.advice.as_str()))
        .collect();
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(found.iter().all(|(k, _)| *k == Kind::ChargedNotPaid));
    assert!(found[0].1.contains("hand over the goods"), "{}", found[0].1);
    assert!(
        found[0].1.contains("scanpay replay --order"),
        "{}",
        found[0].1
    );
    assert!(found[1].1.contains("Refund ¥5.00"), "{}", found[1].1);
    assert_eq!(
        result.other_tills[&Some("T02".to_string())].charged,
        Fen(700)
    );
    let json = report::to_json("2026-11-22", TILL, "file", &result);
    assert_eq!(json["discrepancies"][0]["kind"], "charged_not_paid");
    assert_eq!(
        json["discrepancies"][0]["journal"]["state"],
        "needs_attention"
    );
    assert_eq!(json["discrepancies"][0]["bill"]["total_fee"], "12.34");
    assert_eq!(json["other_tills"][0]["device_info"], "T02");
    let text = report::to_text("2026-11-22", TILL, "file", &result);
    assert!(text.contains("3 discrepancies"), "{text}");
}

#[test]
fn over_the_store_a_row_of_no_till_is_a_discrepancy_unless_its_charge_was_returned() {
    let day = journal_day(&[one(OrderState::Paid, 100)]);
    let mut bill = bill_of(&day, &[]);
    let mine = bill.rows[0].clone();
    let row = |device: Option<&str>, no: &str, trade_state: TradeState, fee: u64| BillRow {
        device_info: device.map(Into::into),
        out_trade_no: no.into(),
        trade_state,
        total_fee: Fen(fee),
        ..mine.clone()
    };
    // T02 is no till of this store: a charge, its refund, a charge returned.
    bill.rows
        .push(row(Some("T02"), "T02A", TradeState::Success, 700));
    bill.rows.push(BillRow {
        out_refund_no: Some("T02AR1".into()),
        refund_fee: Some(Fen(300)),
        ..row(Some("T02"), "T02A", TradeState::Refund, 0)
    });
    bill.rows
        .push(row(Some("T02"), "T02B", TradeState::Revoked, 52));
    // A charge without 设备号, and a row in a state scanpay does not know.
    bill.rows.push(row(None, "BARE", TradeState::Success, 900));
    let weird = TradeState::Other("WEIRD".into());
    bill.rows.push(row(Some("T09"), "T09A", weird, 5));

    let tills = BTreeMap::from([(TILL.to_string(), day)]);
    let result = store::reconcile_store(&tills, &bill);
    assert_eq!(result.tills.len(), 1);
    assert_eq!(result.tills[0].1.discrepancies, []);
    assert_eq!(result.matched(), 1);
    let found: Vec<(Kind, &str)> = result
        .discrepancies
        .iter()
        .map(|d| (d.kind, d.out_trade_no.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (Kind::Unaccounted, "T02A"),
            (Kind::Unaccounted, "T02A"),
            (Kind::Unaccounted, "BARE"),
            (Kind::UnknownRow, "T09A"),
        ]
    );
    assert_eq!(
        result.discrepancies[1].out_refund_no.as_deref(),
        Some("T02AR1")
    );
    assert!(result.discrepancies[1].advice.contains("refunded ¥3.00"));
    assert!(result.discrepancies[2].advice.contains("without a 设备号"));
    assert_eq!(result.discrepancy_count(), 4);
    let t02 = OtherTill {
        rows: 3,
        charged: Fen(700),
        refunded: Fen(300),
        returned: Fen(52),
    };
    assert_eq!(result.unaccounted[&Some("T02".to_string())], t02);
    assert_eq!(result.unaccounted.len(), 3);
    assert_eq!(
        result.totals,
        Totals {
            bill_charged: Fen(1_700),
            bill_refunded: Fen(300),
            bill_returned: Fen(52),
            bill_rows: 6,
            journal_paid: Fen(100),
            journal_paid_count: 1,
            journal_refunded: Fen(0),
        }
    );
    let json = report::store_to_json("2026-11-22", "100", "file", &result);
    assert_eq!(json["agrees"], false);
    assert_eq!(json["discrepancies"], 4);
    assert_eq!(json["tills"][0]["till"], TILL);
    assert!(json["tills"][0].get("other_tills").is_none());
    assert_eq!(json["unaccounted"]["devices"].as_array().unwrap().len(), 3);
    assert_eq!(json["totals"]["tills"]["paid"], "1.00");
    assert_eq!(json["totals"]["bill"]["net"], "14.00");
}
