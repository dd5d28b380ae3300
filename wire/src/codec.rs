//! Decode and encode BGP messages. TO BE IMPLEMENTED (see signatures).

use crate::types::*;

/// RFC 4271 §4: no message is longer than 4096 octets.
pub const MAX_MESSAGE_LEN: usize = 4096;

/// What the two ends negotiated that changes the encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionCodec {
    /// Both sides sent the 4-octet ASN capability (RFC 6793): AS_PATH and
    /// AGGREGATOR carry 4-octet ASNs; otherwise 2-octet with AS4_PATH.
    pub four_octet_as: bool,
}

/// A message that cannot be handled by treat-as-withdraw or attribute
/// discard: the session must send this NOTIFICATION and close (RFC 7606 §3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", crate::notification::describe(.0.code, .0.subcode))]
pub struct DecodeError(pub Notification);

/// Decode one message from the front of `buf`. `Ok(None)` means `buf` does
/// not yet hold a whole message; `Ok(Some((msg, used)))` consumed `used` bytes.
pub fn decode_message(
    _buf: &[u8],
    _codec: &SessionCodec,
) -> Result<Option<(Message, usize)>, DecodeError> {
    todo!()
}

/// Append the encoding of `msg` to `out`.
pub fn encode_message(_msg: &Message, _codec: &SessionCodec, _out: &mut Vec<u8>) {
    todo!()
}
