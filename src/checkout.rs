//! Checkout of the new code: a local `git clone --shared` of the application repository at the
//! revision, into `app.checkout_dir`, marked as rehearse's own so a later run may replace it.
//!
//! Never touches the application repository beyond reading it, and never deletes a folder it did
//! not create.

use crate::config::App;
use crate::exit::{Refused, UsageError};
use crate::process;
use anyhow::Context;
use duct::cmd;
use std::path::Path;

const MARKER: &str = "rehearse-checkout";

pub struct Checkout {
    pub commit: String,
}

pub fn checkout(app: &App) -> anyhow::Result<Checkout> {
    if !app.repo.exists() {
        return Err(UsageError(format!(
            "app.repo {} does not exist: point it at the application's git repository",
            app.repo.display()
        ))
        .into());
    }
    let git = |args: &[&str]| cmd("git", args).env("GIT_TERMINAL_PROMPT", "0");
    process::run(git(&["-C", &app.repo.to_string_lossy(), "rev-parse", "--git-dir"]), "git").map_err(|e| {
        let why = format!("{e:#}");
        if why.contains("dubious ownership") {
            // git refuses a repository owned by another user (e.g. when run as postgres).
            UsageError(format!(
                "git refuses app.repo {} because another user owns it: run `git config --system --add safe.directory {}` (and the same for its .git)",
                app.repo.display(),
                app.repo.display()
            ))
        } else {
            UsageError(format!(
                "app.repo {} is not a git repository: point it at the application's git checkout",
                app.repo.display()
            ))
        }
    })?;
    let spec = format!("{}^{{commit}}", app.revision);
    let commit = process::run(
        git(&["-C", &app.repo.to_string_lossy(), "rev-parse", "--verify", "--quiet", &spec]),
        "git rev-parse",
    )
    .map_err(|_| {
        UsageError(format!(
            "app.revision {:?} is not a commit, tag or branch in {}: check the name (git tag, git branch -a)",
            app.revision,
            app.repo.display()
        ))
    })?
    .trim()
    .to_string();
    let dir = &app.checkout_dir;
    prepare_dir(dir)?;
    let dir_s = dir.to_string_lossy().into_owned();
    process::run(
        git(&["clone", "--quiet", "--shared", "--no-checkout", &app.repo.to_string_lossy(), &dir_s]),
        "git clone",
    )?;
    std::fs::write(dir.join(".git").join(MARKER), format!("{commit}\n"))?;
    process::run(
        git(&["-C", &dir_s, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", &commit]),
        "git checkout",
    )
    .with_context(|| format!("cannot check out {} into {}", app.revision, dir.display()))?;
    Ok(Checkout { commit })
}

/// Make sure `dir` can be (re)used: absent, empty, or an earlier checkout of ours.
fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)?;
        }
        return Ok(());
    }
    if dir.join(".git").join(MARKER).exists() {
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("cannot remove the earlier checkout {}", dir.display()))?;
        return Ok(());
    }
    let empty = std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(false);
    if empty {
        std::fs::remove_dir(dir)?;
        return Ok(());
    }
    Err(Refused(format!(
        "app.checkout_dir {} exists and was not made by rehearse: choose another folder or remove it yourself",
        dir.display()
    ))
    .into())
}
