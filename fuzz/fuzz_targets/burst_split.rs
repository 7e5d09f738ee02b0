//! The same packets in three burst splits give the same outcomes and copies.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pipelines::fuzzing::burst_split(data));
