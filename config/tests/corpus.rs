//! The `config` fuzz target's seed corpus (`fuzz/corpus/config/`, every file) replayed through the
//! parser on stable: never a panic; an accepted config describes itself and parses the same way
//! twice; a refused one names at least one problem, each rendered with its place in the file.
//! (The whole target, plan compilation included, is `pipelines::fuzzing::config`, replayed by
//! `pipelines/tests/corpus.rs`.)

use std::path::{Path, PathBuf};

fn seeds() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/config");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_config_seed_parses_or_is_refused_with_a_reason() {
    let files = seeds();
    assert!(files.len() >= 5, "{files:?}");
    let (mut accepted, mut refused) = (0, 0);
    for path in files {
        let bytes = std::fs::read(&path).expect("read seed");
        // The fuzz target skips input that is not UTF-8, as the config file reader refuses it.
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        let outcome = std::panic::catch_unwind(|| match config::parse(text, None) {
            Ok(parsed) => {
                assert!(!parsed.describe().is_empty());
                assert_eq!(
                    config::parse(text, None).ok(),
                    Some(parsed),
                    "parsing is deterministic"
                );
                true
            }
            Err(error) => {
                assert!(!error.diagnostics().is_empty());
                let lines = text.lines().count().max(1);
                for d in error.diagnostics() {
                    assert!(
                        d.line().is_none_or(|l| (1..=lines + 1).contains(&l)),
                        "line {:?} of {lines}",
                        d.line()
                    );
                    assert!(!d.message().is_empty());
                }
                assert!(!error.detailed().to_string().is_empty());
                false
            }
        });
        match outcome {
            Ok(true) => accepted += 1,
            Ok(false) => refused += 1,
            Err(_) => panic!("the config parser panics on {}", path.display()),
        }
    }
    assert!(
        accepted >= 4 && refused >= 3,
        "seeds cover both paths: {accepted} accepted, {refused} refused"
    );
}
