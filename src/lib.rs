//! scanpay: a WeChat Pay payment-code till. See README.md for the tour.
//!
//! `domain` holds the validated values, `wechat` the wire protocol,
//! `payment` the state machine and its driver, `journal` the write-ahead
//! SQLite record, `simulator` the built-in gateway, and `config`, `startup`,
//! `cli`, `logging` wire them into the program; `store` ships the journal
//! to the store's PostgreSQL database.

pub mod cli;
pub mod config;
pub mod domain;
pub mod fault;
pub mod journal;
pub mod logging;
pub mod payment;
pub mod scanner;
pub mod simulator;
pub mod startup;
pub mod store;
pub mod tui;
pub mod wechat;
