#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| provledger::fuzz::digest(data));
