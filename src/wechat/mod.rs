//! WeChat Pay v2 as it is on the wire: flat XML, the MD5 / HMAC-SHA256
//! signature, typed requests, and the classification of every answer into the
//! classes of PROTOCOL.md. No IO here except in `client`.

pub mod api;
pub mod client;
pub mod messages;
pub mod refund;
pub mod sign;
pub mod xml;

pub use sign::{ApiKey, SignType};
pub use xml::Fields;
