//! The payment engine: a pure state machine (`machine`), its timings
//! (`policy`), how outcomes are recorded and told (`outcome`), and the tokio
//! driver that journals and sends (`driver`).

pub mod driver;
pub mod machine;
mod outcome;
pub mod policy;
pub mod recovery;

pub use driver::{Engine, EngineError, PaymentRequest, PaymentResult, Progress, SharedJournal};
pub use machine::{Attention, Call, Final, Machine, Resume, ReverseReason, Status, Step};
pub use policy::Timings;

#[cfg(test)]
mod tests;
