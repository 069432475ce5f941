//! Marks first: how rehearse knows an object is its own even when it was killed half-way through
//! making it.
//!
//! Every object rehearse makes carries its own mark once made (the checkout's `.git` marker file, a
//! PostgreSQL database comment, MySQL's `rehearse_meta.copies` row, the SQLite test copy's marker
//! file), and an object without one is someone's: refused and left alone. But some objects cannot
//! be made and marked in one step (PostgreSQL's `CREATE DATABASE` cannot run in a transaction with
//! its `COMMENT`; `git clone` must finish before its `.git` can hold a marker), so a kill -9 in
//! between would leave an unmarked object of rehearse's own that every later run refuses.
//!
//! The intent ledger closes that window: before such an object is created, its name (engine, host
//! and name, or path) is written to `<workdir>/.rehearse-intents/` and fsynced; once the object
//! carries its mark, the entry is removed. An unmarked object whose entry is still pending was
//! made by the run that wrote it; the engine adopts it (marks it) only when it also looks as a
//! half-made object looks (an empty database, a folder holding only `.git`), and replaces it.
//! Without an entry nothing changes: the object is refused exactly as before.
//!
//! Also here: the refusal of a live.url that names an object rehearse made (its own test copy).

use crate::config::Resolved;
use crate::engine::{self, Access};
use crate::{exit, fsutil};
use anyhow::Context;
use std::path::{Path, PathBuf};

const LEDGER: &str = ".rehearse-intents";

/// A pending entry: the object may exist unmarked until `done`.
#[must_use = "call done() once the object carries its mark, or abandon() when it was not created"]
pub struct Intent {
    path: PathBuf,
}

fn entry_path(workdir: &Path, key: &str) -> PathBuf {
    let hash = crate::schema::sha256_hex(key.as_bytes());
    workdir.join(LEDGER).join(format!("{}.intent", &hash[..16]))
}

/// Record (durably) that rehearse is about to create the object `key`, before it does.
pub fn intend(workdir: &Path, key: &str) -> anyhow::Result<Intent> {
    let path = entry_path(workdir, key);
    let dir = path.parent().expect("an entry is inside the ledger folder");
    fsutil::private_dir(dir)?;
    fsutil::write_private(&path, format!("{key}\n").as_bytes())
        .with_context(|| format!("cannot record what rehearse is about to create in {}", dir.display()))?;
    sync_dir(dir)?;
    Ok(Intent { path })
}

/// Whether `key` has a pending entry: an unmarked object of that name was made by rehearse.
pub fn pending(workdir: &Path, key: &str) -> bool {
    fs_err::read_to_string(entry_path(workdir, key)).is_ok_and(|t| t.trim_end() == key)
}

impl Intent {
    /// The object carries its own mark now: the entry is no longer needed.
    pub fn done(self) -> anyhow::Result<()> {
        self.remove()
    }

    /// The object was not created (its creation failed): the entry must not vouch for an object
    /// of that name that someone else may make later.
    pub fn abandon(self) {
        let _ = self.remove();
    }

    fn remove(&self) -> anyhow::Result<()> {
        match fs_err::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", self.path.display())),
        }
        if let Some(dir) = self.path.parent() {
            sync_dir(dir)?;
        }
        Ok(())
    }
}

/// Make a rename or removal in `dir` durable.
pub fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync folder {}", dir.display()))?;
    let _ = dir;
    Ok(())
}

/// At the start of every command that uses live: refuse (exit 2) a live.url that names a
/// database or file rehearse made itself (a test copy `<db>upgradetest` or a scratch database,
/// recognised by rehearse's own mark, not by its name). A database merely named like one is
/// someone's and is accepted. When live cannot be reached, the command's own connection reports
/// that, so this check says nothing.
pub fn refuse_own_object_as_live(cfg: &Resolved) -> anyhow::Result<()> {
    let Ok(live) = engine::from_url(&cfg.live_url, Access::ReadOnly) else { return Ok(()) };
    if let Ok(Some(what)) = live.made_by_rehearse() {
        return Err(exit::UsageError(format!(
            "live.url names {}, which is {what} (it carries rehearse's mark): point live.url at the live database itself",
            live.describe()
        ))
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_pending_from_intend_until_done_and_only_for_its_own_key() {
        let d = tempfile::tempdir().unwrap();
        let key = "postgres 127.0.0.1:5432 edenupgradetest";
        assert!(!pending(d.path(), key));
        let i = intend(d.path(), key).unwrap();
        assert!(pending(d.path(), key));
        assert!(!pending(d.path(), "postgres 127.0.0.1:5432 eden_rehearse_scratch"));
        i.done().unwrap();
        assert!(!pending(d.path(), key));
        intend(d.path(), key).unwrap().abandon();
        assert!(!pending(d.path(), key));
    }
}
