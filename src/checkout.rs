//! Checkout of the new code: a local `git clone --shared` of the application repository at the
//! revision, into `app.checkout_dir`, marked as rehearse's own so a later run may replace it.
//!
//! Never touches the application repository beyond reading it, and never deletes a folder it did
//! not create. The clone cannot hold its marker before it exists, so the folder is named in the
//! workdir's intent ledger (`crate::marks`) first: a kill -9 during the clone leaves a folder that
//! the next run knows as its own.

use crate::config::App;
use crate::exit::{Refused, UsageError};
use crate::fsutil;
use crate::{marks, process};
use anyhow::Context;
use duct::cmd;
use std::path::Path;

const MARKER: &str = "rehearse-checkout";

pub struct Checkout {
    pub commit: String,
}

pub fn checkout(app: &App, workdir: &Path) -> anyhow::Result<Checkout> {
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
    let key = ledger_key(dir);
    prepare_dir(dir, marks::pending(workdir, &key))?;
    let dir_s = dir.to_string_lossy().into_owned();
    let intent = marks::intend(workdir, &key)?;
    if let Err(e) = process::run(
        git(&["clone", "--quiet", "--shared", "--no-checkout", &app.repo.to_string_lossy(), &dir_s]),
        "git clone",
    ) {
        // git removes what it made when it fails: nothing of ours is left under that name.
        if !dir.exists() {
            intent.abandon();
        }
        return Err(e);
    }
    fsutil::write_private(&dir.join(".git").join(MARKER), format!("{commit}\n").as_bytes())?;
    intent.done()?;
    process::run(
        git(&["-C", &dir_s, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", &commit]),
        "git checkout",
    )
    .with_context(|| format!("cannot check out {} into {}", app.revision, dir.display()))?;
    Ok(Checkout { commit })
}

/// The checkout folder's name in the intent ledger.
fn ledger_key(dir: &Path) -> String {
    format!("checkout {}", dir.display())
}

/// Make sure `dir` can be (re)used: absent, empty, an earlier checkout of ours, or (`pending`:
/// the ledger names it) a clone a killed run left before it could mark it, which holds nothing
/// but its `.git`.
fn prepare_dir(dir: &Path, pending: bool) -> anyhow::Result<()> {
    let trash = trash_of(dir);
    if trash.exists() {
        // A removal that was cut short (see below): the name is ours by construction.
        fs_err::remove_dir_all(&trash).with_context(|| format!("cannot remove {}", trash.display()))?;
    }
    if !dir.exists() {
        if let Some(parent) = dir.parent() {
            fsutil::private_dir(parent)?;
        }
        return Ok(());
    }
    let ours = dir.join(".git").join(MARKER).exists() || (pending && only_git(dir));
    if ours {
        // Renamed away first, then removed: a kill during the removal never leaves a half-removed
        // folder without its marker under the checkout's name.
        fs_err::rename(dir, &trash).with_context(|| format!("cannot remove the earlier checkout {}", dir.display()))?;
        fs_err::remove_dir_all(&trash)
            .with_context(|| format!("cannot remove the earlier checkout {}", dir.display()))?;
        return Ok(());
    }
    let empty = fs_err::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(false);
    if empty {
        fs_err::remove_dir(dir)?;
        return Ok(());
    }
    Err(Refused(format!(
        "app.checkout_dir {} exists and was not made by rehearse: choose another folder or remove it yourself",
        dir.display()
    ))
    .into())
}

/// `<parent>/.<name>.rehearse-old`: where an earlier checkout goes while it is removed.
fn trash_of(dir: &Path) -> std::path::PathBuf {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dir.with_file_name(format!(".{name}.rehearse-old"))
}

/// Whether the folder holds nothing but a `.git` folder (a clone made with --no-checkout).
fn only_git(dir: &Path) -> bool {
    fs_err::read_dir(dir)
        .is_ok_and(|entries| entries.filter_map(Result::ok).all(|e| e.file_name() == ".git" && e.path().is_dir()))
}
