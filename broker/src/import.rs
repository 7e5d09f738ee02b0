//! `broker import`: another tool's configuration turned into the broker's TOML. The conversion
//! itself is the config crate's (pure, tested there); this reads the input and prints.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::Import;

pub fn run(what: Import) -> anyhow::Result<ExitCode> {
    match what {
        Import::AwsFilters { file } => {
            let stdin = file.as_os_str() == "-";
            let origin = if stdin {
                "standard input".to_owned()
            } else {
                file.display().to_string()
            };
            let json = if stdin {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("reading standard input")?;
                text
            } else {
                std::fs::read_to_string(&file).with_context(|| format!("reading {origin}"))?
            };
            let imported = config::aws_import::aws_filters_to_toml(&json)
                .with_context(|| format!("{origin}: not imported"))?;
            print!("{}", imported.toml);
            eprintln!(
                "imported {} filter(s) with {} rule(s) from {origin}. Name a filter in a \
                 [[session]] (filter = \"{}\"), and list the mirrored ENI's addresses in its \
                 source_ips: the rules' directions match only packets to or from them.",
                imported.filters.len(),
                imported.rules,
                imported.filters.first().map_or("…", String::as_str),
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
