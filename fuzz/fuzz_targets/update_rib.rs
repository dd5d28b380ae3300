//! libFuzzer entry point for target `update_rib`; the body and the input format
//! are in src/update_rib.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kroute_fuzz::update_rib::run(data));
