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

use std::path::PathBuf;

/// The files of `fuzz/DIR`, sorted; none if it does not exist.
fn inputs(dir: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(dir);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn update_rib_target_holds_on_its_corpus() {
    let corpus = inputs("corpus/update_rib");
    assert!(
        corpus.len() > 50,
        "fuzz/corpus/update_rib has {} inputs",
        corpus.len()
    );
    for (path, data) in corpus.iter().chain(&inputs("regressions/update_rib")) {
        let run = std::panic::catch_unwind(|| update_rib::run(data));
        assert!(
            run.is_ok(),
            "{} fails the update_rib target",
            path.display()
        );
    }
}
