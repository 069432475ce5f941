//! Verification after every run (safety invariant 4): re-introspect, the diff against the target
//! must be empty, and no kept table may have fewer rows than before, except where the report
//! listed an accepted loss (rows added, like a migration record, are shown, not refused).

use crate::diff::Diff;
use crate::engine::{Connection, Dialect};
use crate::hints::Hints;
use crate::schema::Schema;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Default)]
pub struct Verification {
    pub verified: bool,
    pub schema_matches: bool,
    /// What still differs from the target, one line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schema_differences: Vec<String>,
    pub rows_before: BTreeMap<String, i64>,
    pub rows_after: BTreeMap<String, i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub row_differences: Vec<String>,
}

/// Row counts of the given tables.
pub fn count_rows(
    conn: &mut dyn Connection,
    dialect: Dialect,
    tables: &[String],
) -> anyhow::Result<BTreeMap<String, i64>> {
    let mut out = BTreeMap::new();
    for t in tables {
        let rows = conn.query(&format!("SELECT count(*) FROM {}", dialect.quote(t)))?;
        let n = rows.first().and_then(|r| r.first()).cloned().flatten().and_then(|v| v.parse().ok()).unwrap_or(0);
        out.insert(t.clone(), n);
    }
    Ok(out)
}

/// `before` is keyed by target table name (the kept tables of `plan`).
pub fn verify(
    conn: &mut dyn Connection,
    dialect: Dialect,
    target: &Schema,
    plan: &Diff,
    before: BTreeMap<String, i64>,
    hints: &Hints,
) -> anyhow::Result<Verification> {
    let now = conn.introspect()?;
    let rest = crate::diff::diff(&now, target, &Hints::default())?;
    let schema_differences: Vec<String> = rest.changes.iter().map(|c| c.label()).collect();
    let kept: Vec<String> = plan.kept.keys().filter(|t| now.table(t).is_some()).cloned().collect();
    let rows_after = count_rows(conn, dialect, &kept)?;
    let mut row_differences = Vec::new();
    for (t, b) in &before {
        let a = rows_after.get(t).copied().unwrap_or(0);
        // Rows lost are a failure; rows added (a migration record, seed data) are not.
        if a < *b && !hints.accepts_loss(t, None) {
            row_differences.push(format!("{t}: {b} rows before, {a} after"));
        }
    }
    Ok(Verification {
        verified: schema_differences.is_empty() && row_differences.is_empty(),
        schema_matches: schema_differences.is_empty(),
        schema_differences,
        rows_before: before,
        rows_after,
        row_differences,
    })
}
