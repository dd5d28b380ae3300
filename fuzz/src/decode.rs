//! Target `decode`: the message decoder on a stream of bytes from a peer.
//!
//! Input: one octet of session settings (bit 0: 4-octet ASNs negotiated,
//! RFC 6793; an OPEN in the stream sets it again, as in the session's
//! reader), then the bytes the peer sent. Messages are decoded one after
//! another, as the session does, until the stream ends or an error resets
//! the session. Properties: no panic; `used` stays within the input and
//! covers at least a header; one octet less reads as incomplete; every
//! accepted message survives [`roundtrip::check`]; the NOTIFICATION of an
//! error encodes and decodes back.

use wire::codec::HEADER_LEN;
use wire::{decode_message, Message, SessionCodec};

use crate::roundtrip;

pub fn codec_of(settings: u8) -> SessionCodec {
    SessionCodec {
        four_octet_as: settings & 1 != 0,
    }
}

pub fn run(data: &[u8]) {
    let Some((&settings, mut rest)) = data.split_first() else {
        return;
    };
    let mut codec = codec_of(settings);
    loop {
        match decode_message(rest, &codec) {
            Ok(Some((msg, used))) => {
                assert!(
                    (HEADER_LEN..=rest.len()).contains(&used),
                    "used {used} of {}",
                    rest.len()
                );
                // TCP hands the session any prefix of the stream: one octet
                // short of the message must read as "not yet", never as an
                // error or another message.
                assert!(
                    matches!(decode_message(&rest[..used - 1], &codec), Ok(None)),
                    "a partial message decoded differently"
                );
                roundtrip::check(&msg, &codec);
                // As the session's reader does: the peer's OPEN decides how
                // later UPDATEs are read.
                if let Message::Open(o) = &msg {
                    codec.four_octet_as =
                        o.has_capability(|c| matches!(c, wire::Capability::FourOctetAs(_)));
                }
                rest = &rest[used..];
            }
            Ok(None) => return,
            Err(e) => {
                let n = Message::Notification(e.notification().clone());
                let back = roundtrip::reencode(&n, &codec);
                assert_eq!(back.len(), 1);
                // Every error names a code the registry knows (RFC 4271 §4.5).
                assert!((1..=6).contains(&e.code()), "error code {}", e.code());
                let _ = e.to_string();
                return;
            }
        }
    }
}
