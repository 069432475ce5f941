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
    /// How long the script ran on the test copy, and the rows of each kept table it ran on:
    /// `--live` scales the time to live's rows of the moment (estimate).
    #[serde(default)]
    pub seconds: Option<f64>,
    #[serde(default)]
    pub rows: std::collections::BTreeMap<String, i64>,
    /// An engine switch (`test.url`): the database beside which the test copy was made. Such a
    /// rehearsal is never promoted: its script was proven on another engine than live's.
    #[serde(default)]
    pub switched_to: Option<String>,
}

impl Record {
    /// The script's expected duration on a database holding `rows_now`: the rehearsal's time
    /// scaled by the ratio of rows (never below the rehearsal's own time).
    pub fn estimate_seconds(&self, rows_now: &std::collections::BTreeMap<String, i64>) -> Option<f64> {
        let then: i64 = self.rows.values().sum();
        let now: i64 = rows_now.values().sum();
        let ratio = if then > 0 { (now as f64 / then as f64).max(1.0) } else { 1.0 };
        self.seconds.map(|s| s * ratio)
    }
}

/// The key of a finding in `Record::verdicts`.
pub fn finding_key(f: &crate::findings::Finding) -> String {
    f.change.label()
}

pub fn path(workdir: &Path) -> PathBuf {
    workdir.join(FILE)
}

pub fn clear(workdir: &Path) -> anyhow::Result<()> {
    match fs_err::remove_file(path(workdir)) {
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
    Ok(Some(serde_json::from_str(&fs_err::read_to_string(p)?)?))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    #[test]
    fn the_estimate_scales_with_live_growth_and_never_shrinks() {
        let mut r: super::Record = serde_json::from_value(serde_json::json!({
            "tool_version": "x", "engine": "sqlite", "live": "l", "live_fingerprint": "a",
            "target_fingerprint": "b", "script": "s.sql", "script_sha256": "0", "verified": true,
            "started_at": "", "finished_at": "",
            "live_schema": {"engine": "sqlite", "tables": []},
            "target_schema": {"engine": "sqlite", "tables": []},
            "hints": {}, "verdicts": {}
        }))
        .unwrap();
        let rows = |a: i64, b: i64| BTreeMap::from([("a".to_string(), a), ("b".to_string(), b)]);
        assert_eq!(r.estimate_seconds(&rows(1, 1)), None, "an old record without a time gives no estimate");
        r.seconds = Some(10.0);
        r.rows = rows(600, 400);
        assert_eq!(r.estimate_seconds(&rows(1200, 800)), Some(20.0));
        assert_eq!(r.estimate_seconds(&rows(300, 200)), Some(10.0));
    }
}
