//! The `update_rib` fuzz target run as a plain test on its checked-in
//! inputs: the corpus (`fuzz/corpus/update_rib/`) and every input that once
//! crashed (`fuzz/regressions/update_rib/`, none so far), so `cargo test`
//! keeps each property of the target (fuzz/README.md: UPDATEs from two
//! peers through import, decision and export, every table, the FIB and
//! each peer's view consistent, and empty once everything is withdrawn)
//! without the fuzzer. The target's body is included from the fuzz crate
//! rather than copied.

#[path = "../../fuzz/src/roundtrip.rs"]
mod roundtrip;

#[path = "../../fuzz/src/update_rib.rs"]
mod update_rib;

#[path = "../../fuzz/src/replay.rs"]
mod replay;

#[test]
fn update_rib_target_holds_on_its_corpus() {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    replay::replay(&fuzz, "update_rib", update_rib::run);
}
