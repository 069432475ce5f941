//! The workdir: where dumps of live, the SQLite test copy, reports, scripts and records go, so it
//! must be private (0700) and must not be a place where those files would leak.
//!
//! Rules (docs/config.md): a workdir that does not exist is created 0700 and marked as
//! rehearse's (`.rehearse-workdir` inside), under a temporary name renamed into place, so it never
//! exists unmarked. An existing folder is used only when it is rehearse's (marked) or already
//! private to this user (owned by them, no group or other permission); any other existing folder
//! (a shared 1777 folder, a 0755 one) is refused: rehearse never changes the mode of a folder it
//! did not create. A workdir inside the application repository (dumps of live would land in its
//! working tree), live's own folder or any folder that contains a SQLite live file is refused.

use crate::config::Resolved;
use crate::exit::UsageError;
use crate::{fsutil, marks};
use anyhow::Context;
use std::path::{Path, PathBuf};

/// The marker of a workdir rehearse created.
pub const MARKER: &str = ".rehearse-workdir";

/// Make sure the workdir can be used, creating it when it does not exist (see the module's rules).
pub fn prepare(cfg: &Resolved) -> anyhow::Result<()> {
    let dir = &cfg.workdir;
    let real = real_path(dir);
    if let Some(app) = &cfg.app {
        let repo = fs_err::canonicalize(&app.repo).unwrap_or_else(|_| app.repo.clone());
        if real.starts_with(&repo) {
            return Err(UsageError(format!(
                "workdir {} is inside the application repository {}: dumps of live would land in its working tree; set workdir to a folder outside it",
                dir.display(),
                app.repo.display()
            ))
            .into());
        }
    }
    if let Some(live) = crate::dburl::DbUrl::sqlite(&cfg.live_url) {
        let live = fs_err::canonicalize(&live).unwrap_or(live);
        if live.starts_with(&real) {
            let what = if live.parent() == Some(real.as_path()) { "is live's own folder" } else { "contains live" };
            return Err(UsageError(format!(
                "workdir {} {what} ({}): rehearse writes test copies and backups there; set workdir to a folder of its own",
                dir.display(),
                live.display()
            ))
            .into());
        }
    }
    match fs_err::metadata(dir) {
        Ok(m) if m.is_dir() => use_existing(dir, &m),
        Ok(_) => Err(anyhow::anyhow!("cannot use workdir {}: it exists and is not a folder", dir.display())),
        Err(_) => create(dir),
    }
}

fn use_existing(dir: &Path, meta: &std::fs::Metadata) -> anyhow::Result<()> {
    if dir.join(MARKER).is_file() {
        // Rehearse made it: keep it private.
        return fsutil::make_private_dir(dir);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let mode = meta.permissions().mode() & 0o7777;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me || mode & 0o077 != 0 {
            let whose = if meta.uid() != me { format!(", owned by uid {}", meta.uid()) } else { String::new() };
            return Err(UsageError(format!(
                "workdir {} exists, was not made by rehearse and is open to others (mode {mode:04o}{whose}): rehearse never changes the mode of a folder it did not create; set workdir to a folder that does not exist yet (rehearse makes it 0700)",
                dir.display()
            ))
            .into());
        }
    }
    let _ = meta;
    Ok(())
}

/// Create the workdir 0700 with its marker, under a temporary name renamed into place.
fn create(dir: &Path) -> anyhow::Result<()> {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "workdir".into());
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let context = || format!("cannot create workdir {}: check the path and its permissions", dir.display());
    fsutil::private_dir(parent).with_context(context)?;
    let tmp = parent.join(format!(".{name}.rehearse-new-{}", std::process::id()));
    if tmp.exists() {
        fs_err::remove_dir_all(&tmp).with_context(context)?;
    }
    fsutil::private_dir(&tmp).with_context(context)?;
    let made = (|| {
        fsutil::write_private(&tmp.join(MARKER), b"made by rehearse: its workdir (0700)\n")?;
        fs_err::rename(&tmp, dir)?;
        marks::sync_dir(parent)
    })();
    if let Err(e) = made {
        let _ = fs_err::remove_dir_all(&tmp);
        if dir.is_dir() {
            // Another run made it meanwhile: judge it like any existing folder.
            let m = fs_err::metadata(dir)?;
            return use_existing(dir, &m);
        }
        return Err(e).with_context(context);
    }
    Ok(())
}

/// `dir` with symlinks resolved as far as it exists (the rest appended as given).
fn real_path(dir: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut at = dir;
    loop {
        if let Ok(real) = fs_err::canonicalize(at) {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (at.file_name(), at.parent()) {
            (Some(n), Some(p)) => {
                rest.push(n.to_owned());
                at = p;
            }
            _ => return dir.to_path_buf(),
        }
    }
}
