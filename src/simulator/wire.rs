//! The gateway's envelope, as WeChat draws it: a request is read in the
//! order method → XML → signature, and refused unsigned (`return_code=FAIL`)
//! when any of them is wrong; every other answer echoes the caller's identity,
//! carries a fresh nonce and is signed with the request's sign type.

use axum::http::header::CONTENT_TYPE;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::ledger::Answer;
use crate::wechat::api::nonce;
use crate::wechat::sign::{self, ApiKey, SignType};
use crate::wechat::xml::{self, Fields, XmlError};

/// A request past the transport layer: decoded and correctly signed.
pub struct Request {
    pub fields: Fields,
    pub sign_type: SignType,
}

/// A request refused before it is read: `return_code=FAIL` with this
/// `return_msg`, unsigned, because the gateway does not know who is asking.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal(pub &'static str);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut fields = Fields::new();
        fields.set("return_code", "FAIL").set("return_msg", self.0);
        xml_response(StatusCode::OK, &fields)
    }
}

/// Reads a request, checking it is a POST of flat XML signed with `key`
/// (MD5 unless it names `sign_type`).
pub fn open(method: &Method, body: &[u8], key: &ApiKey) -> Result<Request, Refusal> {
    if method != Method::POST {
        return Err(Refusal("请使用post方法"));
    }
    let fields = xml::decode(body).map_err(|e| match e {
        XmlError::NotUtf8 => Refusal("编码格式错误"),
        _ => Refusal("XML格式错误"),
    })?;
    let sign_type = match fields.get("sign_type") {
        None | Some("") => Some(SignType::Md5),
        Some(name) => SignType::from_wire(name),
    };
    match sign_type {
        Some(sign_type) if sign::verify(&fields, key, sign_type) => {
            Ok(Request { fields, sign_type })
        }
        _ => Err(Refusal("签名失败")),
    }
}

/// Identity fields the answer copies from the request when it sent them.
const ECHOED: &[&str] = &["appid", "mch_id", "sub_appid", "sub_mch_id", "device_info"];

/// The signed answer to `request` (or, for [`Answer::BadGateway`], the page a
/// proxy in front of the gateway sends when the gateway is down). With
/// `spoil_sign` (the badsign fault) every signature is spoilt, not only
/// [`Answer::SuccessBadSign`]'s.
pub fn reply(request: &Request, answer: Answer, key: &ApiKey, spoil_sign: bool) -> Response {
    let mut fields = Fields::new();
    fields.set("return_code", "SUCCESS").set("return_msg", "OK");
    for name in ECHOED {
        fields.set_opt(name, request.fields.get(name));
    }
    fields.set("nonce_str", nonce());
    let (result_code, business, tampered) = match answer {
        Answer::BadGateway => return bad_gateway(),
        Answer::Success(business) | Answer::AboutAnotherOrder(business) => {
            ("SUCCESS", business, false)
        }
        Answer::SuccessBadSign(business) => ("SUCCESS", business, true),
        Answer::Fail(code) => {
            let mut business = Fields::new();
            business
                .set("err_code", code)
                .set("err_code_des", description(code));
            ("FAIL", business, false)
        }
        Answer::FailSaying(code, saying) => {
            let mut business = Fields::new();
            business.set("err_code", code).set("err_code_des", saying);
            ("FAIL", business, false)
        }
    };
    fields.set("result_code", result_code);
    for (name, value) in business.iter() {
        fields.set(name, value);
    }
    let mut signature = sign::sign(&fields, key, request.sign_type);
    if tampered || spoil_sign {
        flip_last_digit(&mut signature);
    }
    fields.set("sign", signature);
    xml_response(StatusCode::OK, &fields)
}

/// `err_code_des` for the codes the simulator sends, in the words of 提交付款码支付
/// (ORDERNOTEXIST from the order query page, INVALID_TRANSACTIONID from the
/// reverse page, INVALID_REQUEST and REFUNDNOTEXIST from 申请退款 and 查询退款).
fn description(code: &'static str) -> &'static str {
    match code {
        "SYSTEMERROR" => "接口返回错误",
        "PARAM_ERROR" => "参数错误",
        "ORDERPAID" => "订单已支付",
        "AUTHCODEEXPIRE" => "二维码已过期,请用户在微信上刷新后再试",
        "NOTENOUGH" => "余额不足",
        "ORDERCLOSED" => "订单已关闭",
        "ORDERREVERSED" => "订单已撤销",
        "USERPAYING" => "用户支付中,需要输入密码",
        "AUTH_CODE_INVALID" => "授权码检验错误",
        "LACK_PARAMS" => "缺少参数",
        "MCHID_NOT_EXIST" => "MCHID不存在",
        "OUT_TRADE_NO_USED" => "商户订单号重复",
        "APPID_MCHID_NOT_MATCH" => "appid和mch_id不匹配",
        "ORDERNOTEXIST" => "此交易订单号不存在",
        "INVALID_TRANSACTIONID" => "无效transaction_id",
        "INVALID_REQUEST" => "参数错误",
        "REFUNDNOTEXIST" => "退款订单查询失败",
        other => other,
    }
}

/// Spoils a signature by one hex digit, as a corrupted or forged answer would.
fn flip_last_digit(signature: &mut String) {
    let flipped = if signature.ends_with('0') { '1' } else { '0' };
    signature.pop();
    signature.push(flipped);
}

fn xml_response(status: StatusCode, fields: &Fields) -> Response {
    (
        status,
        [(CONTENT_TYPE, "text/xml; charset=utf-8")],
        xml::encode(fields),
    )
        .into_response()
}

/// What nginx in front of a dead upstream sends.
fn bad_gateway() -> Response {
    const PAGE: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
        <center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
    (StatusCode::BAD_GATEWAY, [(CONTENT_TYPE, "text/html")], PAGE).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

    fn signed(pairs: &[(&str, &str)], sign_type: SignType) -> Vec<u8> {
        let mut fields: Fields = pairs.iter().copied().collect();
        sign::sign_request(&mut fields, &ApiKey::new(KEY), sign_type);
        xml::encode(&fields).into_bytes()
    }

    #[test]
    fn requests_are_read_in_wechats_order() {
        let key = ApiKey::new(KEY);
        let good = signed(
            &[("appid", "wx1"), ("nonce_str", "n")],
            SignType::HmacSha256,
        );
        assert_eq!(
            open(&Method::GET, &good, &key).err(),
            Some(Refusal("请使用post方法"))
        );
        assert_eq!(
            open(&Method::POST, b"<xml><a>", &key).err(),
            Some(Refusal("XML格式错误"))
        );
        assert_eq!(
            open(&Method::POST, &good, &ApiKey::new("other")).err(),
            Some(Refusal("签名失败"))
        );
        let request = open(&Method::POST, &good, &key).unwrap();
        assert_eq!(request.sign_type, SignType::HmacSha256);

        let mut odd: Fields = [("appid", "wx1"), ("sign_type", "SHA1")]
            .into_iter()
            .collect();
        let sign = sign::sign(&odd, &key, SignType::Md5);
        odd.set("sign", sign);
        let odd = xml::encode(&odd).into_bytes();
        assert_eq!(
            open(&Method::POST, &odd, &key).err(),
            Some(Refusal("签名失败"))
        );
    }

    #[test]
    fn flipping_changes_exactly_one_digit() {
        let mut signature = String::from("9A0A8659F005D6984697E2CA0A9CF3B7");
        flip_last_digit(&mut signature);
        assert_eq!(signature, "9A0A8659F005D6984697E2CA0A9CF3B0");
        flip_last_digit(&mut signature);
        assert_eq!(signature, "9A0A8659F005D6984697E2CA0A9CF3B1");
    }
}
