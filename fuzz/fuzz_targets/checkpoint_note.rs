#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| provledger::fuzz::checkpoint_note(data));
