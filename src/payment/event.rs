//! What the journal records about an order, as typed events the machine can
//! be fed again: recovery rebuilds a [`Machine`](super::Machine) from them
//! (`Machine::restore`) and lets it decide what comes next.
//!
//! Stored as JSON in the journal's `detail` column with a version, `{"v":2,
//! "type":"answer",…}`. Journals written before the typed events (version 1
//! details, no `v`) are still read: [`Event::from_stored`] translates them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::machine::Call;
use super::refund::{RefundAnswer, RefundCall, RefundFinal, RefundQueryAnswer};
use crate::wechat::api::{
    MicropayOutcome, QueryOutcome, Refusal, ReverseOutcome, Settlement, Unclear,
};

/// The version written in every new event's JSON.
pub const EVENT_VERSION: u64 = 2;

/// A classified answer, as the machine was fed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Micropay(MicropayOutcome),
    Query(QueryOutcome),
    Reverse(ReverseOutcome),
}

/// Request or answer fields as journaled: no signature, the payment code masked.
pub type JournalFields = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Opened {
        till_id: String,
        total_fee: u64,
        body: String,
        auth_code_masked: String,
    },
    /// Journaled just before the request leaves.
    Request { call: Call, fields: JournalFields },
    /// Journaled before the machine acts on it. `fields` is what the gateway
    /// sent, when it sent a decodable answer.
    Answer {
        answer: Answer,
        fields: Option<JournalFields>,
    },
    /// The machine's timer fired (a query or reverse became due).
    Timer { due_ms: u64 },
    /// The cashier pressed cancel; `accepted` is false when it was too late.
    Cancel { accepted: bool },
    /// A process took the order over (recovery on start, `scanpay replay`),
    /// counting `elapsed_ms` since the micropay was sent. `refund_paid` is a
    /// person's decision to reverse the order even if it is found paid.
    Resumed {
        owner: String,
        elapsed_ms: u64,
        refund_paid: bool,
    },
    /// The order's final (or needs-attention) state, as the row records it.
    Finished {
        state: String,
        err_code: Option<String>,
        transaction_id: Option<String>,
    },
    /// Words for the manager's timeline that change nothing.
    Note { text: String },
    /// A refund of this (paid) order, its number committed before anything is sent.
    RefundOpened {
        out_refund_no: String,
        refund_fee: u64,
        reason: Option<String>,
    },
    /// Journaled just before a refund request leaves.
    RefundRequest {
        out_refund_no: String,
        call: RefundCall,
        fields: JournalFields,
    },
    /// Journaled before the refund machine acts on it.
    RefundAnswer {
        out_refund_no: String,
        answer: RefundReply,
        fields: Option<JournalFields>,
    },
    /// Where the refund ended up (the `refunds` row records the same).
    RefundFinished {
        out_refund_no: String,
        outcome: RefundFinal,
    },
    /// The daily bill of `bill_date` (YYYY-MM-DD) shows this reversed order
    /// charged and returned (a REVOKED row): the customer had paid just as
    /// the reverse arrived. Recorded by `scanpay reconcile`; the order stays
    /// reversed, and nobody keeps money.
    ReversedAfterPayment {
        bill_date: String,
        total_fee: u64,
        transaction_id: Option<String>,
    },
}

/// A classified refund or refundquery answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundReply {
    Refund(RefundAnswer),
    Query(RefundQueryAnswer),
}

impl Event {
    /// The journal's `kind` column.
    pub fn kind(&self) -> crate::journal::EventKind {
        use crate::journal::EventKind as K;
        match self {
            Event::Opened { .. } => K::Opened,
            Event::Request { .. } => K::Request,
            Event::Answer { .. } => K::Answer,
            Event::Timer { .. } => K::Timer,
            Event::Cancel { .. } => K::Cashier,
            Event::Finished { .. } => K::Finished,
            Event::Resumed { .. }
            | Event::Note { .. }
            | Event::RefundOpened { .. }
            | Event::RefundFinished { .. }
            | Event::ReversedAfterPayment { .. } => K::Note,
            Event::RefundRequest { .. } => K::Request,
            Event::RefundAnswer { .. } => K::Answer,
        }
    }

    /// The journal's `call` column: which request a request or answer is.
    pub fn call_name(&self) -> Option<&'static str> {
        match self {
            Event::Request { call, .. } => Some(call.name()),
            Event::Answer { answer, .. } => Some(match answer {
                Answer::Micropay(_) => Call::Micropay.name(),
                Answer::Query(_) => Call::Query.name(),
                Answer::Reverse(_) => "reverse",
            }),
            Event::RefundRequest { call, .. } => Some(call.name()),
            Event::RefundAnswer { answer, .. } => Some(match answer {
                RefundReply::Refund(_) => "refund",
                RefundReply::Query(_) => "refundquery",
            }),
            _ => None,
        }
    }

    /// The JSON stored in the `detail` column.
    pub fn to_stored(&self) -> Value {
        let mut value = serde_json::to_value(self).expect("events are plain data");
        value["v"] = Value::from(EVENT_VERSION);
        value
    }

    /// Reads a `detail` column: a versioned typed event, or a version-1
    /// detail translated from its `kind`, `call` and `summary` columns.
    pub fn from_stored(kind: &str, call: Option<&str>, summary: &str, detail: &Value) -> Self {
        if detail.get("v").and_then(Value::as_u64) == Some(EVENT_VERSION)
            && let Ok(event) = serde_json::from_value::<Event>(detail.clone())
        {
            return event;
        }
        legacy(kind, call, summary, detail).unwrap_or_else(|| Event::Note {
            text: summary.to_string(),
        })
    }
}

/// Version 1 wrote `{"class": "PAID", "reason": …, "fields": {…}}` for answers,
/// `{"fields": …}` for requests, `{"resume": …, "refund_paid": …}` for resumes.
fn legacy(kind: &str, call: Option<&str>, summary: &str, detail: &Value) -> Option<Event> {
    let text = |v: &Value| v.as_str().map(str::to_string);
    let fields = |v: &Value| -> Option<JournalFields> {
        v.as_object().map(|map| {
            map.iter()
                .filter_map(|(k, v)| Some((k.clone(), text(v)?)))
                .collect()
        })
    };
    let answer_fields = fields(&detail["fields"]);
    let field = |name: &str| answer_fields.as_ref().and_then(|f| f.get(name).cloned());
    let reason = text(&detail["reason"]).unwrap_or_default();
    let refusal = || Refusal {
        code: field("err_code")
            .or_else(|| reason.split_whitespace().next().map(str::to_string))
            .unwrap_or_else(|| "FAILED".into()),
        description: field("err_code_des").unwrap_or_else(|| reason.clone()),
    };
    let unclear = || Unclear::Gateway {
        code: field("err_code").unwrap_or_else(|| "UNKNOWN".into()),
        description: reason.clone(),
    };
    let settlement = || {
        Some(Settlement {
            transaction_id: field("transaction_id")?,
            time_end: field("time_end"),
            cash_fee: field("cash_fee").and_then(|f| f.parse().ok()),
        })
    };
    Some(match kind {
        "opened" => Event::Opened {
            till_id: text(&detail["till_id"])?,
            total_fee: detail["total_fee"].as_u64()?,
            body: text(&detail["body"]).unwrap_or_default(),
            auth_code_masked: text(&detail["auth_code_masked"]).unwrap_or_default(),
        },
        "request" => Event::Request {
            call: match call? {
                "micropay" => Call::Micropay,
                "orderquery" => Call::Query,
                "reverse" => Call::Reverse {
                    // "reverse attempt N sent"
                    attempt: summary.split_whitespace().nth(2)?.parse().ok()?,
                },
                _ => return None,
            },
            fields: fields(&detail["fields"]).unwrap_or_default(),
        },
        "answer" => {
            let class = detail["class"].as_str()?;
            let answer = match (call?, class) {
                ("micropay", "PAID") => Answer::Micropay(MicropayOutcome::Paid(settlement()?)),
                ("micropay", "PENDING") => Answer::Micropay(MicropayOutcome::Pending),
                ("micropay", "FAILED") => Answer::Micropay(MicropayOutcome::Failed(refusal())),
                ("micropay", _) => Answer::Micropay(MicropayOutcome::Unknown(unclear())),
                ("orderquery", "PAID") => Answer::Query(QueryOutcome::Paid(settlement()?)),
                ("orderquery", "NOT_SETTLED") => Answer::Query(QueryOutcome::NotSettled(reason)),
                ("orderquery", "PAYERROR") => Answer::Query(QueryOutcome::PayError(reason)),
                ("orderquery", "CLOSED") => Answer::Query(QueryOutcome::Closed(reason)),
                ("orderquery", "REFUNDED") => Answer::Query(QueryOutcome::Refunded),
                ("orderquery", _) => Answer::Query(QueryOutcome::Unknown(unclear())),
                ("reverse", "REVERSED") => Answer::Reverse(ReverseOutcome::Reversed),
                ("reverse", "REFUSED") => Answer::Reverse(ReverseOutcome::Refused(refusal())),
                ("reverse", _) => Answer::Reverse(ReverseOutcome::Again(unclear())),
                _ => return None,
            };
            Event::Answer {
                answer,
                fields: answer_fields,
            }
        }
        "timer" => Event::Timer {
            due_ms: detail["due_ms"].as_u64()?,
        },
        "cashier" => Event::Cancel {
            accepted: detail["accepted"].as_bool()?,
        },
        "finished" => Event::Finished {
            state: text(&detail["state"])?,
            err_code: text(&detail["err_code"]),
            transaction_id: text(&detail["transaction_id"]),
        },
        "note" if detail.get("resume").is_some() => Event::Resumed {
            owner: String::new(),
            elapsed_ms: detail["elapsed_ms"].as_u64()?,
            refund_paid: detail["refund_paid"].as_bool().unwrap_or(false),
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_events_round_trip_through_the_stored_json() {
        let events = [
            Event::Request {
                call: Call::Reverse { attempt: 2 },
                fields: [("out_trade_no".to_string(), "T01X".to_string())].into(),
            },
            Event::Answer {
                answer: Answer::Query(QueryOutcome::Paid(Settlement {
                    transaction_id: "42".into(),
                    time_end: None,
                    cash_fee: Some(1),
                })),
                fields: None,
            },
            Event::Answer {
                answer: Answer::Micropay(MicropayOutcome::Unknown(Unclear::Transport(
                    "reset".into(),
                ))),
                fields: Some(JournalFields::new()),
            },
            Event::Resumed {
                owner: "1-A".into(),
                elapsed_ms: 40_000,
                refund_paid: true,
            },
            Event::Cancel { accepted: true },
        ];
        for event in events {
            let stored = event.to_stored();
            assert_eq!(stored["v"], 2);
            let kind = event.kind().as_str();
            assert_eq!(
                Event::from_stored(kind, event.call_name(), "", &stored),
                event
            );
        }
    }

    #[test]
    fn version_1_details_are_translated() {
        let paid = json!({ "class": "PAID", "reason": "transaction 42", "fields": { "transaction_id": "42", "cash_fee": "1234" } });
        assert_eq!(
            Event::from_stored("answer", Some("orderquery"), "", &paid),
            Event::Answer {
                answer: Answer::Query(QueryOutcome::Paid(Settlement {
                    transaction_id: "42".into(),
                    time_end: None,
                    cash_fee: Some(1234)
                })),
                fields: Some(
                    [
                        ("transaction_id".to_string(), "42".to_string()),
                        ("cash_fee".to_string(), "1234".to_string())
                    ]
                    .into()
                ),
            }
        );
        let failed = json!({ "class": "FAILED", "reason": "NOTENOUGH 余额不足", "fields": null });
        assert_eq!(
            Event::from_stored("answer", Some("micropay"), "", &failed),
            Event::Answer {
                answer: Answer::Micropay(MicropayOutcome::Failed(Refusal {
                    code: "NOTENOUGH".into(),
                    description: "NOTENOUGH 余额不足".into()
                })),
                fields: None,
            }
        );
        assert_eq!(
            Event::from_stored(
                "request",
                Some("reverse"),
                "reverse attempt 3 sent",
                &json!({ "fields": {} })
            ),
            Event::Request {
                call: Call::Reverse { attempt: 3 },
                fields: JournalFields::new()
            }
        );
        let resumed = json!({ "resume": "Query", "refund_paid": true, "elapsed_ms": 61000 });
        assert!(matches!(
            Event::from_stored("note", None, "resumed", &resumed),
            Event::Resumed {
                elapsed_ms: 61_000,
                refund_paid: true,
                ..
            }
        ));
        // Whatever cannot be read is kept as words, never guessed at.
        assert_eq!(
            Event::from_stored("answer", Some("micropay"), "odd", &json!({})),
            Event::Note { text: "odd".into() }
        );
    }
}
