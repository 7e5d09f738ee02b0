//! `broker generate completions|man DIR`: shell completions and man pages made from the clap
//! definition in `cli.rs`, so the command line has one source. Hidden from `--help`: it is a
//! packaging step (`scripts/package.sh`), not something an operator runs.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, Generated};

/// The shells the Debian package installs completions for, and the file each one reads.
const SHELLS: [(Shell, &str); 3] = [
    (Shell::Bash, "broker.bash"),
    (Shell::Zsh, "_broker"),
    (Shell::Fish, "broker.fish"),
];

pub fn run(what: Generated, dir: &Path) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    match what {
        Generated::Completions => {
            for (shell, name) in SHELLS {
                let path = clap_complete::generate_to(shell, &mut Cli::command(), "broker", dir)
                    .with_context(|| {
                        format!("writing {shell} completions into {}", dir.display())
                    })?;
                // clap_complete names the files itself; the check keeps SHELLS honest.
                anyhow::ensure!(
                    path.file_name().is_some_and(|n| n == name),
                    "{shell} completions written as {}, expected {name}",
                    path.display()
                );
            }
        }
        Generated::Man => {
            // One page for `broker` and one per visible subcommand (`broker-run.1`, …).
            clap_mangen::generate_to(Cli::command(), dir)
                .with_context(|| format!("writing man pages into {}", dir.display()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
