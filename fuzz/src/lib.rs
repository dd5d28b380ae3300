//! The fuzz targets' bodies, kept out of `fuzz_targets/` so that they are
//! plain functions of a byte slice: `fuzz_targets/*.rs` only hand them
//! libFuzzer's input. See README.md for the engine and the input formats.

pub mod decode;
pub mod replay;
pub mod roundtrip;
pub mod update_rib;
