//! BGP-4 wire format: messages, capabilities, path attributes and NLRI.
//! Pure: no sockets, no clock. Malformed input never panics; errors follow
//! RFC 7606.

pub mod codec;
pub mod notification;
pub mod types;

pub use codec::{
    decode_message, encode_message, encode_update, update_attributes_fit, DecodeError,
    SessionCodec, MAX_MESSAGE_LEN,
};
pub use types::*;
