//! `server::fuzzing::ledger_row`; see there.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| server::fuzzing::ledger_row(bytes));
