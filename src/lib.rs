//! scanpay: a WeChat Pay payment-code till. See README.md for the tour.
//!
//! `domain` holds the validated values, `wechat` the wire protocol,
//! `payment` the state machine and its driver, `journal` the write-ahead
//! SQLite record, `reconcile` the day's books against WeChat's bill,
//! `simulator` the built-in gateway, `store` ships the journal to the
//! store's PostgreSQL database, and `config`, `startup`, `cli`, `logging`
//! wire them into the program.

pub mod cli;
pub mod config;
pub mod domain;
pub mod fault;
pub mod journal;
pub mod logging;
pub mod payment;
pub mod reconcile;
pub mod scanner;
pub mod simulator;
pub mod startup;
pub mod store;
pub mod tui;
pub mod wechat;
