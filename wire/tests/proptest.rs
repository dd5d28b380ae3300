//! Property tests: encode → decode round trips for arbitrary well-formed
//! messages on 2- and 4-octet sessions, and decoding arbitrary or mutated
//! bytes never panics.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use wire::*;

fn cfg() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    }
}

fn asn() -> impl Strategy<Value = u32> {
    prop_oneof![1u32..=65535, 65536u32..=u32::MAX]
}

fn v4net() -> impl Strategy<Value = Ipv4Net> + Clone {
    (any::<u32>(), 0u8..=32).prop_map(|(a, l)| Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc())
}

fn v6net() -> impl Strategy<Value = Ipv6Net> + Clone {
    (any::<u128>(), 0u8..=128)
        .prop_map(|(a, l)| Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc())
}

fn prefixes<S: Strategy + Clone>(s: S) -> impl Strategy<Value = Vec<S::Value>> {
    // Mostly small, sometimes big enough to need several messages.
    prop_oneof![4 => vec(s.clone(), 0..8), 1 => vec(s, 0..1500)]
}

fn family_prefixes(f: Family) -> BoxedStrategy<Vec<Prefix>> {
    match f {
        Family::Ipv4Unicast => prefixes(v4net().prop_map(IpNet::V4)).boxed(),
        Family::Ipv6Unicast => prefixes(v6net().prop_map(IpNet::V6)).boxed(),
    }
}

fn family() -> impl Strategy<Value = Family> {
    prop_oneof![Just(Family::Ipv4Unicast), Just(Family::Ipv6Unicast)]
}

fn v6_nonzero() -> impl Strategy<Value = Ipv6Addr> {
    (1u128..).prop_map(Ipv6Addr::from)
}

fn as_path() -> impl Strategy<Value = AsPath> {
    let seg = prop_oneof![
        3 => vec(asn(), 1..150).prop_map(AsSegment::Sequence),
        1 => vec(asn(), 1..20).prop_map(AsSegment::Set),
    ];
    // Adjacent sequences merge as the path is built, as the decoder does.
    vec(seg, 0..4).prop_map(AsPath::from_segments)
}

fn attributes() -> impl Strategy<Value = PathAttributes> {
    let unknown_type = prop_oneof![11u8..=13, Just(16u8), 19u8..=31, 33u8..=255];
    (
        (
            prop_oneof![
                Just(Origin::Igp),
                Just(Origin::Egp),
                Just(Origin::Incomplete)
            ],
            as_path(),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
            any::<bool>(),
            proptest::option::of((asn(), any::<u32>())),
        ),
        (
            vec(any::<u32>(), 0..20),
            vec((any::<u32>(), any::<u32>(), any::<u32>()), 0..10),
            proptest::option::of(any::<u32>()),
            vec(any::<u32>(), 0..5),
            btree_map(unknown_type, vec(any::<u8>(), 0..300), 0..3),
        ),
    )
        .prop_map(
            |((origin, as_path, med, lp, atomic, agg), (comm, large, orig, cl, unk))| {
                PathAttributes {
                    origin: Some(origin),
                    as_path,
                    next_hop: None,
                    med,
                    local_pref: lp,
                    atomic_aggregate: atomic,
                    aggregator: agg.map(|(asn, a)| Aggregator {
                        asn,
                        address: Ipv4Addr::from(a),
                    }),
                    communities: comm.into_iter().map(Community).collect(),
                    large_communities: large
                        .into_iter()
                        .map(|(global, local1, local2)| LargeCommunity {
                            global,
                            local1,
                            local2,
                        })
                        .collect(),
                    originator_id: orig.map(Ipv4Addr::from),
                    cluster_list: cl.into_iter().map(Ipv4Addr::from).collect(),
                    unknown: unk
                        .into_iter()
                        .map(|(type_code, value)| RawAttribute {
                            // As they come back: optional transitive with Partial, and
                            // Extended Length when the value needs it.
                            flags: 0xe0 | if value.len() > 255 { 0x10 } else { 0 },
                            type_code,
                            value,
                        })
                        .collect(),
                }
            },
        )
}

fn mp_reach() -> impl Strategy<Value = MpReach> {
    family().prop_flat_map(|f| {
        let nh = match f {
            Family::Ipv4Unicast => prop_oneof![
                any::<u32>().prop_map(|a| NextHop::new(IpAddr::V4(Ipv4Addr::from(a)))),
                (v6_nonzero(), proptest::option::of(v6_nonzero())).prop_map(|(a, ll)| NextHop {
                    address: IpAddr::V6(a),
                    link_local: ll,
                    interface: None,
                }),
            ]
            .boxed(),
            Family::Ipv6Unicast => (v6_nonzero(), proptest::option::of(v6_nonzero()))
                .prop_map(|(a, ll)| NextHop {
                    address: IpAddr::V6(a),
                    link_local: ll,
                    interface: None,
                })
                .boxed(),
        };
        (nh, family_prefixes(f)).prop_filter_map("non-empty", move |(next_hop, nlri)| {
            (!nlri.is_empty()).then_some(MpReach {
                family: f,
                next_hop,
                nlri,
            })
        })
    })
}

fn mp_unreach() -> impl Strategy<Value = MpUnreach> {
    family().prop_flat_map(|f| {
        family_prefixes(f).prop_filter_map("non-empty", move |withdrawn| {
            (!withdrawn.is_empty()).then_some(MpUnreach {
                family: f,
                withdrawn,
            })
        })
    })
}

fn update() -> impl Strategy<Value = Update> {
    let withdraw_only = (prefixes(v4net()), proptest::option::of(mp_unreach())).prop_map(
        |(withdrawn, mp_unreach)| Update {
            withdrawn,
            mp_unreach,
            ..Default::default()
        },
    );
    let announce = (
        prefixes(v4net()),
        proptest::option::of(mp_unreach()),
        attributes(),
        proptest::option::of(mp_reach()),
        prefixes(v4net()),
        proptest::option::of(any::<u32>()),
    )
        .prop_map(
            |(withdrawn, mp_unreach, mut attributes, mp_reach, mut nlri, nh)| {
                // Attributes without reachable NLRI mean nothing and are not
                // carried when the message must be split: always announce.
                if nlri.is_empty() && mp_reach.is_none() {
                    nlri.push(Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 0), 8).unwrap());
                }
                attributes.next_hop = match nh {
                    Some(a) => Some(Ipv4Addr::from(a)),
                    None if !nlri.is_empty() => Some(Ipv4Addr::new(192, 0, 2, 1)),
                    None => None,
                };
                Update {
                    withdrawn,
                    attributes,
                    mp_reach,
                    mp_unreach,
                    nlri,
                    treat_as_withdraw: None,
                    attribute_discards: Vec::new(),
                }
            },
        );
    prop_oneof![1 => withdraw_only, 3 => announce]
}

fn capability() -> impl Strategy<Value = Capability> {
    let unknown_code = prop_oneof![3u8..=4, 6u8..=63, 66u8..=255];
    prop_oneof![
        family().prop_map(Capability::Multiprotocol),
        Just(Capability::RouteRefresh),
        vec(
            (family(), any::<u16>()).prop_map(|(family, next_hop_afi)| ExtendedNextHopEntry {
                family,
                next_hop_afi
            }),
            0..4
        )
        .prop_map(Capability::ExtendedNextHop),
        (
            any::<bool>(),
            0u16..4096,
            vec(
                (family(), any::<bool>()).prop_map(|(family, forwarding_preserved)| {
                    GracefulRestartFamily {
                        family,
                        forwarding_preserved,
                    }
                }),
                0..3
            )
        )
            .prop_map(|(restart_state, restart_time, families)| {
                Capability::GracefulRestart {
                    restart_state,
                    restart_time,
                    families,
                }
            }),
        asn().prop_map(Capability::FourOctetAs),
        (unknown_code, vec(any::<u8>(), 0..40))
            .prop_map(|(code, value)| Capability::Unknown { code, value }),
    ]
}

fn open() -> impl Strategy<Value = Open> {
    (
        asn(),
        prop_oneof![Just(0u16), 3u16..],
        1u32..,
        vec(capability(), 0..12),
    )
        .prop_map(|(asn, hold_time, id, capabilities)| Open {
            version: 4,
            asn,
            hold_time,
            router_id: Ipv4Addr::from(id),
            capabilities,
        })
}

/// What the decoder gives back for `u` encoded on `codec`.
fn expected(u: &Update, codec: &SessionCodec) -> Update {
    let mut e = u.clone();
    let a = &mut e.attributes;
    if !codec.four_octet_as {
        // RFC 6793 §4.2.3: an AGGREGATOR that is not AS_TRANS means AS4_PATH
        // is ignored, so 4-octet ASNs stay AS_TRANS.
        if a.aggregator
            .is_some_and(|g| g.asn <= 0xffff && g.asn != 23456)
        {
            let trans = |v: &[u32]| -> Vec<u32> {
                v.iter()
                    .map(|&x| if x > 0xffff { 23456 } else { x })
                    .collect()
            };
            a.as_path = AsPath::from_segments(a.as_path.segments().map(|s| match s {
                Segment::Sequence(v) => AsSegment::Sequence(trans(v)),
                Segment::Set(v) => AsSegment::Set(trans(v)),
            }));
        }
    }
    a.unknown.sort_by_key(|r| r.type_code);
    e
}

fn decode_all(mut buf: &[u8], codec: &SessionCodec) -> Vec<Message> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (m, used) = decode_message(buf, codec)
            .unwrap_or_else(|e| panic!("decode error {e} {:?}", e.0))
            .expect("whole message");
        assert!(used <= MAX_MESSAGE_LEN);
        out.push(m);
        buf = &buf[used..];
    }
    out
}

fn sorted<T: Ord + Clone>(v: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut v: Vec<T> = v.into_iter().collect();
    v.sort();
    v
}

fn check_update_round_trip(u: &Update, codec: &SessionCodec) -> Result<(), TestCaseError> {
    let want = expected(u, codec);
    let mut buf = Vec::new();
    encode_message(&Message::Update(u.clone()), codec, &mut buf);
    let msgs = decode_all(&buf, codec);
    let parts: Vec<Update> = msgs
        .into_iter()
        .map(|m| match m {
            Message::Update(u) => u,
            other => panic!("{other:?}"),
        })
        .collect();
    let fits = update_attributes_fit(u, codec);
    if parts.len() == 1 && fits {
        prop_assert_eq!(&parts[0], &want);
        return Ok(());
    }
    // Split: together they carry everything, each announcing part carries
    // the full attribute set.
    let mut wd = Vec::new();
    let mut nlri = Vec::new();
    let mut reach = Vec::new();
    let mut unreach = Vec::new();
    for p in &parts {
        prop_assert_eq!(&p.treat_as_withdraw, &None);
        wd.extend(p.withdrawn.iter().copied());
        nlri.extend(p.nlri.iter().copied());
        if let Some(r) = &p.mp_reach {
            let w = want.mp_reach.as_ref().unwrap();
            prop_assert_eq!((r.family, r.next_hop), (w.family, w.next_hop));
            reach.extend(r.nlri.iter().copied());
        }
        if let Some(r) = &p.mp_unreach {
            prop_assert_eq!(r.family, want.mp_unreach.as_ref().unwrap().family);
            unreach.extend(r.withdrawn.iter().copied());
        }
        if !p.nlri.is_empty() || p.mp_reach.is_some() {
            prop_assert_eq!(&p.attributes, &want.attributes);
        } else {
            prop_assert_eq!(&p.attributes, &PathAttributes::default());
        }
    }
    prop_assert_eq!(sorted(wd), sorted(want.withdrawn.iter().copied()));
    if !fits {
        // Announcements whose attributes cannot fit are not (all) sent.
        return Ok(());
    }
    prop_assert_eq!(sorted(nlri), sorted(want.nlri.iter().copied()));
    prop_assert_eq!(
        sorted(reach),
        sorted(want.mp_reach.iter().flat_map(|r| r.nlri.iter().copied()))
    );
    prop_assert_eq!(
        sorted(unreach),
        sorted(
            want.mp_unreach
                .iter()
                .flat_map(|r| r.withdrawn.iter().copied())
        )
    );
    Ok(())
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn update_round_trip_4_octet(u in update()) {
        check_update_round_trip(&u, &SessionCodec { four_octet_as: true })?;
    }

    #[test]
    fn update_round_trip_2_octet(u in update()) {
        check_update_round_trip(&u, &SessionCodec { four_octet_as: false })?;
    }

    #[test]
    fn open_round_trip(o in open()) {
        let codec = SessionCodec::default();
        let mut buf = Vec::new();
        encode_message(&Message::Open(o.clone()), &codec, &mut buf);
        let msgs = decode_all(&buf, &codec);
        let mut want = o.clone();
        want.asn = o
            .capabilities
            .iter()
            .find_map(|c| match c {
                Capability::FourOctetAs(a) => Some(*a),
                _ => None,
            })
            .unwrap_or(if o.asn > 0xffff { 23456 } else { o.asn });
        prop_assert_eq!(msgs, vec![Message::Open(want)]);
    }

    #[test]
    fn other_round_trip(
        code in any::<u8>(),
        subcode in any::<u8>(),
        data in vec(any::<u8>(), 0..100),
        f in family(),
    ) {
        let codec = SessionCodec::default();
        let msgs = vec![
            Message::Notification(Notification { code, subcode, data }),
            Message::Keepalive,
            Message::RouteRefresh(RouteRefresh { family: f }),
        ];
        let mut buf = Vec::new();
        for m in &msgs {
            encode_message(m, &codec, &mut buf);
        }
        prop_assert_eq!(decode_all(&buf, &codec), msgs);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        ty in 0u8..=6,
        len in prop_oneof![Just(None), (0u16..=5000).prop_map(Some)],
        body in vec(any::<u8>(), 0..700),
        four in any::<bool>(),
    ) {
        let mut m = vec![0xff; 16];
        let l = len.unwrap_or((19 + body.len()) as u16);
        m.extend_from_slice(&l.to_be_bytes());
        m.push(ty);
        m.extend_from_slice(&body);
        let codec = SessionCodec { four_octet_as: four };
        let _ = decode_message(&m, &codec);
        let _ = decode_message(&body, &codec);
    }

    #[test]
    fn mutated_messages_never_panic(
        u in update(),
        o in open(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        four in any::<bool>(),
    ) {
        let codec = SessionCodec { four_octet_as: four };
        let mut buf = Vec::new();
        encode_message(&Message::Open(o), &codec, &mut buf);
        encode_message(&Message::Update(u), &codec, &mut buf);
        // Keep the mutations within the first few messages.
        buf.truncate(3 * MAX_MESSAGE_LEN);
        for (i, b) in &edits {
            let i = i.index(buf.len());
            buf[i] = *b;
        }
        let mut rest = &buf[..];
        while let Ok(Some((_, used))) = decode_message(rest, &codec) {
            rest = &rest[used..];
        }
        let c = cut.index(buf.len());
        let _ = decode_message(&buf[..c], &codec);
    }
}

#[test]
fn split_one_million_prefixes() {
    // The full-table case: 1M IPv4 /24s plus 100k IPv6 /48s.
    let nlri: Vec<Ipv4Net> = (0..1_000_000u32)
        .map(|i| Ipv4Net::new(Ipv4Addr::from(i << 8), 24).unwrap())
        .collect();
    let v6: Vec<Prefix> = (0..100_000u128)
        .map(|i| {
            IpNet::V6(
                Ipv6Net::new(Ipv6Addr::from((0x2001_0db8u128 << 96) | (i << 80)), 48).unwrap(),
            )
        })
        .collect();
    let u = Update {
        attributes: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: AsPath::from_sequence(vec![65001, 4_200_000_000]),
            next_hop: Some(Ipv4Addr::new(10, 0, 0, 1)),
            ..Default::default()
        },
        nlri: nlri.clone(),
        mp_reach: Some(MpReach {
            family: Family::Ipv6Unicast,
            next_hop: NextHop::new("2001:db8::1".parse().unwrap()),
            nlri: v6.clone(),
        }),
        ..Default::default()
    };
    let codec = SessionCodec {
        four_octet_as: false,
    };
    let mut buf = Vec::new();
    encode_message(&Message::Update(u.clone()), &codec, &mut buf);
    let mut got4 = 0usize;
    let mut got6 = 0usize;
    for m in decode_all(&buf, &codec) {
        let Message::Update(p) = m else { panic!() };
        assert_eq!(p.attributes, u.attributes);
        got4 += p.nlri.len();
        got6 += p.mp_reach.map_or(0, |r| r.nlri.len());
    }
    assert_eq!((got4, got6), (nlri.len(), v6.len()));
}
