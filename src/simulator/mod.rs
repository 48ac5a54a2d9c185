//! The built-in gateway simulator: WeChat Pay v2's micropay endpoints on
//! loopback, so the till, CI and cashier training work with no network.
//!
//! It verifies request signatures like the gateway, plays a scenario chosen
//! by `total_fee` (see [`scenario_table`]; refunds by `refund_fee`, see
//! [`refund_scenario_table`]), keeps a ledger of what money moved, which
//! tests compare with the till's journal, and serves the daily bill from it.
//!
//! - `scenarios`: which behaviour each amount plays (pure data and matches).
//! - `ledger`: the orders, their refunds and the rules every scenario obeys.
//! - `bill`: the daily bill (下载交易账单) drawn from the ledger, as CSV text.
//! - `wire`: reading requests and writing signed answers, as WeChat does.
//! - `faults`: network faults switched on at run time ([`Fault`]).
//! - `server`: axum routes and the [`Simulator`] handle.

mod bill;
mod faults;
mod ledger;
mod scenarios;
mod server;
mod wire;

use std::time::Duration;

use crate::wechat::api::Merchant;
use crate::wechat::{ApiKey, SignType};

pub use bill::{ALL_HEADER, BillLine, BillState, SUMMARY_HEADER, render as render_bill};
pub use faults::Fault;
pub use ledger::{CallRecord, LedgerEntry, LedgerRefund, MAX_REFUNDS_PER_ORDER};
pub use scenarios::{refund_scenario_table, scenario_table};
pub use server::Simulator;

/// The example account of WeChat's documentation, used when no merchant is
/// configured.
pub const DEMO_APPID: &str = "wxd930ea5d5a258f4f";
pub const DEMO_MCH_ID: &str = "10000100";
/// The public example key of the docs; not a secret.
pub const DEMO_KEY: &str = "192006250b4c09247ec02edce69f6a2d";

#[derive(Clone, Debug)]
pub struct SimulatorConfig {
    pub appid: String,
    pub mch_id: String,
    pub key: ApiKey,
    /// How long a "timing out" answer takes: longer than the till's read
    /// timeout in real use, a fraction of a second in tests.
    pub slow_answer: Duration,
}

impl SimulatorConfig {
    pub fn demo() -> Self {
        Self {
            appid: DEMO_APPID.to_string(),
            mch_id: DEMO_MCH_ID.to_string(),
            key: ApiKey::new(DEMO_KEY),
            slow_answer: Duration::from_secs(12),
        }
    }

    /// The merchant a till is configured as to talk to this simulator:
    /// its appid, mch_id and key, no sub-merchant.
    pub fn merchant(&self, sign_type: SignType) -> Merchant {
        Merchant {
            appid: self.appid.clone(),
            mch_id: self.mch_id.clone(),
            sub_appid: None,
            sub_mch_id: None,
            key: self.key.clone(),
            sign_type,
        }
    }
}
