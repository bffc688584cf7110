//! `server::fuzzing::activation_request`; see there.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| server::fuzzing::activation_request(bytes));
