//! Build script: the git revision the broker is built from, as `BROKER_REVISION`.
//!
//! `broker --version`, `/status` (`revision`) and the `revision` label of `broker_build_info`
//! say which commit runs, which the version number alone cannot between two releases. The
//! revision is `git rev-parse --short HEAD` of the source tree; `BROKER_REVISION` set in the
//! environment wins (a build from a source tarball, which has no `.git`, can pass it); without
//! either it is `unknown`. The script is rerun when HEAD moves (a commit, a checkout), not on
//! every build.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (output.status.success() && !text.is_empty()).then(|| text.to_owned())
}

/// The files whose change means HEAD moved: HEAD itself, the branch it points to, and the
/// packed refs (a worktree has its own HEAD; branches live in the common directory).
fn head_files() -> Vec<PathBuf> {
    let absolute = |dir: String| {
        let dir = PathBuf::from(dir);
        if dir.is_absolute() {
            dir
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)
        }
    };
    let (Some(git_dir), Some(common_dir)) = (
        git(&["rev-parse", "--git-dir"]).map(absolute),
        git(&["rev-parse", "--git-common-dir"]).map(absolute),
    ) else {
        return Vec::new();
    };
    let mut files = vec![git_dir.join("HEAD"), common_dir.join("packed-refs")];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        files.push(common_dir.join(branch));
    }
    // Cargo reruns the script on every build for a path that does not exist.
    files.retain(|file| file.exists());
    files
}

fn main() {
    println!("cargo:rerun-if-env-changed=BROKER_REVISION");
    let revision = match std::env::var("BROKER_REVISION") {
        Ok(revision) if !revision.is_empty() => revision,
        _ => {
            for file in head_files() {
                println!("cargo:rerun-if-changed={}", file.display());
            }
            git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".to_owned())
        }
    };
    println!("cargo:rustc-env=BROKER_REVISION={revision}");
}
