//! Raw bytes, cut into packets (see pipelines::fuzzing), through the whole burst pipeline.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pipelines::fuzzing::burst(data));
