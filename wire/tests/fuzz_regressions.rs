//! The `decode` fuzz target run as a plain test on its checked-in inputs:
//! the corpus (`fuzz/corpus/decode/`) and every input that once crashed
//! (`fuzz/regressions/decode/`, none so far), so `cargo test` keeps each
//! property of the target (fuzz/README.md) without the fuzzer. The target's
//! body is included from the fuzz crate rather than copied.

#[path = "../../fuzz/src/roundtrip.rs"]
mod roundtrip;

#[path = "../../fuzz/src/decode.rs"]
mod decode;

#[path = "../../fuzz/src/replay.rs"]
mod replay;

#[test]
fn decode_target_holds_on_its_corpus() {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    replay::replay(&fuzz, "decode", decode::run);
}
