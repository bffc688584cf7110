//! `server::fuzzing::vendor_catalog`; see there.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| server::fuzzing::vendor_catalog(bytes));
