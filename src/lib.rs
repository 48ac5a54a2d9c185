//! scanpay: a WeChat Pay micropay till. See README.md for the tour.

pub mod domain;
pub mod journal;
pub mod payment;
pub mod simulator;
pub mod wechat;
