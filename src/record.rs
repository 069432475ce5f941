//! The rehearsal record: what a later `--live` trusts. Written only after a passed and verified
//! rehearsal; removed at the start of every rehearsal so a failed one never leaves an old "passed"
//! record behind.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const FILE: &str = "rehearsal.json";
/// The rehearsed script, as it ran on the test copy.
pub const SCRIPT: &str = "rehearsed.sql";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub tool_version: String,
    pub engine: String,
    pub live: String,
    pub live_fingerprint: String,
    pub target_fingerprint: String,
    pub script: PathBuf,
    pub script_sha256: String,
    pub verified: bool,
    pub started_at: String,
    pub finished_at: String,
    #[serde(default)]
    pub commit: Option<String>,
    /// What live looked like at rehearsal time, so a drift can be named.
    pub live_schema: crate::schema::Schema,
    /// What the new code expects: `--live` verifies against it.
    pub target_schema: crate::schema::Schema,
    /// The hints the rehearsal used (developers' and sysadmin's, merged).
    pub hints: crate::hints::Hints,
    /// Verdict per finding (`kind table.column`): a read-only probe of live must give the same.
    pub verdicts: std::collections::BTreeMap<String, crate::findings::Verdict>,
}

/// The key of a finding in `Record::verdicts`.
pub fn finding_key(f: &crate::findings::Finding) -> String {
    f.change.label()
}

pub fn path(workdir: &Path) -> PathBuf {
    workdir.join(FILE)
}

pub fn clear(workdir: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path(workdir)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

pub fn write(workdir: &Path, r: &Record) -> anyhow::Result<()> {
    crate::fsutil::write_private(&path(workdir), serde_json::to_string_pretty(r)?.as_bytes())
}

pub fn read(workdir: &Path) -> anyhow::Result<Option<Record>> {
    let p = path(workdir);
    if !p.exists() {
        return Ok(None);
    }
    Ok(Some(serde_json::from_str(&std::fs::read_to_string(p)?)?))
}
