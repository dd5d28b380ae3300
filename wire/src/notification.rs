//! NOTIFICATION codes and subcodes (RFC 4271 §4.5, RFC 4486, RFC 7313),
//! and their meaning in words for logs. TO BE IMPLEMENTED.

pub fn describe(code: u8, subcode: u8) -> String {
    format!("notification {code}/{subcode}")
}
