//! libFuzzer entry point for target `decode`; the body and the input format
//! are in src/decode.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kroute_fuzz::decode::run(data));
