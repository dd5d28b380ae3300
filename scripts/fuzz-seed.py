#!/usr/bin/env python3
"""Writes seed inputs for the fuzz targets (fuzz/README.md) from the golden
captures: the real BIRD, FRR and GoBGP messages in wire/tests/recorded/*.rec
and the single messages in wire/tests/golden/*.hex.

    scripts/fuzz-seed.py OUT_DIR     # writes OUT_DIR/decode, OUT_DIR/update_rib

scripts/fuzz.sh --merge folds these into the checked-in corpus
(fuzz/corpus/TARGET, minimized by libFuzzer's -set_cover_merge=1).
"""
import hashlib
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FOUR_OCTET_AS_CAP = 65
MSG_UPDATE = 2


def recorded_sessions():
    """{(file, session): [message bytes]} in capture order."""
    sessions = {}
    for rec in sorted((ROOT / "wire/tests/recorded").glob("*.rec")):
        for line in rec.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            session, hexdata = line.split(" ", 1)
            sessions.setdefault((rec.stem, session), []).append(bytes.fromhex(hexdata))
    return sessions


def four_octet(open_msg):
    """True if an OPEN carries the 4-octet AS capability (RFC 6793)."""
    params = open_msg[29:]
    i = 0
    while i + 2 <= len(params):
        ptype, plen = params[i], params[i + 1]
        value = params[i + 2 : i + 2 + plen]
        j = 0
        while ptype == 2 and j + 2 <= len(value):
            if value[j] == FOUR_OCTET_AS_CAP:
                return True
            j += 2 + value[j + 1]
        i += 2 + plen
    return False


def write(out, data):
    out.mkdir(parents=True, exist_ok=True)
    (out / hashlib.sha1(data).hexdigest()).write_bytes(data)


def main():
    out = pathlib.Path(sys.argv[1])
    sessions = recorded_sessions()
    streams = []
    for (name, session), msgs in sessions.items():
        as4 = four_octet(msgs[0]) if msgs[0][18] == 1 else True
        settings = 1 if as4 else 0
        # decode: the whole stream, and each message alone.
        write(out / "decode", bytes([settings]) + b"".join(msgs))
        for m in msgs:
            write(out / "decode", bytes([settings]) + m)
        updates = [m for m in msgs if m[18] == MSG_UPDATE]
        streams.append((name, session, as4, updates))
    for hexfile in sorted((ROOT / "wire/tests/golden").glob("*.hex")):
        lines = (l.split("#", 1)[0] for l in hexfile.read_text().splitlines())
        m = bytes.fromhex("".join("".join(lines).split()))
        for settings in (0, 1):
            write(out / "decode", bytes([settings]) + m)

    # update_rib: each session's UPDATEs from peer 1; then two sessions at
    # once, interleaved, from peers 1 and 2 with ECMP (settings bit 4).
    for name, session, as4, updates in streams:
        settings = (3 if as4 else 0) | (0x08 if "v6" in session else 0)
        write(out / "update_rib", bytes([settings]) + b"".join(b"\x00" + u for u in updates))
    for (_, s1, a1, u1), (_, s2, a2, u2) in zip(streams, streams[1:] + streams[:1]):
        settings = (1 if a1 else 0) | (2 if a2 else 0) | 0x10
        events = b""
        for k in range(max(len(u1), len(u2))):
            if k < len(u1):
                events += b"\x00" + u1[k]
            if k < len(u2):
                events += b"\x01" + u2[k]
        # ... then a next-hop change and a flap of peer 2.
        events += b"\x0a\x00\x01" + b"\x0d"
        write(out / "update_rib", bytes([settings]) + events)


if __name__ == "__main__":
    main()
