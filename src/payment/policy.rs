//! The five numbers of the documented state machine (seed 001 notes), plus
//! the reverse retry bound. Defaults are WeChat's; tests scale them down.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// After SYSTEMERROR or any unclear micropay answer: wait, then query (5 s).
    pub query_after_unknown: Duration,
    /// While the customer is paying, or a query is unclear: query this often (10 s).
    pub poll_interval: Duration,
    /// Measured from the micropay send: stop querying and reverse (30 s).
    pub deadline: Duration,
    /// Measured from the micropay send: no reverse before this (15 s, "请勿扣款后立即调用撤销").
    pub reverse_not_before: Duration,
    /// Between reverse attempts after recall=Y or an error.
    pub reverse_retry_interval: Duration,
    /// Reverse attempts before the order is left for replay.
    pub reverse_max_attempts: u32,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            query_after_unknown: Duration::from_secs(5),
            poll_interval: Duration::from_secs(10),
            deadline: Duration::from_secs(30),
            reverse_not_before: Duration::from_secs(15),
            reverse_retry_interval: Duration::from_secs(5),
            reverse_max_attempts: 5,
        }
    }
}

impl Timings {
    /// Checks the relations the machine relies on; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.poll_interval.is_zero() {
            return Err("payment.poll_interval_ms must be more than 0".into());
        }
        if self.reverse_max_attempts == 0 {
            return Err("payment.reverse_max_attempts must be at least 1, or unclear orders are never reversed".into());
        }
        if self.reverse_not_before > self.deadline {
            return Err(format!(
                "payment.reverse_not_before_ms ({} ms) must not be later than payment.deadline_ms ({} ms)",
                self.reverse_not_before.as_millis(),
                self.deadline.as_millis()
            ));
        }
        if self.query_after_unknown > self.deadline {
            return Err(
                "payment.query_after_unknown_ms must not be later than payment.deadline_ms".into(),
            );
        }
        Ok(())
    }
}
