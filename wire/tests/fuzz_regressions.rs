//! The `decode` fuzz target run as a plain test on its checked-in inputs:
//! the corpus (`fuzz/corpus/decode/`) and every input that once crashed
//! (`fuzz/regressions/decode/`, none so far), so `cargo test` keeps each
//! property of the target (fuzz/README.md) without the fuzzer. The target's
//! body is included from the fuzz crate rather than copied.

#[path = "../../fuzz/src/roundtrip.rs"]
mod roundtrip;

#[path = "../../fuzz/src/decode.rs"]
mod decode;

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
fn decode_target_holds_on_its_corpus() {
    let corpus = inputs("corpus/decode");
    assert!(
        corpus.len() > 50,
        "fuzz/corpus/decode has {} inputs",
        corpus.len()
    );
    for (path, data) in corpus.iter().chain(&inputs("regressions/decode")) {
        let run = std::panic::catch_unwind(|| decode::run(data));
        assert!(run.is_ok(), "{} fails the decode target", path.display());
    }
}
