//! The round-trip property shared by both targets: a message the decoder
//! accepted, encoded again with the same session settings, decodes to the
//! same message. "The same" allows only what the encoder documents it
//! changes (see [`as_reencoded`]).

use wire::{
    decode_message, encode_message, update_attributes_fit, Message, PathAttributes, RawAttribute,
    SessionCodec, Update, AS_TRANS, MAX_MESSAGE_LEN,
};

/// Encodes `msg` with `codec` and decodes every resulting message; panics
/// if any is longer than 4096 octets, fails to decode, or the bytes are not
/// used up exactly.
pub fn reencode(msg: &Message, codec: &SessionCodec) -> Vec<Message> {
    let mut bytes = Vec::new();
    encode_message(msg, codec, &mut bytes);
    let mut rest = &bytes[..];
    let mut out = Vec::new();
    while !rest.is_empty() {
        match decode_message(rest, codec) {
            Ok(Some((m, used))) => {
                assert!(used <= MAX_MESSAGE_LEN, "encoded a {used}-octet message");
                out.push(m);
                rest = &rest[used..];
            }
            Ok(None) => panic!("encoder left a partial message: {rest:02x?}"),
            Err(e) => panic!("our own encoding of {msg:?} does not decode: {e}"),
        }
    }
    out
}

/// Asserts the round-trip property for `msg`, which the decoder produced
/// on a session with `codec`.
pub fn check(msg: &Message, codec: &SessionCodec) {
    let again = reencode(msg, codec);
    match msg {
        Message::Update(u) => check_update(u, codec, &again),
        Message::Notification(n) => {
            // Data is cut to what fits in one message.
            assert_eq!(again.len(), 1);
            let Message::Notification(back) = &again[0] else {
                panic!("NOTIFICATION came back as {:?}", again[0]);
            };
            assert_eq!((back.code, back.subcode), (n.code, n.subcode));
            assert!(n.data.starts_with(&back.data));
        }
        other => assert_eq!(again, vec![other.clone()], "round trip changed the message"),
    }
}

fn check_update(u: &Update, codec: &SessionCodec, again: &[Message]) {
    // A treat-as-withdraw UPDATE keeps what it could parse of a malformed
    // attribute set; it is never re-advertised, so there is nothing to keep.
    if u.treat_as_withdraw.is_some() {
        return;
    }
    let back: Vec<&Update> = again
        .iter()
        .map(|m| match m {
            Message::Update(b) => b,
            other => panic!("UPDATE came back as {other:?}"),
        })
        .collect();
    let want = as_reencoded(u, codec);
    let fits = update_attributes_fit(u, codec);
    if back.len() == 1 && fits {
        assert_eq!(back[0], &want, "round trip changed the UPDATE");
        return;
    }
    // Split into several messages (RFC 4271 §4: at most 4096 octets each):
    // together they carry the same prefixes, each announcement with the
    // whole attribute set; announcements whose attributes leave no room
    // for a prefix are left out (`update_attributes_fit`).
    let mut got = Update::default();
    for b in &back {
        got.withdrawn.extend(b.withdrawn.iter().copied());
        got.nlri.extend(b.nlri.iter().copied());
        if let Some(r) = &b.mp_unreach {
            got.mp_unreach
                .get_or_insert_with(|| wire::MpUnreach {
                    family: r.family,
                    withdrawn: Vec::new(),
                })
                .withdrawn
                .extend(r.withdrawn.iter().copied());
        }
        if let Some(r) = &b.mp_reach {
            assert_eq!(Some(r.next_hop), want.mp_reach.as_ref().map(|w| w.next_hop));
            got.mp_reach
                .get_or_insert_with(|| wire::MpReach {
                    family: r.family,
                    next_hop: r.next_hop,
                    nlri: Vec::new(),
                })
                .nlri
                .extend(r.nlri.iter().copied());
        }
        let announces = !b.nlri.is_empty() || b.mp_reach.is_some();
        if announces {
            assert_eq!(
                b.attributes, want.attributes,
                "a split part lost attributes"
            );
        }
    }
    assert_eq!(got.withdrawn, want.withdrawn, "withdrawals lost in a split");
    assert_eq!(
        got.mp_unreach.map(|r| r.withdrawn).unwrap_or_default(),
        want.mp_unreach
            .as_ref()
            .map(|r| r.withdrawn.clone())
            .unwrap_or_default(),
        "MP_UNREACH withdrawals lost in a split"
    );
    if fits {
        assert_eq!(got.nlri, want.nlri, "announcements lost in a split");
        assert_eq!(
            got.mp_reach.map(|r| r.nlri).unwrap_or_default(),
            want.mp_reach
                .as_ref()
                .map(|r| r.nlri.clone())
                .unwrap_or_default(),
            "MP_REACH announcements lost in a split"
        );
    }
}

/// What `u` becomes after one encode and decode on a session with `codec`,
/// by what the encoder documents (wire/src/codec/attributes.rs):
/// * unknown attributes: only optional transitive ones are passed on, in
///   type-code order, with the Partial bit set (RFC 4271 §5);
/// * on a 2-octet session, an AGGREGATOR whose ASN fits in 2 octets (an
///   OLD speaker aggregated) makes the receiver ignore AS4_PATH
///   (RFC 6793 §4.2.3), so 4-octet ASNs of the path come back as AS_TRANS.
pub fn as_reencoded(u: &Update, codec: &SessionCodec) -> Update {
    let mut want = u.clone();
    // What the decoder discarded (RFC 7606 attribute discard) is a note on
    // the message received; the re-encoding carries none of it.
    want.attribute_discards.clear();
    let a = &mut want.attributes;
    let mut unknown: Vec<RawAttribute> = a
        .unknown
        .iter()
        .filter(|r| {
            let ot = RawAttribute::FLAG_OPTIONAL | RawAttribute::FLAG_TRANSITIVE;
            r.flags & ot == ot
        })
        .map(|r| RawAttribute {
            flags: (r.flags & !(RawAttribute::FLAG_EXTENDED_LENGTH | 0x0f))
                | RawAttribute::FLAG_PARTIAL,
            ..r.clone()
        })
        .collect();
    unknown.sort_by_key(|r| r.type_code);
    a.unknown = unknown.into_iter().collect();
    if !codec.four_octet_as {
        old_aggregator_hides_as4_path(a);
    }
    want
}

fn old_aggregator_hides_as4_path(a: &mut PathAttributes) {
    let old_aggregator = a
        .aggregator
        .is_some_and(|ag| ag.asn <= 0xffff && ag.asn != u32::from(AS_TRANS));
    if old_aggregator && a.as_path.asns().any(|x| x > 0xffff) {
        let trans = u32::from(AS_TRANS);
        let segments = a.as_path.segments().map(|s| {
            let map = |v: &[u32]| {
                v.iter()
                    .map(|&x| if x > 0xffff { trans } else { x })
                    .collect()
            };
            match s {
                wire::Segment::Sequence(v) => wire::AsSegment::Sequence(map(v)),
                wire::Segment::Set(v) => wire::AsSegment::Set(map(v)),
            }
        });
        a.as_path = wire::AsPath::from_segments(segments.collect::<Vec<_>>());
    }
}
