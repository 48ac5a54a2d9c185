//! `scanpay reconcile --store` end to end: three tills (three journals, three
//! till ids) of one merchant pay against one `scanpay simulate` process and
//! ship with `scanpay sync` to a real PostgreSQL; a back office with no
//! journal matches the merchant's bill against all of them at once.

mod common;

use std::path::Path;
use std::process::Command;

use common::postgres::{PASSWORD, Postgres};
use common::process::{Gateway, bill_today, json_of, pay, till};
use scanpay::journal::Journal;
use scanpay::reconcile::read;
use scanpay::store::Store;
use scanpay::wechat::SignType;
use scanpay::wechat::api::download_bill_request;
use scanpay::wechat::bill::Bill;
use scanpay::wechat::client::GatewayClient;
use serde_json::{Value, json};

/// `scanpay sync` on till `id`.
fn sync(id: &str, dir: &Path, gateway: &Gateway, pg: &Postgres) {
    let output = till(id, dir, gateway)
        .env("SCANPAY_STORE_DATABASE_URL", pg.url())
        .env("SCANPAY_STORE_PASSWORD", PASSWORD)
        .arg("sync")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}

/// The back office: the merchant's settings and the store's, and a journal
/// path where no journal is (nor may be made).
fn office(dir: &Path, gateway: &Gateway, pg: &Postgres) -> Command {
    let mut cmd = till("OFFICE", dir, gateway);
    cmd.env("SCANPAY_STORE_DATABASE_URL", pg.url())
        .env("SCANPAY_STORE_PASSWORD", PASSWORD)
        .args(["reconcile", "--store", "--date", &bill_today().to_string()]);
    cmd
}

fn reconcile_store(
    dir: &Path,
    gateway: &Gateway,
    pg: &Postgres,
    args: &[&str],
) -> (Option<i32>, Value) {
    let output = office(dir, gateway, pg)
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    (output.status.code(), json_of(&output))
}

/// Each till's section: (till, matched, refunds_matched, discrepancy kinds).
fn sections(report: &Value) -> Vec<(String, u64, u64, Vec<String>)> {
    report["tills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["till"].as_str().unwrap().to_string(),
                t["matched"].as_u64().unwrap(),
                t["refunds_matched"].as_u64().unwrap(),
                kinds(&t["discrepancies"]),
            )
        })
        .collect()
}

fn kinds(discrepancies: &Value) -> Vec<String> {
    discrepancies
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap().to_string())
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Today's bill as the simulator serves it to the merchant, plain text.
fn bill_text(gateway: &Gateway) -> String {
    let mut settings = common::client_settings(gateway.base_url.clone());
    settings.read_timeout = std::time::Duration::from_secs(5);
    let client = GatewayClient::new(&settings).unwrap();
    let fields = download_bill_request(&common::demo_merchant(SignType::Md5), bill_today(), false);
    let body = runtime().block_on(client.download_bill(&fields)).unwrap();
    String::from_utf8(body).unwrap()
}

#[test]
fn three_tills_against_one_bill_agree_and_a_till_that_never_shipped_or_an_altered_amount_does_not()
{
    let pg = Postgres::start();
    let gateway = common::process::start_gateway();
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let (t1, t2, t3, back) = (
        dirs[0].path(),
        dirs[1].path(),
        dirs[2].path(),
        dirs[3].path(),
    );

    // T01: a sale, a sale refunded in part, and a reverse the customer's
    // payment beat (0.52: charged and returned, REVOKED on the bill).
    assert_eq!(pay("T01", t1, &gateway, "12.34", 9_000_001).0, Some(0));
    let (exit, refunded) = pay("T01", t1, &gateway, "20.00", 9_000_002);
    assert_eq!(exit, Some(0));
    let refund = till("T01", t1, &gateway)
        .args(["refund", "--order", &refunded, "--amount", "5.00"])
        .output()
        .unwrap();
    assert_eq!(refund.status.code(), Some(0), "{refund:?}");
    let (exit, returned) = pay("T01", t1, &gateway, "0.52", 9_000_003);
    assert_eq!(exit, Some(5), "0.52 ends reversed");
    // T02: two sales.
    assert_eq!(pay("T02", t2, &gateway, "7.77", 9_000_004).0, Some(0));
    let (exit, altered) = pay("T02", t2, &gateway, "3.00", 9_000_005);
    assert_eq!(exit, Some(0));
    sync("T01", t1, &gateway, &pg);
    sync("T02", t2, &gateway, &pg);

    // The store's side of each till is what reconcile reads from its journal
    // (the store's own ids aside).
    let stored = runtime().block_on(async {
        let mut store = Store::connect_read_only(&pg.settings(100)).await.unwrap();
        store
            .bill_day("10000100", bill_today(), &Bill::default())
            .await
            .unwrap()
    });
    assert_eq!(stored.keys().collect::<Vec<_>>(), ["T01", "T02"]);
    for (id, dir) in [("T01", t1), ("T02", t2)] {
        let journal = Journal::open_read_only(&dir.join("journal.sqlite3")).unwrap();
        let named = (vec![], vec![]);
        let own = read::journal_day(&journal, read::bill_day(bill_today()), id, &named).unwrap();
        let day = &stored[id];
        assert_eq!((day.from_ms, day.to_ms), (own.from_ms, own.to_ms));
        let without_ids = |d: &scanpay::reconcile::JournalDay| {
            let orders: Vec<_> = d
                .orders
                .iter()
                .map(|o| scanpay::journal::OrderRow {
                    id: scanpay::journal::OrderId(0),
                    ..o.clone()
                })
                .collect();
            let refunds: Vec<_> = d
                .refunds
                .iter()
                .map(|(no, r)| {
                    let mut r = r.clone();
                    (r.id, r.order_id) = (0, scanpay::journal::OrderId(0));
                    (no.clone(), r)
                })
                .collect();
            (orders, refunds)
        };
        assert_eq!(without_ids(day), without_ids(&own), "till {id}");
    }
    assert_eq!(stored["T01"].orders.len(), 3);
    assert_eq!(stored["T01"].refunds.len(), 1);

    // Every till agrees, each with what it paid; the back office has no
    // journal and gets none.
    let (exit, report) = reconcile_store(back, &gateway, &pg, &[]);
    assert_eq!(exit, Some(0), "{report:#}");
    assert_eq!(
        sections(&report),
        [
            ("T01".to_string(), 3, 1, vec![]),
            ("T02".to_string(), 2, 0, vec![]),
        ]
    );
    assert_eq!(report["store"], true);
    assert_eq!(report["source"], "downloaded");
    assert_eq!(report["agrees"], true);
    assert_eq!(report["matched"], 5);
    assert_eq!(
        report["tills"][0]["reversed_after_payment"],
        json!([returned])
    );
    assert!(report["tills"][0].get("other_tills").is_none());
    assert_eq!(
        report["unaccounted"],
        json!({"devices": [], "discrepancies": []})
    );
    assert_eq!(
        report["totals"],
        json!({
            // 12.34 + 20.00 + 7.77 + 3.00 charged, 5.00 refunded, 0.52 returned.
            "bill": {"rows": 6, "charged": "43.11", "refunded": "5.00", "returned": "0.52", "net": "38.11"},
            "tills": {"paid_orders": 4, "paid": "43.11", "refunded": "5.00", "net": "38.11"},
        })
    );
    assert!(!back.join("journal.sqlite3").exists());
    // Nothing is recorded in the tills' journals either.
    let journal = Journal::open_read_only(&t1.join("journal.sqlite3")).unwrap();
    assert!(
        journal
            .reconciliation_of(&bill_today().to_string())
            .unwrap()
            .is_none()
    );
    drop(journal);

    // T03 pays but never ships: its charge is no till's of the store.
    let (exit, unshipped) = pay("T03", t3, &gateway, "4.56", 9_000_006);
    assert_eq!(exit, Some(0));
    let (exit, report) = reconcile_store(back, &gateway, &pg, &[]);
    assert_eq!(exit, Some(7), "{report:#}");
    assert_eq!(report["agrees"], false);
    assert_eq!(report["discrepancies"], 1);
    assert_eq!(sections(&report).len(), 2, "T01 and T02 still agree");
    assert!(sections(&report).iter().all(|s| s.3.is_empty()));
    assert_eq!(
        report["unaccounted"]["devices"],
        json!([{"device_info": "T03", "rows": 1, "charged": "4.56", "refunded": "0.00",
            "returned": "0.00", "net": "4.56"}])
    );
    let found = &report["unaccounted"]["discrepancies"][0];
    assert_eq!(found["kind"], "unaccounted");
    assert_eq!(found["out_trade_no"], unshipped.as_str());
    assert_eq!(found["bill"]["device_info"], "T03");
    assert_eq!(found["journal"], Value::Null);
    let advice = found["advice"].as_str().unwrap();
    assert!(
        advice.contains("设备号 T03") && advice.contains("scanpay sync"),
        "{advice}"
    );
    assert_eq!(report["totals"]["bill"]["charged"], "47.67");
    assert_eq!(report["totals"]["tills"]["paid"], "43.11");
    // The plain report says so too, a section per till.
    let text = office(back, &gateway, &pg).output().unwrap();
    assert_eq!(text.status.code(), Some(7));
    let text = String::from_utf8(text.stdout).unwrap();
    let returned_line = format!("  reversed after payment: {returned}\n");
    for line in [
        "every till of the store (merchant 10000100), bill downloaded: 1 discrepancy",
        "── till T01: the books agree",
        "── till T02: the books agree",
        "1 reversed after payment (charged and returned; `scanpay reconcile` on the till records it in its journal)",
        returned_line.as_str(),
        "── no till of the store: 1 discrepancy",
        "    T03          1 rows · charged ¥4.56",
        "1. unaccounted · order ",
        "  WeChat's bill:        charged ¥47.67 · refunded ¥5.00 · net ¥42.67 (7 rows; ¥0.52 charged and returned)",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }

    // Once T03 ships, it is a till of the store and agrees.
    sync("T03", t3, &gateway, &pg);
    let (exit, report) = reconcile_store(back, &gateway, &pg, &[]);
    assert_eq!(exit, Some(0), "{report:#}");
    assert_eq!(
        sections(&report)
            .iter()
            .map(|s| (s.0.as_str(), s.1))
            .collect::<Vec<_>>(),
        [("T01", 3), ("T02", 2), ("T03", 1)]
    );

    // A bill saved with T02's 3.00 sale as 3.10: an amount mismatch of T02's
    // alone, and the report written to a file.
    let bill = bill_text(&gateway);
    let lines: Vec<String> = bill
        .lines()
        .map(|line| {
            if line.contains(&altered) {
                line.replace("`3.00", "`3.10")
            } else {
                line.to_string()
            }
        })
        .collect();
    assert_ne!(
        lines.join("\r\n"),
        bill.trim_end(),
        "the row of {altered} is in the bill"
    );
    let saved = back.join("bill.csv");
    std::fs::write(&saved, lines.join("\r\n") + "\r\n").unwrap();
    let written = back.join("report.json");
    let output = office(back, &gateway, &pg)
        .args(["--json", "--bill"])
        .arg(&saved)
        .arg("--output")
        .arg(&written)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(7), "{output:?}");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("1 discrepancies, each with what to do"),
        "{said}"
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&written).unwrap()).unwrap();
    assert_eq!(report["source"], "file");
    assert_eq!(
        sections(&report),
        [
            ("T01".to_string(), 3, 1, vec![]),
            ("T02".to_string(), 1, 0, vec!["amount_mismatch".to_string()]),
            ("T03".to_string(), 1, 0, vec![]),
        ]
    );
    let mismatch = &report["tills"][1]["discrepancies"][0];
    assert_eq!(mismatch["out_trade_no"], altered.as_str());
    assert_eq!(mismatch["journal"]["total_fee"], "3.00");
    assert_eq!(mismatch["bill"]["total_fee"], "3.10");

    // T02's till is renamed T05 and sells on: the store lists the
    // installation as T05, but its earlier orders keep the id they were paid
    // with, which the bill has: they are still a till's of the store.
    assert_eq!(pay("T05", t2, &gateway, "1.00", 9_000_007).0, Some(0));
    sync("T05", t2, &gateway, &pg);
    let (exit, report) = reconcile_store(back, &gateway, &pg, &[]);
    assert_eq!(exit, Some(0), "{report:#}");
    assert_eq!(
        sections(&report)
            .iter()
            .map(|s| (s.0.as_str(), s.1))
            .collect::<Vec<_>>(),
        [("T01", 3), ("T02", 2), ("T03", 1), ("T05", 1)]
    );
    assert!(!back.join("journal.sqlite3").exists());
}

#[test]
fn without_store_settings_or_a_merchant_to_download_for_it_is_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let base = || {
        let mut cmd = common::process::binary();
        cmd.env("SCANPAY_JOURNAL_PATH", dir.join("journal.sqlite3"))
            .env("SCANPAY_LOG_DIR", dir.join("logs"))
            .env_remove("SCANPAY_STORE_DATABASE_URL")
            .args(["reconcile", "--store", "--date", "2026-11-22"]);
        cmd
    };
    let output = base().output().unwrap();
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("scanpay reconcile: store.database_url is not set"),
        "{said}"
    );
    // A store is set, but no merchant: the built-in simulator has no bill
    // of the store to give. Said before any connection is tried.
    let output = base()
        .env(
            "SCANPAY_STORE_DATABASE_URL",
            "postgres://scanpay@127.0.0.1:1/store",
        )
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("--bill FILE"), "{said}");
    assert!(!dir.join("journal.sqlite3").exists());
}

/// With gateway.sandbox on, the back office fetches the sandbox's signing
/// key first and signs the download with it (the simulator refuses a
/// sandbox call signed with the live key); the simulator keeps one ledger,
/// so its sandbox bill has the live payment and the sandbox one alike.
#[test]
fn in_the_sandbox_the_back_office_signs_with_the_sandboxs_key() {
    let gateway = common::process::start_gateway();
    let pg = Postgres::start();
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (till_dir, back) = (dirs[0].path(), dirs[1].path());
    let sandboxed = |mut cmd: Command| {
        cmd.env("SCANPAY_GATEWAY_SANDBOX", "true");
        cmd
    };
    let (exit, _) = pay("T01", till_dir, &gateway, "2.00", 7_000_001);
    assert_eq!(exit, Some(0));
    let paid = sandboxed(till("T01", till_dir, &gateway))
        .args(["pay", "--json", "--amount", "1.01", "--auth-code"])
        .arg(format!("13{:016}", 7_000_002))
        .output()
        .unwrap();
    assert_eq!(paid.status.code(), Some(0), "{paid:?}");
    sync("T01", till_dir, &gateway, &pg);

    let out = sandboxed(office(back, &gateway, &pg))
        .arg("--json")
        .output()
        .unwrap();
    let report = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(
        sections(&report),
        [("T01".to_string(), 2, 0, Vec::<String>::new())],
        "{report:#}"
    );
    assert!(!back.join("journal.sqlite3").exists());
}
