//! A target replayed as a plain `#[test]` on its checked-in inputs: the
//! corpus (`fuzz/corpus/TARGET/`) and every input that once crashed
//! (`fuzz/regressions/TARGET/`), so `cargo test` keeps each property of the
//! target without the fuzzer. Included by `wire/tests/fuzz_regressions.rs`
//! and `rib/tests/fuzz_regressions.rs`.

use std::path::{Path, PathBuf};

/// The files of `dir`, sorted; none if it does not exist.
fn inputs(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
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

/// Runs `target` on every input of `fuzz_dir/{corpus,regressions}/name`;
/// panics naming the first input that fails. A corpus of 50 inputs or
/// fewer means it was lost, not minimized.
pub fn replay(fuzz_dir: &Path, name: &str, target: impl Fn(&[u8])) {
    let corpus = inputs(&fuzz_dir.join("corpus").join(name));
    assert!(
        corpus.len() > 50,
        "fuzz/corpus/{name} has {} inputs",
        corpus.len()
    );
    let regressions = inputs(&fuzz_dir.join("regressions").join(name));
    for (path, data) in corpus.iter().chain(&regressions) {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target(data)));
        assert!(run.is_ok(), "{} fails the {name} target", path.display());
    }
}
