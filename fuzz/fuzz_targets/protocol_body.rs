//! `server::fuzzing::protocol_body`; see there.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| server::fuzzing::protocol_body(bytes));
