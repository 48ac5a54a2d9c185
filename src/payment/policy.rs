//! The five numbers of the documented state machine (WeChat's 提交付款码支付 page, its notes), plus
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

/// The longest deadline accepted anywhere: the customer waits at the till.
pub const MAX_DEADLINE: Duration = Duration::from_secs(10 * 60);
/// The most reverse attempts accepted anywhere: each is a call to WeChat.
pub const MAX_REVERSE_ATTEMPTS: u32 = 20;

/// WeChat's rules (the 付款码支付 page and its notes), as the shortest timings
/// allowed against a gateway that is not on loopback. Scaled-down timings
/// stay possible against a loopback gateway (tests, rehearsals with
/// `scanpay simulate`).
pub const WECHAT_MIN_QUERY_AFTER_UNKNOWN: Duration = Duration::from_secs(5);
pub const WECHAT_MIN_POLL_INTERVAL: Duration = Duration::from_secs(10);
pub const WECHAT_MIN_REVERSE_NOT_BEFORE: Duration = Duration::from_secs(15);
pub const WECHAT_MIN_REVERSE_RETRY_INTERVAL: Duration = Duration::from_secs(1);

impl Timings {
    /// Checks the relations the machine relies on, and refuses absurd values
    /// whatever the gateway; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.poll_interval.is_zero() {
            return Err("payment.poll_interval_ms must be more than 0".into());
        }
        if self.reverse_max_attempts == 0 {
            return Err("payment.reverse_max_attempts must be at least 1, or unclear orders are never reversed".into());
        }
        if self.reverse_max_attempts > MAX_REVERSE_ATTEMPTS {
            return Err(format!(
                "payment.reverse_max_attempts must be at most {MAX_REVERSE_ATTEMPTS} (each attempt is a call to WeChat, and an order still unclear after them is settled by `scanpay replay`), it is {}",
                self.reverse_max_attempts
            ));
        }
        if self.deadline > MAX_DEADLINE {
            return Err(format!(
                "payment.deadline_ms must be at most {} (10 minutes: the customer waits at the till), it is {}",
                MAX_DEADLINE.as_millis(),
                self.deadline.as_millis()
            ));
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
        for (setting, interval) in [
            ("payment.poll_interval_ms", self.poll_interval),
            (
                "payment.reverse_retry_interval_ms",
                self.reverse_retry_interval,
            ),
        ] {
            if interval > self.deadline {
                return Err(format!(
                    "{setting} ({} ms) must not be longer than payment.deadline_ms ({} ms)",
                    interval.as_millis(),
                    self.deadline.as_millis()
                ));
            }
        }
        Ok(())
    }

    /// Refuses what breaks WeChat's rules: checked at start when the gateway
    /// is not on loopback, besides [`Timings::validate`].
    pub fn validate_against_wechat(&self) -> Result<(), String> {
        let rules = [
            (
                "payment.query_after_unknown_ms",
                self.query_after_unknown,
                WECHAT_MIN_QUERY_AFTER_UNKNOWN,
                "after SYSTEMERROR or no answer, wait 5 s before querying",
            ),
            (
                "payment.poll_interval_ms",
                self.poll_interval,
                WECHAT_MIN_POLL_INTERVAL,
                "while the customer is paying, query every 10 s",
            ),
            (
                "payment.reverse_not_before_ms",
                self.reverse_not_before,
                WECHAT_MIN_REVERSE_NOT_BEFORE,
                "never reverse right after charging, 请勿扣款后立即调用撤销",
            ),
            (
                "payment.reverse_retry_interval_ms",
                self.reverse_retry_interval,
                WECHAT_MIN_REVERSE_RETRY_INTERVAL,
                "a reverse repeated without a pause only hammers the gateway",
            ),
        ];
        for (setting, value, minimum, why) in rules {
            if value < minimum {
                return Err(format!(
                    "{setting} must be at least {} against WeChat ({why}), it is {}; shorter timings are only for a gateway on loopback",
                    minimum.as_millis(),
                    value.as_millis()
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A change to the defaults and the start of the message it must get.
    type Case = (fn(&mut Timings), &'static str);

    #[test]
    fn the_defaults_keep_wechats_rules() {
        assert_eq!(Timings::default().validate(), Ok(()));
        assert_eq!(Timings::default().validate_against_wechat(), Ok(()));
    }

    #[test]
    fn scaled_timings_are_valid_but_not_against_wechat() {
        let scaled = Timings {
            query_after_unknown: ms(50),
            poll_interval: ms(100),
            deadline: ms(300),
            reverse_not_before: ms(150),
            reverse_retry_interval: ms(50),
            reverse_max_attempts: 3,
        };
        assert_eq!(scaled.validate(), Ok(()));
        let e = scaled.validate_against_wechat().unwrap_err();
        assert!(
            e.starts_with("payment.query_after_unknown_ms must be at least 5000 against WeChat"),
            "{e}"
        );
    }

    #[test]
    fn each_rule_of_wechat_names_its_setting() {
        let cases: [Case; 4] = [
            (
                |t| t.query_after_unknown = ms(4999),
                "payment.query_after_unknown_ms must be at least 5000",
            ),
            (
                |t| t.poll_interval = ms(2000),
                "payment.poll_interval_ms must be at least 10000",
            ),
            (
                |t| t.reverse_not_before = ms(1000),
                "payment.reverse_not_before_ms must be at least 15000 against WeChat (never reverse right after charging, 请勿扣款后立即调用撤销), it is 1000",
            ),
            (
                |t| t.reverse_retry_interval = ms(0),
                "payment.reverse_retry_interval_ms must be at least 1000",
            ),
        ];
        for (change, expected) in cases {
            let mut timings = Timings::default();
            change(&mut timings);
            assert_eq!(timings.validate(), Ok(()), "{expected}");
            let e = timings.validate_against_wechat().unwrap_err();
            assert!(e.starts_with(expected), "{e}");
        }
    }

    #[test]
    fn absurd_values_are_refused_whatever_the_gateway() {
        let cases: [Case; 5] = [
            (
                |t| t.deadline = ms(99_999_999_999_999),
                "payment.deadline_ms must be at most 600000",
            ),
            (
                |t| t.reverse_max_attempts = 21,
                "payment.reverse_max_attempts must be at most 20",
            ),
            (
                |t| t.poll_interval = ms(30_001),
                "payment.poll_interval_ms (30001 ms) must not be longer than payment.deadline_ms",
            ),
            (
                |t| t.reverse_retry_interval = ms(u64::MAX),
                "payment.reverse_retry_interval_ms",
            ),
            (
                |t| t.reverse_not_before = ms(30_001),
                "payment.reverse_not_before_ms (30001 ms) must not be later",
            ),
        ];
        for (change, expected) in cases {
            let mut timings = Timings::default();
            change(&mut timings);
            let e = timings.validate().unwrap_err();
            assert!(e.starts_with(expected), "{e}");
        }
        let longest = Timings {
            deadline: MAX_DEADLINE,
            reverse_max_attempts: MAX_REVERSE_ATTEMPTS,
            ..Timings::default()
        };
        assert_eq!(longest.validate(), Ok(()));
    }
}
