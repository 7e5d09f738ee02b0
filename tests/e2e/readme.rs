//! The README shows what the lab prints: its sample summary is compared, line for line, with what
//! `broker run` prints on `config/lab.toml` (outputs moved to a scratch directory, the endpoint
//! off so that a busy port 9477 cannot get in the way).

use std::time::Duration;

use crate::support::*;

/// The first ```text block after `marker` in the README.
fn readme_block_after(marker: &str) -> String {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let at = readme.find(marker).expect("the marker is in the README");
    let rest = &readme[at..];
    let start = rest
        .find("```text\n")
        .expect("a text block after the marker")
        + 8;
    let end = rest[start..].find("```").expect("the block ends") + start;
    rest[start..end].to_owned()
}

#[test]
fn the_readme_lab_summary_is_what_broker_run_prints() {
    let s = Scratch::new("readme-lab");
    let lab = std::fs::read_to_string(repo_root().join("config/lab.toml")).expect("lab.toml");
    let root = repo_root();
    let config = lab
        .replace("samples/", &format!("{}/samples/", root.display()))
        .replace("out/", &format!("{}/", s.dir.display()))
        .replace("metrics = \"127.0.0.1:9477\"", "metrics = \"\"");
    let config = s.write("lab.toml", &config);
    let run = run_broker(&config, &s.dir, Duration::from_secs(60));
    run.assert_clean();
    let shown = readme_block_after("The summary `broker run`\nprints as it stops:");
    assert_eq!(
        run.stdout, shown,
        "README's lab summary differs from what the lab prints"
    );
}
