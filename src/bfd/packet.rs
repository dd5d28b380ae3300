//! The BFD Control packet (RFC 5880 §4.1), without authentication.
//!
//! ```text
//!  0                   1                   2                   3
//! |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
//! |                       My Discriminator                        |
//! |                      Your Discriminator                       |
//! |                    Desired Min TX Interval                    |
//! |                   Required Min RX Interval                    |
//! |                 Required Min Echo RX Interval                 |
//! ```
//!
//! Intervals are in microseconds on the wire.

/// Length of a packet without an authentication section.
pub const LEN: usize = 24;
const VERSION: u8 = 1;

/// bfd.SessionState: defined with the other messages' types in
/// [`crate::events`]; the 2-bit "Sta" field here.
pub use crate::events::BfdState as State;

fn state_from_bits(b: u8) -> State {
    match b & 3 {
        0 => State::AdminDown,
        1 => State::Down,
        2 => State::Init,
        _ => State::Up,
    }
}

fn state_bits(s: State) -> u8 {
    match s {
        State::AdminDown => 0,
        State::Down => 1,
        State::Init => 2,
        State::Up => 3,
    }
}

/// Diagnostic codes (RFC 5880 §4.1) we set or show.
pub mod diag {
    pub const NONE: u8 = 0;
    pub const DETECTION_TIME_EXPIRED: u8 = 1;
    pub const NEIGHBOR_SIGNALED_DOWN: u8 = 3;
    pub const ADMIN_DOWN: u8 = 7;

    /// The code in words, for `show bfd`.
    pub fn name(code: u8) -> &'static str {
        match code {
            0 => "none",
            1 => "control detection time expired",
            2 => "echo function failed",
            3 => "neighbor signaled session down",
            4 => "forwarding plane reset",
            5 => "path down",
            6 => "concatenated path down",
            7 => "administratively down",
            8 => "reverse concatenated path down",
            _ => "unknown",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlPacket {
    pub diag: u8,
    pub state: State,
    pub poll: bool,
    pub final_: bool,
    pub control_plane_independent: bool,
    pub auth_present: bool,
    pub demand: bool,
    pub multipoint: bool,
    pub detect_mult: u8,
    pub my_discr: u32,
    pub your_discr: u32,
    /// Microseconds.
    pub desired_min_tx: u32,
    /// Microseconds.
    pub required_min_rx: u32,
    /// Microseconds; 0: we do not take echo packets.
    pub required_min_echo_rx: u32,
}

/// Why a received packet is discarded (RFC 5880 §6.8.6, first checks).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("packet of {0} bytes is shorter than 24")]
    Short(usize),
    #[error("version {0} (expected 1)")]
    Version(u8),
    #[error("length field {field} is invalid for a {len}-byte packet")]
    Length { field: u8, len: usize },
    #[error("detect multiplier is zero")]
    ZeroDetectMult,
    #[error("multipoint bit set")]
    Multipoint,
    #[error("my discriminator is zero")]
    ZeroMyDiscr,
    #[error("your discriminator is zero in state {0}")]
    ZeroYourDiscr(State),
    #[error("authentication present but not configured")]
    Auth,
}

impl ControlPacket {
    pub fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0] = (VERSION << 5) | (self.diag & 0x1f);
        b[1] = (state_bits(self.state) << 6)
            | (u8::from(self.poll) << 5)
            | (u8::from(self.final_) << 4)
            | (u8::from(self.control_plane_independent) << 3)
            | (u8::from(self.auth_present) << 2)
            | (u8::from(self.demand) << 1)
            | u8::from(self.multipoint);
        b[2] = self.detect_mult;
        b[3] = LEN as u8;
        b[4..8].copy_from_slice(&self.my_discr.to_be_bytes());
        b[8..12].copy_from_slice(&self.your_discr.to_be_bytes());
        b[12..16].copy_from_slice(&self.desired_min_tx.to_be_bytes());
        b[16..20].copy_from_slice(&self.required_min_rx.to_be_bytes());
        b[20..24].copy_from_slice(&self.required_min_echo_rx.to_be_bytes());
        b
    }

    /// Decode and apply the RFC 5880 §6.8.6 checks that need no session.
    pub fn decode(b: &[u8]) -> Result<ControlPacket, DecodeError> {
        if b.len() < LEN {
            return Err(DecodeError::Short(b.len()));
        }
        let version = b[0] >> 5;
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let p = ControlPacket {
            diag: b[0] & 0x1f,
            state: state_from_bits(b[1] >> 6),
            poll: b[1] & 0x20 != 0,
            final_: b[1] & 0x10 != 0,
            control_plane_independent: b[1] & 0x08 != 0,
            auth_present: b[1] & 0x04 != 0,
            demand: b[1] & 0x02 != 0,
            multipoint: b[1] & 0x01 != 0,
            detect_mult: b[2],
            my_discr: word(4),
            your_discr: word(8),
            desired_min_tx: word(12),
            required_min_rx: word(16),
            required_min_echo_rx: word(20),
        };
        let field = b[3];
        let min = if p.auth_present { 26 } else { LEN };
        if usize::from(field) < min || usize::from(field) > b.len() {
            return Err(DecodeError::Length {
                field,
                len: b.len(),
            });
        }
        if p.auth_present {
            return Err(DecodeError::Auth);
        }
        if p.detect_mult == 0 {
            return Err(DecodeError::ZeroDetectMult);
        }
        if p.multipoint {
            return Err(DecodeError::Multipoint);
        }
        if p.my_discr == 0 {
            return Err(DecodeError::ZeroMyDiscr);
        }
        if p.your_discr == 0 && !matches!(p.state, State::Down | State::AdminDown) {
            return Err(DecodeError::ZeroYourDiscr(p.state));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ControlPacket {
        ControlPacket {
            diag: diag::DETECTION_TIME_EXPIRED,
            state: State::Up,
            poll: true,
            final_: false,
            control_plane_independent: false,
            auth_present: false,
            demand: false,
            multipoint: false,
            detect_mult: 3,
            my_discr: 0x0102_0304,
            your_discr: 0x0a0b_0c0d,
            desired_min_tx: 300_000,
            required_min_rx: 250_000,
            required_min_echo_rx: 0,
        }
    }

    #[test]
    fn encodes_the_rfc_layout() {
        let b = sample().encode();
        assert_eq!(b[0], 0x21, "version 1, diag 1");
        assert_eq!(b[1], 0xe0, "state Up (3), poll");
        assert_eq!(b[2], 3);
        assert_eq!(b[3], 24);
        assert_eq!(&b[4..8], &[1, 2, 3, 4]);
        assert_eq!(&b[8..12], &[0x0a, 0x0b, 0x0c, 0x0d]);
        assert_eq!(&b[12..16], &300_000u32.to_be_bytes());
        assert_eq!(&b[16..20], &250_000u32.to_be_bytes());
    }

    #[test]
    fn round_trips() {
        let p = sample();
        assert_eq!(ControlPacket::decode(&p.encode()), Ok(p));
        let f = ControlPacket {
            poll: false,
            final_: true,
            state: State::Init,
            ..p
        };
        assert_eq!(ControlPacket::decode(&f.encode()), Ok(f));
    }

    #[test]
    fn decodes_a_packet_as_frr_sends_it() {
        // Down, diag 0, mult 3, my discr 1, your 0, 1 s / 300 ms / 50 ms.
        let b = [
            0x20, 0x40, 3, 24, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x40, 0, 0x04, 0x93, 0xe0, 0,
            0, 0xc3, 0x50,
        ];
        let p = ControlPacket::decode(&b).unwrap();
        assert_eq!(p.state, State::Down);
        assert_eq!(p.my_discr, 1);
        assert_eq!(p.your_discr, 0);
        assert_eq!(p.desired_min_tx, 1_000_000);
        assert_eq!(p.required_min_rx, 300_000);
        assert_eq!(p.required_min_echo_rx, 50_000);
    }

    #[test]
    fn rejects_what_rfc_5880_6_8_6_discards() {
        let ok = sample().encode();
        let with = |f: &dyn Fn(&mut [u8; LEN])| {
            let mut b = ok;
            f(&mut b);
            ControlPacket::decode(&b)
        };
        assert_eq!(
            ControlPacket::decode(&ok[..20]),
            Err(DecodeError::Short(20))
        );
        assert_eq!(with(&|b| b[0] = 0x41), Err(DecodeError::Version(2)));
        assert!(matches!(
            with(&|b| b[3] = 23),
            Err(DecodeError::Length { .. })
        ));
        assert!(matches!(
            with(&|b| b[3] = 40),
            Err(DecodeError::Length { .. })
        ));
        assert_eq!(with(&|b| b[2] = 0), Err(DecodeError::ZeroDetectMult));
        assert_eq!(with(&|b| b[1] |= 1), Err(DecodeError::Multipoint));
        assert_eq!(with(&|b| b[4..8].fill(0)), Err(DecodeError::ZeroMyDiscr));
        assert_eq!(
            with(&|b| b[8..12].fill(0)),
            Err(DecodeError::ZeroYourDiscr(State::Up))
        );
        assert!(matches!(
            with(&|b| {
                b[1] |= 4;
                b[3] = 24
            }),
            Err(DecodeError::Length { .. })
        ));
    }

    #[test]
    fn your_discriminator_may_be_zero_while_down() {
        let p = ControlPacket {
            state: State::Down,
            your_discr: 0,
            ..sample()
        };
        assert!(ControlPacket::decode(&p.encode()).is_ok());
    }

    #[test]
    fn a_longer_datagram_with_a_24_byte_length_field_is_accepted() {
        let mut b = sample().encode().to_vec();
        b.extend_from_slice(&[0; 8]);
        assert!(ControlPacket::decode(&b).is_ok());
    }
}
