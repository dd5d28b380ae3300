//! RFC 7606 (and RFC 4271 §6) error handling, one row per malformation.

use wire::*;

const ORIGIN: &[u8] = &[0x40, 1, 1, 0];
const AS_PATH: &[u8] = &[0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9];
const NEXT_HOP: &[u8] = &[0x40, 3, 4, 10, 0, 0, 1];
const NLRI: &[u8] = &[8, 10];
/// MP_REACH ipv6, next hop 2001:db8::1, NLRI 2001:db8::/32.
const MP_REACH6: &[u8] = &[
    0x80, 14, 26, 0, 2, 1, 16, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 32,
    0x20, 0x01, 0x0d, 0xb8,
];
const MP_UNREACH6: &[u8] = &[0x80, 15, 3, 0, 2, 1];

fn header(len: usize, ty: u8) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&(len as u16).to_be_bytes());
    m.push(ty);
    m
}

fn raw_update(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut m = header(23 + withdrawn.len() + attrs.len() + nlri.len(), 2);
    m.extend_from_slice(&(withdrawn.len() as u16).to_be_bytes());
    m.extend_from_slice(withdrawn);
    m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    m.extend_from_slice(attrs);
    m.extend_from_slice(nlri);
    m
}

fn upd(parts: &[&[u8]], nlri: &[u8]) -> Vec<u8> {
    raw_update(&[], &parts.concat(), nlri)
}

/// ORIGIN, AS_PATH, NEXT_HOP, then `extra`, with NLRI 10.0.0.0/8.
fn with(extra: &[&[u8]]) -> Vec<u8> {
    let mut p: Vec<&[u8]> = vec![ORIGIN, AS_PATH, NEXT_HOP];
    p.extend_from_slice(extra);
    upd(&p, NLRI)
}

enum Expect {
    /// Treat-as-withdraw, with the prefixes still present.
    Withdraw,
    /// Decoded fine, no treat-as-withdraw; the check must hold.
    Fine(fn(&Update) -> bool),
    /// Session reset with this NOTIFICATION code/subcode.
    Reset(u8, u8),
}
use Expect::*;

fn check(name: &str, bytes: &[u8], four: bool, want: Expect) {
    let codec = SessionCodec {
        four_octet_as: four,
    };
    let got = decode_message(bytes, &codec);
    match (want, got) {
        (Reset(c, s), Err(e)) => {
            assert_eq!((e.code(), e.subcode()), (c, s), "{name}: {e}");
        }
        (Withdraw, Ok(Some((Message::Update(u), used)))) => {
            assert_eq!(used, bytes.len(), "{name}");
            assert!(
                u.treat_as_withdraw.is_some(),
                "{name}: expected treat-as-withdraw: {u:?}"
            );
            let n = u.nlri.len() + u.mp_reach.as_ref().map_or(0, |r| r.nlri.len());
            assert!(n > 0, "{name}: prefixes must be kept for withdrawal");
        }
        (Fine(f), Ok(Some((Message::Update(u), used)))) => {
            assert_eq!(used, bytes.len(), "{name}");
            assert_eq!(u.treat_as_withdraw, None, "{name}");
            assert!(f(&u), "{name}: check failed on {u:?}");
        }
        (_, got) => panic!("{name}: unexpected outcome {got:?}"),
    }
}

#[test]
fn update_error_table() {
    let long_comm: &[u8] = &[0xc0, 8, 200, 0, 0, 0, 1];
    let cases: Vec<(&str, Vec<u8>, bool, Expect)> = vec![
        // --- message structure: session reset
        (
            "withdrawn length overruns message",
            {
                let mut m = with(&[]);
                m[19..21].copy_from_slice(&500u16.to_be_bytes());
                m
            },
            true,
            Reset(3, 1),
        ),
        (
            "path attribute length overruns message",
            {
                let mut m = with(&[]);
                m[21..23].copy_from_slice(&500u16.to_be_bytes());
                m
            },
            true,
            Reset(3, 1),
        ),
        (
            "NLRI prefix length 33",
            upd(&[ORIGIN, AS_PATH, NEXT_HOP], &[33, 1, 2, 3, 4, 5]),
            true,
            Reset(3, 10),
        ),
        (
            "NLRI prefix overruns",
            upd(&[ORIGIN, AS_PATH, NEXT_HOP], &[24, 10]),
            true,
            Reset(3, 10),
        ),
        (
            "withdrawn prefix length 40",
            raw_update(&[40, 1, 2, 3, 4, 5], &[], &[]),
            true,
            Reset(3, 10),
        ),
        (
            "withdrawn prefix overruns",
            raw_update(&[16, 1], &[], &[]),
            true,
            Reset(3, 10),
        ),
        (
            "host bits are masked",
            upd(&[ORIGIN, AS_PATH, NEXT_HOP], &[8, 10, 24, 10, 1, 2]),
            true,
            Fine(|u| {
                u.nlri
                    == [
                        "10.0.0.0/8".parse().unwrap(),
                        "10.1.2.0/24".parse().unwrap(),
                    ]
            }),
        ),
        // --- attribute lengths (RFC 7606 §4)
        (
            "attribute overruns attribute area",
            with(&[long_comm]),
            true,
            Withdraw,
        ),
        (
            "2-octet fragment after last attribute",
            with(&[&[0xc0, 8]]),
            true,
            Withdraw,
        ),
        (
            "1-octet fragment after last attribute",
            with(&[&[0xc0]]),
            true,
            Withdraw,
        ),
        (
            "extended-length header truncated",
            with(&[&[0xd0, 8, 0]]),
            true,
            Withdraw,
        ),
        (
            "MP_REACH overruns attribute area",
            upd(&[ORIGIN, AS_PATH, &[0x80, 14, 200, 0, 2, 1]], &[]),
            true,
            Reset(3, 1),
        ),
        (
            "MP_UNREACH overruns attribute area",
            upd(&[&[0x90, 15, 0, 200, 0, 2, 1]], &[]),
            true,
            Reset(3, 1),
        ),
        // --- ORIGIN (§7.1)
        (
            "ORIGIN value 3",
            upd(&[&[0x40, 1, 1, 3], AS_PATH, NEXT_HOP], NLRI),
            true,
            Withdraw,
        ),
        (
            "ORIGIN length 2",
            upd(&[&[0x40, 1, 2, 0, 0], AS_PATH, NEXT_HOP], NLRI),
            true,
            Withdraw,
        ),
        (
            "ORIGIN optional flag",
            upd(&[&[0xc0, 1, 1, 0], AS_PATH, NEXT_HOP], NLRI),
            true,
            Withdraw,
        ),
        // --- AS_PATH (§7.2)
        (
            "AS_PATH segment type 5",
            upd(
                &[ORIGIN, &[0x40, 2, 6, 5, 1, 0, 0, 0xfd, 0xe9], NEXT_HOP],
                NLRI,
            ),
            true,
            Withdraw,
        ),
        (
            "AS_PATH segment overruns",
            upd(
                &[ORIGIN, &[0x40, 2, 6, 2, 2, 0, 0, 0xfd, 0xe9], NEXT_HOP],
                NLRI,
            ),
            true,
            Withdraw,
        ),
        (
            "AS_PATH zero-length segment",
            upd(&[ORIGIN, &[0x40, 2, 2, 2, 0], NEXT_HOP], NLRI),
            true,
            Withdraw,
        ),
        (
            "AS_PATH trailing single octet",
            upd(
                &[ORIGIN, &[0x40, 2, 7, 2, 1, 0, 0, 0xfd, 0xe9, 2], NEXT_HOP],
                NLRI,
            ),
            true,
            Withdraw,
        ),
        (
            "AS_PATH confederation segment",
            upd(
                &[ORIGIN, &[0x40, 2, 6, 3, 1, 0, 0, 0xfd, 0xe9], NEXT_HOP],
                NLRI,
            ),
            true,
            Withdraw,
        ),
        (
            "AS_PATH 2-octet ASNs on 4-octet session",
            upd(&[ORIGIN, &[0x40, 2, 4, 2, 1, 0xfd, 0xe9], NEXT_HOP], NLRI),
            true,
            Withdraw,
        ),
        (
            "AS_PATH optional flag",
            upd(
                &[ORIGIN, &[0xc0, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9], NEXT_HOP],
                NLRI,
            ),
            true,
            Withdraw,
        ),
        // --- NEXT_HOP, MED, LOCAL_PREF (§7.3-7.5)
        (
            "NEXT_HOP length 5",
            upd(&[ORIGIN, AS_PATH, &[0x40, 3, 5, 10, 0, 0, 1, 0]], NLRI),
            true,
            Withdraw,
        ),
        (
            "MED length 3",
            with(&[&[0x80, 4, 3, 0, 0, 1]]),
            true,
            Withdraw,
        ),
        (
            "MED transitive flag",
            with(&[&[0xc0, 4, 4, 0, 0, 0, 1]]),
            true,
            Withdraw,
        ),
        (
            "LOCAL_PREF length 2",
            with(&[&[0x40, 5, 2, 0, 1]]),
            true,
            Withdraw,
        ),
        // --- attribute discard (§7.6, §7.7)
        (
            "ATOMIC_AGGREGATE length 1",
            with(&[&[0x40, 6, 1, 0]]),
            true,
            Fine(|u| !u.attributes.atomic_aggregate),
        ),
        (
            "ATOMIC_AGGREGATE ok",
            with(&[&[0x40, 6, 0]]),
            true,
            Fine(|u| u.attributes.atomic_aggregate),
        ),
        (
            "AGGREGATOR length 7",
            with(&[&[0xc0, 7, 7, 0, 0, 0xfd, 0xe9, 10, 0, 0]]),
            true,
            Fine(|u| u.attributes.aggregator.is_none()),
        ),
        (
            "AGGREGATOR length 6 on 4-octet session",
            with(&[&[0xc0, 7, 6, 0xfd, 0xe9, 10, 0, 0, 1]]),
            true,
            Fine(|u| u.attributes.aggregator.is_none()),
        ),
        // --- communities (§7.8, RFC 8092 §6)
        (
            "COMMUNITIES length 6",
            with(&[&[0xc0, 8, 6, 0, 0, 0, 1, 0, 0]]),
            true,
            Withdraw,
        ),
        (
            "COMMUNITIES length 0",
            with(&[&[0xc0, 8, 0]]),
            true,
            Withdraw,
        ),
        (
            "LARGE_COMMUNITIES length 13",
            with(&[&[0xc0, 32, 13, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 9]]),
            true,
            Withdraw,
        ),
        // --- route reflection (§7.9, §7.10)
        (
            "ORIGINATOR_ID length 3",
            with(&[&[0x80, 9, 3, 1, 2, 3]]),
            true,
            Withdraw,
        ),
        (
            "CLUSTER_LIST length 6",
            with(&[&[0x80, 10, 6, 1, 2, 3, 4, 5, 6]]),
            true,
            Withdraw,
        ),
        // --- MP_REACH / MP_UNREACH (§7.11): reset with 3/9
        (
            "MP_REACH value too short",
            upd(&[ORIGIN, AS_PATH, &[0x80, 14, 3, 0, 2, 1]], &[]),
            true,
            Reset(3, 9),
        ),
        (
            "MP_REACH ipv6 next hop length 5",
            upd(
                &[
                    ORIGIN,
                    AS_PATH,
                    &[0x80, 14, 10, 0, 2, 1, 5, 1, 2, 3, 4, 5, 0],
                ],
                &[],
            ),
            true,
            Reset(3, 9),
        ),
        (
            "MP_REACH ipv4 next hop length 12",
            upd(
                &[
                    ORIGIN,
                    AS_PATH,
                    &[
                        0x80, 14, 17, 0, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                    ],
                ],
                &[],
            ),
            true,
            Reset(3, 9),
        ),
        (
            "MP_REACH next hop overruns",
            upd(&[ORIGIN, AS_PATH, &[0x80, 14, 6, 0, 2, 1, 16, 0, 0]], &[]),
            true,
            Reset(3, 9),
        ),
        (
            "MP_REACH bad prefix",
            upd(
                &[
                    ORIGIN,
                    AS_PATH,
                    &[0x80, 14, 11, 0, 1, 1, 4, 10, 0, 0, 1, 0, 33, 1],
                ],
                &[],
            ),
            true,
            Reset(3, 9),
        ),
        (
            "MP_REACH transitive flag",
            upd(
                &[ORIGIN, AS_PATH, &[0xc0, 14, 9, 0, 1, 1, 4, 10, 0, 0, 1, 0]],
                &[],
            ),
            true,
            Reset(3, 9),
        ),
        (
            "MP_UNREACH too short",
            upd(&[&[0x80, 15, 2, 0, 2]], &[]),
            true,
            Reset(3, 9),
        ),
        (
            "MP_UNREACH bad prefix",
            upd(&[&[0x80, 15, 5, 0, 2, 1, 129, 0]], &[]),
            true,
            Reset(3, 9),
        ),
        (
            "MP_REACH unknown family ignored",
            upd(
                &[
                    ORIGIN,
                    AS_PATH,
                    &[0x80, 14, 9, 0, 1, 128, 4, 10, 0, 0, 1, 0],
                ],
                &[],
            ),
            true,
            Fine(|u| u.mp_reach.is_none()),
        ),
        (
            "MP_UNREACH unknown family ignored",
            upd(&[&[0x80, 15, 3, 0, 25, 65]], &[]),
            true,
            Fine(|u| u.mp_unreach.is_none()),
        ),
        (
            "ipv4 MP_REACH with 32-octet next hop",
            upd(
                &[ORIGIN, AS_PATH, &{
                    let mut a = vec![0x80, 14, 39, 0, 1, 1, 32];
                    a.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
                    a.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
                    a.extend_from_slice(&[0, 8, 10]);
                    a
                }],
                &[],
            ),
            true,
            Fine(|u| {
                let r = u.mp_reach.as_ref().unwrap();
                r.family == Family::Ipv4Unicast
                    && r.next_hop.link_local.is_some()
                    && r.nlri.len() == 1
            }),
        ),
        (
            "MP_REACH link-local-only next hop",
            upd(
                &[
                    ORIGIN,
                    AS_PATH,
                    &[
                        0x80, 14, 21, 0, 2, 1, 16, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                        0, 7, 0,
                    ],
                ],
                &[],
            ),
            true,
            Fine(|u| {
                u.mp_reach.as_ref().unwrap().next_hop == NextHop::new("fe80::7".parse().unwrap())
            }),
        ),
        // --- duplicates (§3 g)
        (
            "duplicate MP_REACH",
            upd(&[MP_REACH6, ORIGIN, AS_PATH, MP_REACH6], &[]),
            true,
            Reset(3, 1),
        ),
        (
            "duplicate MP_UNREACH",
            upd(&[MP_UNREACH6, MP_UNREACH6], &[]),
            true,
            Reset(3, 1),
        ),
        (
            "duplicate ORIGIN keeps first",
            with(&[&[0x40, 1, 1, 2]]),
            true,
            Fine(|u| u.attributes.origin == Some(Origin::Igp)),
        ),
        (
            "duplicate unknown keeps first",
            with(&[&[0xc0, 99, 1, 1], &[0xc0, 99, 1, 2]]),
            true,
            Fine(|u| u.attributes.unknown.len() == 1 && u.attributes.unknown[0].value == [1]),
        ),
        // --- missing mandatory attributes (§3 d)
        (
            "missing ORIGIN",
            upd(&[AS_PATH, NEXT_HOP], NLRI),
            true,
            Withdraw,
        ),
        (
            "missing AS_PATH",
            upd(&[ORIGIN, NEXT_HOP], NLRI),
            true,
            Withdraw,
        ),
        (
            "missing NEXT_HOP with classic NLRI",
            upd(&[ORIGIN, AS_PATH], NLRI),
            true,
            Withdraw,
        ),
        (
            "missing AS_PATH with MP_REACH",
            upd(&[MP_REACH6, ORIGIN], &[]),
            true,
            Withdraw,
        ),
        (
            "no NEXT_HOP needed for MP_REACH only",
            upd(&[MP_REACH6, ORIGIN, AS_PATH], &[]),
            true,
            Fine(|u| u.mp_reach.as_ref().unwrap().nlri.len() == 1),
        ),
        (
            "attributes without NLRI",
            upd(&[&[0x80, 4, 4, 0, 0, 0, 1]], &[]),
            true,
            Fine(|u| u.attributes.med == Some(1)),
        ),
        (
            "treat-as-withdraw keeps MP_REACH prefixes",
            upd(&[MP_REACH6, ORIGIN, &[0x40, 2, 2, 2, 0]], &[]),
            true,
            Withdraw,
        ),
        // --- unrecognized attributes
        (
            "unrecognized well-known attribute",
            with(&[&[0x40, 99, 1, 0]]),
            true,
            Reset(3, 2),
        ),
        (
            "unknown optional non-transitive kept",
            with(&[&[0x80, 99, 1, 7]]),
            true,
            Fine(|u| {
                u.attributes.unknown
                    == [RawAttribute {
                        flags: 0x80,
                        type_code: 99,
                        value: vec![7],
                    }]
            }),
        ),
        // --- RFC 6793
        (
            "AS4_PATH discarded on 4-octet session",
            with(&[&[0xc0, 17, 6, 2, 1, 0, 0, 0, 1]]),
            true,
            Fine(|u| {
                u.attributes.unknown.is_empty()
                    && u.attributes.as_path == AsPath::from_sequence(vec![65001])
            }),
        ),
        (
            "malformed AS4_PATH discarded",
            upd(
                &[
                    ORIGIN,
                    &[0x40, 2, 4, 2, 1, 0x5b, 0xa0],
                    NEXT_HOP,
                    &[0xc0, 17, 3, 2, 1, 0],
                ],
                NLRI,
            ),
            false,
            Fine(|u| {
                u.attributes.as_path == AsPath::from_sequence(vec![23456])
                    && u.attributes.unknown.is_empty()
            }),
        ),
        (
            "AS4_PATH longer than AS_PATH ignored",
            upd(
                &[
                    ORIGIN,
                    &[0x40, 2, 4, 2, 1, 0x5b, 0xa0],
                    NEXT_HOP,
                    &[0xc0, 17, 10, 2, 2, 0, 0, 0, 1, 0, 0, 0, 2],
                ],
                NLRI,
            ),
            false,
            Fine(|u| u.attributes.as_path == AsPath::from_sequence(vec![23456])),
        ),
        (
            "AGGREGATOR not AS_TRANS: AS4_* ignored",
            upd(
                &[
                    ORIGIN,
                    &[0x40, 2, 4, 2, 1, 0x5b, 0xa0],
                    NEXT_HOP,
                    &[0xc0, 7, 6, 0xfd, 0xe9, 10, 0, 0, 1],
                    &[0xc0, 17, 6, 2, 1, 0xfa, 0x56, 0xea, 0x01],
                    &[0xc0, 18, 8, 0xfa, 0x56, 0xea, 0x01, 10, 0, 0, 2],
                ],
                NLRI,
            ),
            false,
            Fine(|u| {
                u.attributes.as_path == AsPath::from_sequence(vec![23456])
                    && u.attributes.aggregator.unwrap().asn == 65001
            }),
        ),
        (
            "AS4_AGGREGATOR without AGGREGATOR ignored",
            upd(
                &[
                    ORIGIN,
                    &[0x40, 2, 4, 2, 1, 0xfd, 0xe9],
                    NEXT_HOP,
                    &[0xc0, 18, 8, 0xfa, 0x56, 0xea, 0x01, 10, 0, 0, 2],
                ],
                NLRI,
            ),
            false,
            Fine(|u| u.attributes.aggregator.is_none() && u.attributes.unknown.is_empty()),
        ),
    ];
    let n = cases.len();
    for (name, bytes, four, want) in cases {
        // AS_PATH constant is 4-octet; on 2-octet rows the paths are inline.
        check(name, &bytes, four, want);
    }
    assert!(n >= 60, "{n}");
}

fn err_of(bytes: &[u8]) -> (u8, u8, Vec<u8>) {
    let e = decode_message(bytes, &SessionCodec::default()).unwrap_err();
    (e.code(), e.subcode(), e.0.data)
}

fn open_msg(version: u8, asn: u16, hold: u16, id: [u8; 4], params: &[u8]) -> Vec<u8> {
    let mut m = header(29 + params.len(), 1);
    m.push(version);
    m.extend_from_slice(&asn.to_be_bytes());
    m.extend_from_slice(&hold.to_be_bytes());
    m.extend_from_slice(&id);
    m.push(params.len() as u8);
    m.extend_from_slice(params);
    m
}

#[test]
fn header_and_open_errors() {
    let mut bad_marker = header(19, 4);
    bad_marker[3] = 0;
    assert_eq!(err_of(&bad_marker), (1, 1, vec![]));
    assert_eq!(err_of(&header(18, 4)), (1, 2, vec![0, 18]));
    assert_eq!(err_of(&header(4097, 2)), (1, 2, vec![0x10, 0x01]));
    assert_eq!(err_of(&header(19, 9)), (1, 3, vec![9]));
    let mut ka = header(20, 4);
    ka.push(0);
    assert_eq!(err_of(&ka), (1, 2, vec![0, 20]));
    assert_eq!(err_of(&header(22, 2)).1, 2);
    assert_eq!(err_of(&header(28, 1)).1, 2);
    assert_eq!(err_of(&header(20, 3)).1, 2);
    assert_eq!(err_of(&header(24, 5)).1, 2);

    let id = [10, 0, 0, 1];
    assert_eq!(err_of(&open_msg(3, 65001, 90, id, &[])), (2, 1, vec![0, 4]));
    assert_eq!(err_of(&open_msg(4, 65001, 1, id, &[])), (2, 6, vec![]));
    assert_eq!(err_of(&open_msg(4, 65001, 2, id, &[])).1, 6);
    assert_eq!(err_of(&open_msg(4, 65001, 90, [0; 4], &[])).1, 3);
    assert_eq!(err_of(&open_msg(4, 0, 90, id, &[])).1, 2);
    assert_eq!(err_of(&open_msg(4, 65001, 90, id, &[1, 1, 0])).1, 4);
    // capability overruns its parameter / parameter overruns the field
    assert_eq!(err_of(&open_msg(4, 65001, 90, id, &[2, 2, 65, 4])).1, 0);
    assert_eq!(err_of(&open_msg(4, 65001, 90, id, &[2, 9, 2, 0])).1, 0);
    // hold time 0 is fine
    let ok = open_msg(4, 65001, 0, id, &[2, 6, 65, 4, 0, 1, 0, 0]);
    let Some((Message::Open(o), _)) = decode_message(&ok, &SessionCodec::default()).unwrap() else {
        panic!()
    };
    assert_eq!((o.hold_time, o.asn), (0, 65536));
}

#[test]
fn rfc9072_extended_optional_parameters() {
    let id = [10, 0, 0, 1];
    // 255, 255, ext length 7, param type 2 with 2-octet length 4, RR + RR
    let m = open_msg(4, 65001, 90, id, &[255, 0, 7, 2, 0, 4, 2, 0, 2, 0]);
    let mut m = m;
    m[28] = 255; // Non-Ext OP Len
    let Some((Message::Open(o), _)) = decode_message(&m, &SessionCodec::default()).unwrap() else {
        panic!()
    };
    assert_eq!(
        o.capabilities,
        [Capability::RouteRefresh, Capability::RouteRefresh]
    );

    // Encoding more than 255 octets of capabilities uses RFC 9072.
    let o = Open {
        version: 4,
        asn: 65001,
        hold_time: 90,
        router_id: "10.0.0.1".parse().unwrap(),
        capabilities: (0..70)
            .map(|i| Capability::Unknown {
                code: 100,
                value: vec![i, i],
            })
            .collect(),
    };
    let mut out = Vec::new();
    encode_message(
        &Message::Open(o.clone()),
        &SessionCodec::default(),
        &mut out,
    );
    let (back, used) = decode_message(&out, &SessionCodec::default())
        .unwrap()
        .unwrap();
    assert_eq!(used, out.len());
    assert_eq!(back, Message::Open(o));
}

#[test]
fn framing() {
    let codec = SessionCodec::default();
    let mut ka = Vec::new();
    encode_message(&Message::Keepalive, &codec, &mut ka);
    assert_eq!(decode_message(&ka[..18], &codec), Ok(None));
    // Incomplete body
    let u = with(&[]);
    assert_eq!(
        decode_message(
            &u[..u.len() - 1],
            &SessionCodec {
                four_octet_as: true
            }
        ),
        Ok(None)
    );
    // A bad length is reported as soon as the header is there.
    assert!(decode_message(&header(5000, 2), &codec).is_err());

    // ROUTE-REFRESH for an unknown family, or a BoRR, is skipped.
    let mut rr = header(23, 5);
    rr.extend_from_slice(&[0, 1, 0, 128]);
    let mut borr = header(23, 5);
    borr.extend_from_slice(&[0, 1, 1, 1]);
    let mut buf = [rr.clone(), borr.clone(), ka.clone()].concat();
    assert_eq!(
        decode_message(&buf, &codec),
        Ok(Some((Message::Keepalive, buf.len())))
    );
    buf.truncate(46 + 10);
    assert_eq!(decode_message(&buf, &codec), Ok(None));
    assert_eq!(decode_message(&rr, &codec), Ok(None));
}

/// Attribute discard is never silent: each discarded attribute is reported
/// on the Update with its name and the reason (issue 12, "Nothing lost
/// silently"), and a well-formed UPDATE reports nothing.
#[test]
fn attribute_discards_are_reported() {
    let decode = |bytes: &[u8], four: bool| -> Update {
        let codec = SessionCodec {
            four_octet_as: four,
        };
        match decode_message(bytes, &codec) {
            Ok(Some((Message::Update(u), _))) => u,
            other => panic!("unexpected {other:?}"),
        }
    };
    let cases: Vec<(&str, Vec<u8>, bool, &str)> = vec![
        (
            "ATOMIC_AGGREGATE length 1",
            with(&[&[0x40, 6, 1, 0]]),
            true,
            "ATOMIC_AGGREGATE",
        ),
        (
            "AGGREGATOR length 7",
            with(&[&[0xc0, 7, 7, 0, 0, 0xfd, 0xe9, 10, 0, 0]]),
            true,
            "AGGREGATOR",
        ),
        (
            "duplicate ORIGIN",
            with(&[&[0x40, 1, 1, 2]]),
            true,
            "ORIGIN: repeated",
        ),
        (
            "malformed AS4_PATH",
            upd(
                &[
                    ORIGIN,
                    &[0x40, 2, 4, 2, 1, 0x5b, 0xa0],
                    NEXT_HOP,
                    &[0xc0, 17, 3, 2, 1, 0],
                ],
                NLRI,
            ),
            false,
            "AS4_PATH",
        ),
        (
            "MP_REACH of an unsupported AFI/SAFI",
            // AFI 1 SAFI 128 (L3VPN), next hop length 0, reserved, no NLRI.
            with(&[&[0x80, 14, 5, 0, 1, 128, 0, 0]]),
            true,
            "AFI/SAFI 1/128",
        ),
    ];
    for (name, bytes, four, want) in cases {
        let u = decode(&bytes, four);
        assert_eq!(u.treat_as_withdraw, None, "{name}");
        assert_eq!(u.attribute_discards.len(), 1, "{name}: {u:?}");
        assert!(
            u.attribute_discards[0].contains(want),
            "{name}: {:?}",
            u.attribute_discards
        );
        assert!(!u.nlri.is_empty(), "{name}: the routes stand");
    }
    let fine = decode(&with(&[&[0x40, 6, 0]]), true);
    assert!(fine.attribute_discards.is_empty(), "{fine:?}");
}
