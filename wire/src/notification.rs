//! NOTIFICATION codes and subcodes (RFC 4271 §4.5, RFC 4486, RFC 6608,
//! RFC 7313, RFC 8538, RFC 9234), their meaning in words for logs, and the
//! RFC 8203/9003 shutdown communication.

use crate::types::Notification;

/// Subcode 0: "unspecific", valid with every error code.
pub const UNSPECIFIC: u8 = 0;

pub const MESSAGE_HEADER_ERROR: u8 = 1;
pub const OPEN_MESSAGE_ERROR: u8 = 2;
pub const UPDATE_MESSAGE_ERROR: u8 = 3;
pub const HOLD_TIMER_EXPIRED: u8 = 4;
pub const FSM_ERROR: u8 = 5;
pub const CEASE: u8 = 6;
pub const ROUTE_REFRESH_MESSAGE_ERROR: u8 = 7;

/// Message Header Error subcodes (RFC 4271 §4.5).
pub mod header {
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    pub const BAD_MESSAGE_TYPE: u8 = 3;
}

/// OPEN Message Error subcodes (RFC 4271 §4.5, RFC 5492, RFC 9234).
pub mod open {
    pub const UNSUPPORTED_VERSION_NUMBER: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;
    pub const ROLE_MISMATCH: u8 = 11;
}

/// UPDATE Message Error subcodes (RFC 4271 §4.5).
pub mod update {
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = 2;
    pub const MISSING_WELL_KNOWN_ATTRIBUTE: u8 = 3;
    pub const ATTRIBUTE_FLAGS_ERROR: u8 = 4;
    pub const ATTRIBUTE_LENGTH_ERROR: u8 = 5;
    pub const INVALID_ORIGIN_ATTRIBUTE: u8 = 6;
    pub const INVALID_NEXT_HOP_ATTRIBUTE: u8 = 8;
    pub const OPTIONAL_ATTRIBUTE_ERROR: u8 = 9;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;
}

/// Finite State Machine Error subcodes (RFC 6608).
pub mod fsm {
    pub const UNEXPECTED_MESSAGE_IN_OPENSENT: u8 = 1;
    pub const UNEXPECTED_MESSAGE_IN_OPENCONFIRM: u8 = 2;
    pub const UNEXPECTED_MESSAGE_IN_ESTABLISHED: u8 = 3;
}

/// Cease subcodes (RFC 4486, RFC 8538, RFC 9384).
pub mod cease {
    pub const MAXIMUM_PREFIXES_REACHED: u8 = 1;
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
    pub const PEER_DECONFIGURED: u8 = 3;
    pub const ADMINISTRATIVE_RESET: u8 = 4;
    pub const CONNECTION_REJECTED: u8 = 5;
    pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
    pub const CONNECTION_COLLISION_RESOLUTION: u8 = 7;
    pub const OUT_OF_RESOURCES: u8 = 8;
    pub const HARD_RESET: u8 = 9;
    pub const BFD_DOWN: u8 = 10;
}

/// ROUTE-REFRESH Message Error subcodes (RFC 7313 §5).
pub mod route_refresh {
    pub const INVALID_MESSAGE_LENGTH: u8 = 1;
}

fn code_name(code: u8) -> Option<&'static str> {
    Some(match code {
        MESSAGE_HEADER_ERROR => "message header error",
        OPEN_MESSAGE_ERROR => "OPEN message error",
        UPDATE_MESSAGE_ERROR => "UPDATE message error",
        HOLD_TIMER_EXPIRED => "hold timer expired",
        FSM_ERROR => "finite state machine error",
        CEASE => "cease",
        ROUTE_REFRESH_MESSAGE_ERROR => "ROUTE-REFRESH message error",
        _ => return None,
    })
}

fn subcode_name(code: u8, subcode: u8) -> Option<&'static str> {
    if subcode == UNSPECIFIC {
        return Some("unspecific");
    }
    Some(match (code, subcode) {
        (MESSAGE_HEADER_ERROR, 1) => "connection not synchronized",
        (MESSAGE_HEADER_ERROR, 2) => "bad message length",
        (MESSAGE_HEADER_ERROR, 3) => "bad message type",
        (OPEN_MESSAGE_ERROR, 1) => "unsupported version number",
        (OPEN_MESSAGE_ERROR, 2) => "bad peer AS",
        (OPEN_MESSAGE_ERROR, 3) => "bad BGP identifier",
        (OPEN_MESSAGE_ERROR, 4) => "unsupported optional parameter",
        (OPEN_MESSAGE_ERROR, 5) => "authentication failure (deprecated)",
        (OPEN_MESSAGE_ERROR, 6) => "unacceptable hold time",
        (OPEN_MESSAGE_ERROR, 7) => "unsupported capability",
        (OPEN_MESSAGE_ERROR, 11) => "role mismatch",
        (UPDATE_MESSAGE_ERROR, 1) => "malformed attribute list",
        (UPDATE_MESSAGE_ERROR, 2) => "unrecognized well-known attribute",
        (UPDATE_MESSAGE_ERROR, 3) => "missing well-known attribute",
        (UPDATE_MESSAGE_ERROR, 4) => "attribute flags error",
        (UPDATE_MESSAGE_ERROR, 5) => "attribute length error",
        (UPDATE_MESSAGE_ERROR, 6) => "invalid ORIGIN attribute",
        (UPDATE_MESSAGE_ERROR, 7) => "AS routing loop (deprecated)",
        (UPDATE_MESSAGE_ERROR, 8) => "invalid NEXT_HOP attribute",
        (UPDATE_MESSAGE_ERROR, 9) => "optional attribute error",
        (UPDATE_MESSAGE_ERROR, 10) => "invalid network field",
        (UPDATE_MESSAGE_ERROR, 11) => "malformed AS_PATH",
        (FSM_ERROR, 1) => "unexpected message in OpenSent state",
        (FSM_ERROR, 2) => "unexpected message in OpenConfirm state",
        (FSM_ERROR, 3) => "unexpected message in Established state",
        (CEASE, 1) => "maximum number of prefixes reached",
        (CEASE, 2) => "administrative shutdown",
        (CEASE, 3) => "peer de-configured",
        (CEASE, 4) => "administrative reset",
        (CEASE, 5) => "connection rejected",
        (CEASE, 6) => "other configuration change",
        (CEASE, 7) => "connection collision resolution",
        (CEASE, 8) => "out of resources",
        (CEASE, 9) => "hard reset",
        (CEASE, 10) => "BFD down",
        (ROUTE_REFRESH_MESSAGE_ERROR, 1) => "invalid message length",
        _ => return None,
    })
}

/// The meaning of a NOTIFICATION in words, e.g.
/// `"OPEN message error / bad peer AS (2/2)"`.
pub fn describe(code: u8, subcode: u8) -> String {
    let c = match code_name(code) {
        Some(c) => c.to_string(),
        None => format!("unknown error code {code}"),
    };
    // Hold timer expired has no subcodes: print just the code name for 0.
    match subcode_name(code, subcode) {
        Some("unspecific") if code == HOLD_TIMER_EXPIRED => format!("{c} ({code}/{subcode})"),
        Some(s) => format!("{c} / {s} ({code}/{subcode})"),
        None => format!("{c} / unknown subcode {subcode} ({code}/{subcode})"),
    }
}

/// The RFC 8203 / RFC 9003 shutdown communication carried in the data of a
/// Cease / Administrative Shutdown (6/2) or Administrative Reset (6/4):
/// one length octet then that many octets of UTF-8. `None` if there is none
/// or it is malformed (the caller then logs the data as hex, RFC 9003 §4).
pub fn shutdown_communication(data: &[u8]) -> Option<String> {
    let (&len, rest) = data.split_first()?;
    let len = usize::from(len);
    if len == 0 || rest.len() < len {
        return None;
    }
    std::str::from_utf8(&rest[..len]).ok().map(str::to_owned)
}

/// Encode `msg` as an RFC 8203 / RFC 9003 shutdown communication: truncated
/// at a character boundary to at most 255 octets.
pub fn shutdown_data(msg: &str) -> Vec<u8> {
    let mut end = msg.len().min(255);
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    let mut v = Vec::with_capacity(end + 1);
    v.push(end as u8);
    v.extend_from_slice(&msg.as_bytes()[..end]);
    v
}

impl Notification {
    pub fn new(code: u8, subcode: u8, data: Vec<u8>) -> Notification {
        Notification {
            code,
            subcode,
            data,
        }
    }

    /// A Cease NOTIFICATION with a shutdown communication, for subcodes 2
    /// (administrative shutdown) and 4 (administrative reset).
    pub fn cease_with_message(subcode: u8, msg: &str) -> Notification {
        let data = if msg.is_empty() {
            Vec::new()
        } else {
            shutdown_data(msg)
        };
        Notification::new(CEASE, subcode, data)
    }

    /// The meaning of this NOTIFICATION in words (see [`describe`]).
    pub fn describe(&self) -> String {
        describe(self.code, self.subcode)
    }

    /// The shutdown communication, if this is a Cease 2 or 4 that has one.
    pub fn shutdown_communication(&self) -> Option<String> {
        if self.code == CEASE
            && (self.subcode == cease::ADMINISTRATIVE_SHUTDOWN
                || self.subcode == cease::ADMINISTRATIVE_RESET)
        {
            shutdown_communication(&self.data)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(describe(2, 2), "OPEN message error / bad peer AS (2/2)");
        assert_eq!(describe(6, 9), "cease / hard reset (6/9)");
        assert_eq!(describe(6, 10), "cease / BFD down (6/10)");
        assert_eq!(describe(4, 0), "hold timer expired (4/0)");
        assert_eq!(describe(3, 0), "UPDATE message error / unspecific (3/0)");
        assert_eq!(
            describe(7, 1),
            "ROUTE-REFRESH message error / invalid message length (7/1)"
        );
        assert_eq!(
            describe(9, 9),
            "unknown error code 9 / unknown subcode 9 (9/9)"
        );
        for code in 1..=7 {
            for sub in 0..=12 {
                assert!(!describe(code, sub).is_empty());
            }
        }
    }

    #[test]
    fn shutdown_messages() {
        assert_eq!(
            shutdown_communication(b"\x05hello").as_deref(),
            Some("hello")
        );
        assert_eq!(shutdown_communication(b"\x05hell"), None);
        assert_eq!(shutdown_communication(b"\x02\xff\xfe"), None);
        assert_eq!(shutdown_communication(b""), None);
        let long = "é".repeat(200);
        let d = shutdown_data(&long);
        assert_eq!(d[0], 254);
        assert_eq!(shutdown_communication(&d).unwrap().chars().count(), 127);
        let n = Notification::cease_with_message(cease::ADMINISTRATIVE_SHUTDOWN, "maintenance");
        assert_eq!(n.shutdown_communication().as_deref(), Some("maintenance"));
    }
}
