//! Arbitrary text through the config parser, and the plan of what it accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pipelines::fuzzing::config(data));
