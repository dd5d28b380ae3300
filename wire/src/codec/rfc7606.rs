//! RFC 7606 error classification for UPDATE messages: which malformations
//! make the routes of the message withdrawn (treat-as-withdraw, §2), which
//! only drop the attribute (attribute discard, §2), and which reset the
//! session with a NOTIFICATION (§3, and RFC 4760 §7 for MP_*_NLRI).
//!
//! Per-attribute checks live with their parsers in `attributes`; they call
//! [`AttrState::withdraw`] for treat-as-withdraw and simply ignore the value
//! for attribute discard. The rules that are about the attribute list as a
//! whole (overrun, duplicates, missing mandatory attributes) are here.

use super::DecodeError;
use crate::codec::attr_type;
use crate::notification as n;
use crate::types::Update;

/// What one UPDATE's attribute walk has found so far that the RFC 7606
/// rules need.
#[derive(Default)]
pub(super) struct AttrState {
    /// Attribute type codes seen, one bit each.
    seen: [u64; 4],
    /// The first treat-as-withdraw reason; later ones are not kept.
    taw: Option<String>,
    /// One line per attribute discarded (RFC 7606 §2 "attribute discard").
    /// Empty, and so never allocated, for a well-formed UPDATE.
    discards: Vec<String>,
    pub have_origin: bool,
    pub have_as_path: bool,
    pub have_next_hop: bool,
}

impl AttrState {
    /// Marks `ty` seen; returns true if it already was.
    pub fn dup(&mut self, ty: u8) -> bool {
        let (w, bit) = (usize::from(ty / 64), 1u64 << (ty % 64));
        let was = self.seen[w] & bit != 0;
        self.seen[w] |= bit;
        was
    }

    /// Treat-as-withdraw: every route of the UPDATE is withdrawn. `why` is
    /// built only for the first reason.
    pub fn withdraw(&mut self, why: impl FnOnce() -> String) {
        if self.taw.is_none() {
            self.taw = Some(why());
        }
    }

    /// Attribute discard: the attribute is ignored and the routes are kept.
    /// `why` names the attribute and the reason; reported in
    /// [`Update::attribute_discards`] so the loss is never silent.
    pub fn discard(&mut self, why: impl FnOnce() -> String) {
        self.discards.push(why());
    }

    /// Moves the treat-as-withdraw reason and the discards onto `u`.
    pub fn report_into(self, u: &mut Update) {
        u.treat_as_withdraw = self.taw;
        u.attribute_discards = self.discards;
    }
}

pub(super) fn update_err(subcode: u8, data: Vec<u8>) -> DecodeError {
    DecodeError::new(n::UPDATE_MESSAGE_ERROR, subcode, data)
}

fn is_mp(ty: u8) -> bool {
    ty == attr_type::MP_REACH_NLRI || ty == attr_type::MP_UNREACH_NLRI
}

/// An attribute (`ty`, if its header got that far) whose length overruns
/// the path attribute area. RFC 7606 §4: treat-as-withdraw, because the
/// Total Path Attribute Length still locates the NLRI, unless the attribute
/// is the one carrying NLRI (§3 j): then the session is reset with 3/1.
pub(super) fn overrun(ty: Option<u8>, st: &mut AttrState) -> Result<(), DecodeError> {
    if ty.is_some_and(is_mp) {
        return Err(update_err(n::update::MALFORMED_ATTRIBUTE_LIST, Vec::new()));
    }
    st.withdraw(|| {
        format!(
            "{} length overruns the path attributes",
            super::attr_name(ty.unwrap_or(0))
        )
    });
    Ok(())
}

/// A second attribute of type `ty`. RFC 7606 §3 g: discard every repeat,
/// except of MP_REACH_NLRI / MP_UNREACH_NLRI, which resets the session.
pub(super) fn duplicate(ty: u8, st: &mut AttrState) -> Result<(), DecodeError> {
    if is_mp(ty) {
        return Err(update_err(n::update::MALFORMED_ATTRIBUTE_LIST, Vec::new()));
    }
    st.discard(|| format!("{}: repeated, discarded", super::attr_name(ty)));
    Ok(())
}

/// An error in MP_REACH_NLRI / MP_UNREACH_NLRI (flags, lengths, next hop,
/// NLRI): the session is reset with 3/9 Optional Attribute Error carrying
/// the attribute (RFC 4760 §7, RFC 7606 §7.11).
pub(super) fn mp_error(whole: &[u8]) -> DecodeError {
    update_err(n::update::OPTIONAL_ATTRIBUTE_ERROR, whole.to_vec())
}

/// An attribute we do not know with the Optional bit clear: 3/2
/// Unrecognized Well-known Attribute (RFC 4271 §6.3).
pub(super) fn unrecognized_well_known(whole: &[u8]) -> DecodeError {
    update_err(n::update::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE, whole.to_vec())
}

/// RFC 7606 §3 d: an UPDATE that announces routes without a well-known
/// mandatory attribute is treated as a withdrawal. NEXT_HOP is mandatory
/// only for classic (non-MP) NLRI.
pub(super) fn check_mandatory(u: &Update, st: &mut AttrState) {
    let reach_v4 = !u.nlri.is_empty();
    let reach_mp = u.mp_reach.as_ref().is_some_and(|r| !r.nlri.is_empty());
    if reach_v4 || reach_mp {
        if !st.have_origin {
            st.withdraw(|| "missing well-known attribute ORIGIN".into());
        }
        if !st.have_as_path {
            st.withdraw(|| "missing well-known attribute AS_PATH".into());
        }
        if reach_v4 && !st.have_next_hop {
            st.withdraw(|| "missing well-known attribute NEXT_HOP".into());
        }
    }
}
