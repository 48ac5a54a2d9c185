//! How a finished payment is recorded and told: the journal's state, the
//! error code, and the sentence for the cashier.

use super::machine::{Attention, Final, ReverseReason};
use crate::journal::OrderState;
use crate::wechat::messages::{Language, cashier_message};

impl Final {
    pub fn state(&self) -> OrderState {
        match self {
            Final::Paid(_) => OrderState::Paid,
            Final::Failed(_)
            | Final::CancelledBeforeSending
            | Final::NotSent
            | Final::NumberTaken(_)
            | Final::Unreachable(_) => OrderState::Failed,
            Final::Closed(_) => OrderState::Closed,
            Final::Reversed(_) | Final::Refunded(_) => OrderState::Reversed,
            Final::NeedsAttention(_) => OrderState::NeedsAttention,
        }
    }

    pub fn transaction_id(&self) -> Option<&str> {
        match self {
            Final::Paid(paid) => Some(&paid.transaction_id),
            _ => None,
        }
    }

    /// The gateway's code (or ours) that explains the outcome.
    pub fn err_code(&self) -> Option<String> {
        match self {
            Final::Paid(_) => None,
            Final::Failed(refusal) => Some(refusal.code.clone()),
            Final::CancelledBeforeSending => Some("CANCELLED".into()),
            Final::NotSent => Some("NOT_SENT".into()),
            Final::Unreachable(_) => Some("UNREACHABLE".into()),
            Final::NumberTaken(refusal) => Some(refusal.code.clone()),
            Final::Closed(state) => Some(state.clone()),
            Final::Reversed(ReverseReason::PayError) => Some("PAYERROR".into()),
            Final::Reversed(ReverseReason::Deadline) => Some("TIMEOUT".into()),
            Final::Reversed(ReverseReason::Unconfirmed) => Some("UNCONFIRMED".into()),
            Final::Reversed(ReverseReason::Cancelled) => Some("CANCELLED".into()),
            Final::Reversed(ReverseReason::Recovered) => Some("RECOVERED".into()),
            Final::Refunded(_) => Some("REFUNDED".into()),
            Final::NeedsAttention(Attention::ReverseRefused(refusal)) => Some(refusal.code.clone()),
            Final::NeedsAttention(Attention::ReverseExhausted { last, .. }) => {
                Some(last.code().to_string())
            }
            Final::NeedsAttention(Attention::Refunded) => Some("REFUND".into()),
            Final::NeedsAttention(Attention::PaidAfterReverse) => Some("PAID_AFTER_REVERSE".into()),
        }
    }

    /// What the cashier reads (and the journal keeps): what happened and what to do.
    pub fn message(&self, language: Language) -> String {
        let zh = language == Language::Chinese;
        match self {
            Final::Paid(_) => if zh { "支付成功" } else { "Paid" }.to_string(),
            Final::Failed(refusal) => match cashier_message(&refusal.code, language) {
                Some(text) => text.to_string(),
                None if refusal.description.is_empty() => {
                    if zh {
                        format!("支付失败（{}），请用户重新支付", refusal.code)
                    } else {
                        format!(
                            "Payment failed ({}): ask the customer to pay again",
                            refusal.code
                        )
                    }
                }
                None => format!("{} ({})", refusal.description, refusal.code),
            },
            Final::CancelledBeforeSending => if zh {
                "已取消，未发起扣款"
            } else {
                "Cancelled before anything was charged"
            }
            .to_string(),
            Final::Unreachable(_) => if zh {
                "无法连接微信支付，未扣款；请检查网络后重新扫码"
            } else {
                "Could not reach WeChat Pay: the customer was NOT charged. Check the network, then scan again"
            }
            .to_string(),
            Final::NotSent => if zh {
                "程序在发起扣款前中断，未扣款；请用户重新付款"
            } else {
                "Interrupted before the payment was sent: nothing was charged. Ask the customer to pay again"
            }
            .to_string(),
            Final::NumberTaken(refusal) => if zh {
                format!(
                    "订单号已被他人使用（{}）：本次未扣款。是否有两台收银机使用同一个 till.id？请为每台收银机设置不同的 till.id，然后重新扫码",
                    refusal.code
                )
            } else {
                format!(
                    "This order number was already used by someone else ({}): the customer was NOT charged. Two tills with the same till.id? Give each till its own till.id, then scan again",
                    refusal.code
                )
            },
            Final::Closed(_) => if zh {
                "订单已关闭，未扣款，请重新下单"
            } else {
                "The order was closed and nothing was charged: start a new sale"
            }
            .to_string(),
            Final::Reversed(reason) | Final::Refunded(reason) => {
                let why = match (reason, zh) {
                    (ReverseReason::Deadline, true) => "用户未在规定时间内完成支付",
                    (ReverseReason::Deadline, false) => "the payment did not complete in time",
                    (ReverseReason::Unconfirmed, true) => {
                        "微信支付在时限内未能确认结果（网络或网关故障，不是顾客的问题）"
                    }
                    (ReverseReason::Unconfirmed, false) => {
                        "WeChat Pay could not confirm the payment in time (network or gateway trouble, not the customer)"
                    }
                    (ReverseReason::PayError, true) => "支付失败",
                    (ReverseReason::PayError, false) => "the payment failed",
                    (ReverseReason::Cancelled, true) => "收银员已取消",
                    (ReverseReason::Cancelled, false) => "the cashier cancelled",
                    (ReverseReason::Recovered, true) => "程序中断后结果未明",
                    (ReverseReason::Recovered, false) => {
                        "its outcome was unclear after an interruption"
                    }
                };
                match (self, zh) {
                    (Final::Refunded(_), true) => {
                        format!("{why}，订单已撤销；用户已付的款项已退回，请用户重新支付")
                    }
                    (Final::Refunded(_), false) => {
                        format!(
                            "Reversed because {why}; the customer had paid and was refunded. Ask them to pay again"
                        )
                    }
                    // After a reverse WeChat's query says REVOKED whether or not the
                    // customer had paid (only the bill tells): either way they keep
                    // their money.
                    (_, true) => format!(
                        "{why}，订单已撤销，顾客不会被扣款（若已扣款，将原路退回）；请用户重新支付"
                    ),
                    (_, false) => format!(
                        "Reversed because {why}; the customer keeps their money (any payment is returned). Ask them to pay again"
                    ),
                }
            }
            Final::NeedsAttention(attention) if zh => {
                let detail = match attention {
                    Attention::ReverseExhausted { attempts, .. } => {
                        format!("{attempts} 次撤销均无明确结果")
                    }
                    Attention::ReverseRefused(refusal) => format!("撤销被拒绝：{}", refusal.code),
                    Attention::PaidAfterReverse => "撤销成功后网关又报告已支付".to_string(),
                    Attention::Refunded => "网关报告该订单已支付后又退款".to_string(),
                };
                format!(
                    "结果未明，请勿重复收款；已记录，网络恢复后由店长运行 scanpay replay 处理（{detail}）"
                )
            }
            Final::NeedsAttention(attention) => {
                let detail = match attention {
                    Attention::ReverseExhausted { attempts, last } => {
                        format!("{attempts} reverse attempts unclear; last: {last}")
                    }
                    Attention::ReverseRefused(refusal) => {
                        format!("reverse refused: {} {}", refusal.code, refusal.description)
                    }
                    Attention::PaidAfterReverse => {
                        "the reverse succeeded, yet the gateway reports the order paid".to_string()
                    }
                    Attention::Refunded => {
                        "the gateway says the order was paid and then refunded".to_string()
                    }
                };
                format!(
                    "Outcome unclear: do not charge again. The order is kept; the manager resolves it with `scanpay replay` once the network is back ({detail})"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechat::api::{Refusal, Unclear};

    #[test]
    fn each_outcome_has_a_state_code_and_message_in_both_languages() {
        let cases = [
            (
                Final::Failed(Refusal {
                    code: "NOTENOUGH".into(),
                    description: "余额不足".into(),
                }),
                OrderState::Failed,
                "NOTENOUGH",
                "余额不足，请用户换卡支付",
            ),
            (
                Final::Reversed(ReverseReason::Deadline),
                OrderState::Reversed,
                "TIMEOUT",
                "订单已撤销",
            ),
            (
                Final::NumberTaken(Refusal {
                    code: "OUT_TRADE_NO_USED".into(),
                    description: "商户订单号重复".into(),
                }),
                OrderState::Failed,
                "OUT_TRADE_NO_USED",
                "本次未扣款",
            ),
            (Final::NotSent, OrderState::Failed, "NOT_SENT", "未扣款"),
            (
                Final::Unreachable("connection refused".into()),
                OrderState::Failed,
                "UNREACHABLE",
                "无法连接微信支付，未扣款",
            ),
            (
                Final::Closed("REVOKED".into()),
                OrderState::Closed,
                "REVOKED",
                "订单已关闭",
            ),
            (
                Final::NeedsAttention(Attention::ReverseExhausted {
                    attempts: 5,
                    last: Unclear::Transport("reset".into()),
                }),
                OrderState::NeedsAttention,
                "TRANSPORT",
                "请勿重复收款",
            ),
        ];
        for (done, state, code, zh) in cases {
            assert_eq!(done.state(), state);
            assert_eq!(done.err_code().as_deref(), Some(code));
            assert!(
                done.message(Language::Chinese).contains(zh),
                "{}",
                done.message(Language::Chinese)
            );
            assert!(
                done.message(Language::English).is_ascii(),
                "{}",
                done.message(Language::English)
            );
        }
        let unknown_code = Final::Failed(Refusal {
            code: "NEW_CODE".into(),
            description: "新错误".into(),
        });
        assert_eq!(unknown_code.message(Language::English), "新错误 (NEW_CODE)");
    }
}
