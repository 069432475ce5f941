//! `rehearse backup --config F --sqlite FILE`: live (any engine) into a new local SQLite file,
//! verified table by table, the habit of taking a portable copy before a migration. The work is
//! `crate::copy`; this command adds the file's safety: it is written beside its final name and
//! appears under that name only once every table verified, never over an existing file.

use super::live::ConfigArgs;
use crate::copy::{self, Options};
use crate::exit::{self, Refused, UsageError};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  rehearse backup --config upgrade.yaml --sqlite /var/backups/eden-2026-11-23.db\n\n\
Exit codes: 0 written and verified, 2 bad config or path, 4 verification found a difference (no file left), 5 refused (the file exists)."
)]
pub struct Args {
    #[command(flatten)]
    pub common: ConfigArgs,
    /// The SQLite file to write (must not exist yet)
    #[arg(long, value_name = "FILE")]
    pub sqlite: PathBuf,
    /// Rows per page read from live
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub batch: usize,
}

/// The file being written under a hidden name, removed when the command ends (after success
/// the backup lives on under its final name, a second link to the same file).
struct Partial(PathBuf);

impl Drop for Partial {
    fn drop(&mut self) {
        let _ = fs_err::remove_file(&self.0);
    }
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let cfg = a.common.resolve_live()?;
    let file = absolute(&a.sqlite)?;
    if file.exists() {
        return Err(Refused(format!(
            "{} exists: a backup never overwrites a file; give a new name or remove it",
            file.display()
        ))
        .into());
    }
    let dir = file.parent().unwrap_or(Path::new("/"));
    if !dir.is_dir() {
        return Err(
            UsageError(format!("--sqlite {}: folder {} does not exist", a.sqlite.display(), dir.display())).into()
        );
    }
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let partial = Partial(dir.join(format!(".{name}.partial-{}", std::process::id())));
    // The backup holds live's data: readable by its owner only, from the first byte.
    crate::fsutil::write_private(&partial.0, b"")?;
    let outcome =
        copy::copy(&Options::whole(cfg.live_url.clone(), format!("sqlite://{}", partial.0.display()), a.batch))?;
    outcome.render(&mut std::io::stdout().lock())?;
    if !outcome.verified() {
        eprintln!("rehearse: the backup did not verify; no file was written at {}", file.display());
        return Ok(exit::REHEARSAL_FAILED);
    }
    std::fs::File::open(&partial.0)?.sync_all()?;
    // A hard link appears under the final name atomically and never replaces a file made since.
    fs_err::hard_link(&partial.0, &file)
        .map_err(|e| anyhow::anyhow!("cannot name the backup {}: {e} (nothing was written there)", file.display()))?;
    std::fs::File::open(dir)?.sync_all()?;
    let rows: u64 = outcome.tables.iter().map(|t| t.rows).sum();
    println!(
        "backup of {}: {} ({} tables, {rows} rows, verified)",
        crate::redact::url(&cfg.live_url),
        file.display(),
        outcome.tables.len()
    );
    Ok(exit::OK)
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    if p.as_os_str().is_empty() {
        return Err(UsageError("--sqlite names no file".into()).into());
    }
    Ok(if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir()?.join(p) })
}
