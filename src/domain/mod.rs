//! Values that carry money or identify a payment. Each type can only be built
//! from valid input, so the rest of the program never re-checks them.

mod auth_code;
mod body;
mod money;
mod out_trade_no;

pub use auth_code::{AuthCode, AuthCodeError, holds_payment_code, mask};
pub use body::{BodyError, check_body};
pub use money::{AmountError, Fen, signed_yuan};
pub use out_trade_no::{OutTradeNo, OutTradeNoError, TillId, TillIdError};
