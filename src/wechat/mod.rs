//! WeChat Pay v2 as it is on the wire: flat XML, the MD5 / HMAC-SHA256
//! signature, typed requests, the classification of every answer into the
//! classes of PROTOCOL.md, and the daily bill's CSV (`bill`). No IO here
//! except in `client`.

pub mod api;
pub mod bill;
pub mod client;
pub mod messages;
pub mod refund;
pub mod sign;
pub mod xml;

pub use bill::{
    Bill, BillAnswer, BillError, BillRow, BillSummary, TradeState, classify_download, parse_bill,
};
pub use sign::{ApiKey, SignType};
pub use xml::Fields;
