//! The daily bill (下载交易账单) as `/pay/downloadbill` hands it over, read
//! into typed rows. Pure: bytes in, a [`Bill`] (or what the answer said
//! instead) out.
//!
//! The success answer is not XML but CSV text: a header of column names,
//! detail rows in which every field starts with a backtick (`` ` ``), then a
//! summary header and its backtick row. It may be gzipped (tar_type=GZIP;
//! recognised by the magic bytes 1f 8b, whatever was asked), may start with a
//! UTF-8 BOM, and ends lines with CRLF (LF is accepted too). Columns are read
//! **by name**, never by position: besides the 27-column ALL layout some
//! merchants still get a legacy 24-column one (总金额 for the amount,
//! 代金券或立减优惠金额 or 企业红包金额 for coupons, 子商户号 for
//! 特约商户号), and WeChat adds columns over time.
//!
//! Amounts are yuan text, read into fen exactly (no floats). Which column
//! gives [`BillRow::total_fee`]: 订单金额 when the layout has it (the order's
//! amount as the till sent it in total_fee, 免充值 coupons included — what
//! the journal records), else 应结订单金额, else the legacy 总金额 (the order
//! amount of a layout that predates 免充值 coupons). 应结订单金额 (or
//! 总金额) is [`BillRow::settlement_fee`], what WeChat settles. On a REFUND
//! row both are 0.00: the money is in [`BillRow::refund_fee`].
//!
//! A failure answer is XML: [`classify_download`] tells "No Bill Exist" (no
//! trade that day: a bill without rows for the reconciliation), "Bill
//! Creating" (not yet: ask again later) and other failures apart.

use std::collections::HashMap;
use std::io::Read;

use super::xml;
use crate::domain::{AmountError, Fen};

/// The largest bill text read, once unpacked: a gzip bomb stops here. A
/// month of a busy store is a few MiB.
pub const MAX_BILL_TEXT: usize = 256 * 1024 * 1024;

/// A bill: its detail rows in order, and the summary when it has one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bill {
    pub rows: Vec<BillRow>,
    pub summary: Option<BillSummary>,
}

/// 交易状态.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TradeState {
    /// A charge.
    Success,
    /// A refund (微信退款单号, 商户退款单号, 退款金额, 退款状态 filled).
    Refund,
    /// A charge a reverse returned.
    Revoked,
    /// Anything else, as written.
    Other(String),
}

impl TradeState {
    fn from_bill(text: &str) -> TradeState {
        match text {
            "SUCCESS" => TradeState::Success,
            "REFUND" => TradeState::Refund,
            "REVOKED" => TradeState::Revoked,
            other => TradeState::Other(other.to_string()),
        }
    }
}

/// One detail row. Text fields are `None` when empty or when the layout has
/// no such column; every leading backtick is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillRow {
    /// The row's line in the bill text (1-based), for messages.
    pub line: usize,
    /// 交易时间 as written, `yyyy-MM-dd HH:mm:ss`, Beijing time.
    pub trade_time: String,
    /// 公众账号ID, 商户号.
    pub appid: Option<String>,
    pub mch_id: Option<String>,
    /// 设备号: the device_info the till sent (scanpay: the till id).
    pub device_info: Option<String>,
    /// 微信订单号.
    pub transaction_id: Option<String>,
    /// 商户订单号.
    pub out_trade_no: String,
    /// 用户标识.
    pub openid: Option<String>,
    /// 交易类型 (MICROPAY for a till).
    pub trade_type: Option<String>,
    pub trade_state: TradeState,
    /// 订单金额, else 应结订单金额, else 总金额 (see the module's notes).
    pub total_fee: Fen,
    /// 应结订单金额, or the legacy 总金额.
    pub settlement_fee: Option<Fen>,
    /// 代金券金额 (legacy 代金券或立减优惠金额, 企业红包金额).
    pub coupon_fee: Option<Fen>,
    /// 微信退款单号, 商户退款单号.
    pub refund_id: Option<String>,
    pub out_refund_no: Option<String>,
    /// 退款金额.
    pub refund_fee: Option<Fen>,
    /// 申请退款金额 (not in the legacy layout).
    pub refund_requested_fee: Option<Fen>,
    /// 退款状态: SUCCESS, PROCESSING, CHANGE, … as written.
    pub refund_status: Option<String>,
    /// 商品名称, 商户数据包.
    pub body: Option<String>,
    pub attach: Option<String>,
}

/// The summary row. Columns the layout lacks are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillSummary {
    /// 总交易单数.
    pub trade_count: u64,
    /// 应结订单总金额 (legacy 总交易额).
    pub settlement_total: Fen,
    /// 退款总金额 (legacy 总退款金额).
    pub refund_total: Fen,
    /// 充值券退款总金额 (legacy 总企业红包退款金额, 总代金券或立减优惠退款金额).
    pub coupon_refund_total: Option<Fen>,
    /// 订单总金额, 申请退款总金额: the ALL layout only.
    pub order_total: Option<Fen>,
    pub refund_requested_total: Option<Fen>,
}

/// What a downloadbill answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillAnswer {
    Bill(Bill),
    /// "No Bill Exist" (error_code 20002): no trade that day.
    NoBill,
    /// "Bill Creating": WeChat has not built the bill yet (it does from
    /// 09:00 Beijing time the next day, and advises fetching after 10:00).
    NotYet,
    /// Any other failure: its return_msg (and error_code).
    Failed(String),
}

/// Why a bill could not be read; every variant that is about the text names
/// its line (1-based) and, for a field, its column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillError {
    #[error("the bill starts like gzip but does not unpack: {0}")]
    Gzip(String),
    #[error("the bill is over {MAX_BILL_TEXT} bytes once unpacked; it was not read")]
    TooLarge,
    #[error("line {line} of the bill is not UTF-8")]
    NotUtf8 { line: usize },
    #[error("the bill is empty: no header line")]
    Empty,
    #[error("line {line} should be the bill's header of column names, but is {text:?}")]
    NoHeader { line: usize, text: String },
    #[error("the header on line {line} has no column {names}")]
    MissingColumn { line: usize, names: String },
    #[error("line {line} has {found} fields where its header (line {header}) names {expected}")]
    FieldCount {
        line: usize,
        header: usize,
        expected: usize,
        found: usize,
    },
    #[error("line {line}, column {column}: {value:?} is not an amount in yuan (e.g. 12.34)")]
    Amount {
        line: usize,
        column: String,
        value: String,
    },
    #[error("line {line}, column {column}: {value:?} is not a count")]
    Count {
        line: usize,
        column: String,
        value: String,
    },
    #[error("line {line}, column {column} is empty, and a row cannot do without it")]
    MissingValue { line: usize, column: String },
    #[error("the summary header on line {line} has no row of totals after it")]
    MissingSummaryRow { line: usize },
    #[error("line {line} follows the summary row, where the bill should end: {text:?}")]
    AfterSummary { line: usize, text: String },
    #[error("the answer is XML but cannot be read: {0}")]
    Xml(String),
}

/// Classifies a downloadbill answer body: a bill (CSV, gzipped or not) or
/// one of WeChat's XML failures. "No Bill Exist" and "Bill Creating" are
/// compared without case; error_code 20002 alone also means no bill.
pub fn classify_download(body: &[u8]) -> Result<BillAnswer, BillError> {
    let bytes = unpack(body)?;
    let text = utf8(&bytes)?;
    let start = text.trim_start_matches('\u{feff}').trim_start();
    if !start.starts_with('<') {
        return parse_text(text).map(BillAnswer::Bill);
    }
    let fields = xml::decode(start.as_bytes()).map_err(|e| BillError::Xml(e.to_string()))?;
    let message = fields.get("return_msg").unwrap_or_default().trim();
    let code = fields.get("error_code").unwrap_or_default().trim();
    if message.eq_ignore_ascii_case("No Bill Exist") || code == "20002" {
        return Ok(BillAnswer::NoBill);
    }
    if message.eq_ignore_ascii_case("Bill Creating") {
        return Ok(BillAnswer::NotYet);
    }
    let mut why = match fields.get("return_code") {
        Some("FAIL") if !message.is_empty() => message.to_string(),
        Some("FAIL") => "return_code FAIL without a return_msg".to_string(),
        other => format!("an XML answer without a bill (return_code {other:?})"),
    };
    if !code.is_empty() {
        why.push_str(&format!(" (error_code {code})"));
    }
    Ok(BillAnswer::Failed(why))
}

/// Reads a bill (gzipped or plain, with or without a BOM, CRLF or LF).
pub fn parse_bill(body: &[u8]) -> Result<Bill, BillError> {
    let bytes = unpack(body)?;
    parse_text(utf8(&bytes)?)
}

/// The text of a gzipped body (magic bytes 1f 8b), else the body itself.
fn unpack(body: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, BillError> {
    if !body.starts_with(&[0x1f, 0x8b]) {
        return Ok(std::borrow::Cow::Borrowed(body));
    }
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(body)
        .take(MAX_BILL_TEXT as u64 + 1)
        .read_to_end(&mut text)
        .map_err(|e| BillError::Gzip(e.to_string()))?;
    if text.len() > MAX_BILL_TEXT {
        return Err(BillError::TooLarge);
    }
    Ok(std::borrow::Cow::Owned(text))
}

fn utf8(bytes: &[u8]) -> Result<&str, BillError> {
    if bytes.len() > MAX_BILL_TEXT {
        return Err(BillError::TooLarge);
    }
    std::str::from_utf8(bytes).map_err(|e| BillError::NotUtf8 {
        line: 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
    })
}

/// Column names → positions, and the line they were on.
struct Header {
    line: usize,
    columns: HashMap<String, usize>,
    count: usize,
}

impl Header {
    fn read(line: usize, text: &str) -> Result<Header, BillError> {
        let text = text.trim_start_matches('\u{feff}');
        if text.starts_with('`') {
            return Err(BillError::NoHeader {
                line,
                text: snippet(text),
            });
        }
        let names: Vec<&str> = text.split(',').map(str::trim).collect();
        let mut columns = HashMap::with_capacity(names.len());
        for (at, name) in names.iter().enumerate() {
            columns.entry((*name).to_string()).or_insert(at);
        }
        Ok(Header {
            line,
            columns,
            count: names.len(),
        })
    }

    /// The position of the first of `names` this header has.
    fn find(&self, names: &[&'static str]) -> Option<(usize, &'static str)> {
        names
            .iter()
            .find_map(|name| self.columns.get(*name).map(|&at| (at, *name)))
    }

    fn require(&self, names: &[&'static str]) -> Result<(usize, &'static str), BillError> {
        self.find(names).ok_or_else(|| BillError::MissingColumn {
            line: self.line,
            names: names.join(" or "),
        })
    }

    /// The fields of a backtick row, each without its backtick. A field is
    /// everything up to the next `,` followed by a backtick, so a comma
    /// inside a description does not split it.
    fn fields<'t>(&self, line: usize, text: &'t str) -> Result<Vec<&'t str>, BillError> {
        let body = text.strip_prefix('`').unwrap_or(text);
        let fields: Vec<&str> = body.split(",`").map(str::trim).collect();
        if fields.len() != self.count {
            return Err(BillError::FieldCount {
                line,
                header: self.line,
                expected: self.count,
                found: fields.len(),
            });
        }
        Ok(fields)
    }
}

/// One row's fields, read through its header.
struct Row<'h, 't> {
    header: &'h Header,
    line: usize,
    fields: Vec<&'t str>,
}

impl Row<'_, '_> {
    /// The first of `names` the layout has, when its field is not empty.
    fn get(&self, names: &[&'static str]) -> Option<(&str, &'static str)> {
        let (at, name) = self.header.find(names)?;
        let value = self.fields[at];
        (!value.is_empty()).then_some((value, name))
    }

    fn text(&self, names: &[&'static str]) -> Option<String> {
        self.get(names).map(|(value, _)| value.to_string())
    }

    fn required_text(&self, names: &[&'static str]) -> Result<String, BillError> {
        let (_, column) = self.header.require(names)?;
        self.text(names).ok_or_else(|| BillError::MissingValue {
            line: self.line,
            column: column.to_string(),
        })
    }

    fn amount(&self, names: &[&'static str]) -> Result<Option<Fen>, BillError> {
        self.get(names)
            .map(|(value, column)| yuan(value, self.line, column))
            .transpose()
    }

    /// The first of `names` with a value: a column present but empty falls
    /// through to the next name.
    fn first_amount(&self, names: &[&'static str]) -> Result<Fen, BillError> {
        let (_, column) = self.header.require(names)?;
        for name in names {
            if let Some(fen) = self.amount(&[name])? {
                return Ok(fen);
            }
        }
        Err(BillError::MissingValue {
            line: self.line,
            column: column.to_string(),
        })
    }
}

fn yuan(value: &str, line: usize, column: &str) -> Result<Fen, BillError> {
    match Fen::parse_yuan(value) {
        Ok(fen) => Ok(fen),
        Err(AmountError::Zero) => Ok(Fen(0)),
        Err(_) => Err(BillError::Amount {
            line,
            column: column.to_string(),
            value: value.to_string(),
        }),
    }
}

const TOTAL_FEE: &[&str] = &["订单金额", "应结订单金额", "总金额"];
const SETTLEMENT_FEE: &[&str] = &["应结订单金额", "总金额"];
const COUPON_FEE: &[&str] = &["代金券金额", "代金券或立减优惠金额", "企业红包金额"];

fn detail(row: &Row<'_, '_>) -> Result<BillRow, BillError> {
    Ok(BillRow {
        line: row.line,
        trade_time: row.required_text(&["交易时间"])?,
        appid: row.text(&["公众账号ID"]),
        mch_id: row.text(&["商户号"]),
        device_info: row.text(&["设备号"]),
        transaction_id: row.text(&["微信订单号"]),
        out_trade_no: row.required_text(&["商户订单号"])?,
        openid: row.text(&["用户标识"]),
        trade_type: row.text(&["交易类型"]),
        trade_state: TradeState::from_bill(&row.required_text(&["交易状态"])?),
        total_fee: row.first_amount(TOTAL_FEE)?,
        settlement_fee: row.amount(SETTLEMENT_FEE)?,
        coupon_fee: row.amount(COUPON_FEE)?,
        refund_id: row.text(&["微信退款单号"]),
        out_refund_no: row.text(&["商户退款单号"]),
        refund_fee: row.amount(&["退款金额"])?,
        refund_requested_fee: row.amount(&["申请退款金额"])?,
        refund_status: row.text(&["退款状态"]),
        body: row.text(&["商品名称"]),
        attach: row.text(&["商户数据包"]),
    })
}

fn summary(row: &Row<'_, '_>) -> Result<BillSummary, BillError> {
    let count_names = &["总交易单数"];
    let count = row.required_text(count_names)?;
    let trade_count = count.parse().map_err(|_| BillError::Count {
        line: row.line,
        column: count_names[0].to_string(),
        value: count.clone(),
    })?;
    Ok(BillSummary {
        trade_count,
        settlement_total: row.first_amount(&["应结订单总金额", "总交易额"])?,
        refund_total: row.first_amount(&["退款总金额", "总退款金额"])?,
        coupon_refund_total: row.amount(&[
            "充值券退款总金额",
            "总企业红包退款金额",
            "总代金券或立减优惠退款金额",
        ])?,
        order_total: row.amount(&["订单总金额"])?,
        refund_requested_total: row.amount(&["申请退款总金额"])?,
    })
}

/// Where the reading is: the detail header, the rows, the summary.
enum Part {
    Start,
    Details(Header),
    SummaryHeader(Header),
    Done,
}

fn parse_text(text: &str) -> Result<Bill, BillError> {
    let mut bill = Bill::default();
    let mut part = Part::Start;
    for (index, raw) in text.split('\n').enumerate() {
        let line = index + 1;
        let content = raw.strip_suffix('\r').unwrap_or(raw);
        if content.trim().trim_start_matches('\u{feff}').is_empty() {
            continue;
        }
        part = match part {
            Part::Start => {
                let header = Header::read(line, content)?;
                // Fail at the header, not at every row, when a column is missing.
                for names in [&["交易时间"][..], &["商户订单号"], &["交易状态"], TOTAL_FEE]
                {
                    header.require(names)?;
                }
                Part::Details(header)
            }
            Part::Details(header) if content.starts_with('`') => {
                let fields = header.fields(line, content)?;
                bill.rows.push(detail(&Row {
                    header: &header,
                    line,
                    fields,
                })?);
                Part::Details(header)
            }
            Part::Details(_) => Part::SummaryHeader(Header::read(line, content)?),
            Part::SummaryHeader(header) => {
                if !content.starts_with('`') {
                    return Err(BillError::MissingSummaryRow { line: header.line });
                }
                let fields = header.fields(line, content)?;
                bill.summary = Some(summary(&Row {
                    header: &header,
                    line,
                    fields,
                })?);
                Part::Done
            }
            Part::Done => {
                return Err(BillError::AfterSummary {
                    line,
                    text: snippet(content),
                });
            }
        };
    }
    match part {
        Part::Start => Err(BillError::Empty),
        Part::SummaryHeader(header) => Err(BillError::MissingSummaryRow { line: header.line }),
        Part::Details(_) | Part::Done => Ok(bill),
    }
}

/// The start of a line, for a message.
fn snippet(text: &str) -> String {
    text.chars().take(60).collect()
}

#[cfg(test)]
mod tests;
