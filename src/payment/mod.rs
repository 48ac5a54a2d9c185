//! The payment engine: a pure state machine (`machine`), its timings
//! (`policy`), the typed events it is fed and the journal keeps (`event`),
//! how outcomes are recorded and told (`outcome`), the tokio driver that
//! journals and sends (`driver`), and recovery (`recovery`).

pub mod driver;
pub mod event;
pub mod machine;
mod outcome;
pub mod policy;
pub mod recovery;
pub mod refund;
pub mod refunding;

pub use driver::{Engine, EngineError, PaymentRequest, PaymentResult, Progress};
pub use event::{Answer, Event};
pub use machine::{Attention, Call, Final, Machine, ReverseReason, Status, Step};
pub use policy::Timings;

#[cfg(test)]
mod tests;
