//! `server::fuzzing::license_file`; see there.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| server::fuzzing::license_file(bytes));
