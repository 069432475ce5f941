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
    /// Rows the run deleted from kept tables, table by table, where the hints accept it (an
    /// accepted loss or `accept_delete`): what the report's lost-rows line says.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rows_lost: BTreeMap<String, i64>,
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
    let (row_differences, rows_lost) = judge_rows(&before, &rows_after, hints);
    Ok(Verification {
        verified: schema_differences.is_empty() && row_differences.is_empty(),
        schema_matches: schema_differences.is_empty(),
        schema_differences,
        rows_before: before,
        rows_after,
        row_differences,
        rows_lost,
    })
}

/// The `rehearse_archive_*` tables a script's statements create, by name.
pub fn archive_tables(statements: &[crate::sqltext::Statement]) -> Vec<String> {
    statements
        .iter()
        .filter_map(|st| {
            let words: Vec<&str> = st.sql.split_whitespace().take(3).collect();
            match words.as_slice() {
                [c, t, name] if c.eq_ignore_ascii_case("create") && t.eq_ignore_ascii_case("table") => {
                    let name = name.trim_matches(|c| c == '"' || c == '`' || c == '[' || c == ']');
                    name.starts_with("rehearse_archive_").then(|| name.to_string())
                }
                _ => None,
            }
        })
        .collect()
}

/// Rows lost are a failure unless the hints accept them (the whole table's loss, or up to
/// `accept_delete` rows); rows added (a migration record, seed data) are not. Returns the
/// failures, one line each, and the accepted losses.
fn judge_rows(
    before: &BTreeMap<String, i64>,
    after: &BTreeMap<String, i64>,
    hints: &Hints,
) -> (Vec<String>, BTreeMap<String, i64>) {
    let mut differences = Vec::new();
    let mut lost = BTreeMap::new();
    for (t, b) in before {
        let a = after.get(t).copied().unwrap_or(0);
        if a >= *b {
            continue;
        }
        let gone = b - a;
        match hints.accepted_deletion(t) {
            _ if hints.accepts_loss(t, None) => {
                lost.insert(t.clone(), gone);
            }
            Some(n) if gone <= n => {
                lost.insert(t.clone(), gone);
            }
            Some(n) => differences.push(format!(
                "{t}: {b} rows before, {a} after: {gone} rows deleted, more than the {n} that accept_delete accepts"
            )),
            None => differences.push(format!(
                "{t}: {b} rows before, {a} after: {gone} rows deleted (if that is meant, accept it with accept_delete: {{ {}: {gone} }} in the sysadmin hints)",
                serde_json::Value::from(t.as_str())
            )),
        }
    }
    (differences, lost)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(v: &[(&str, i64)]) -> BTreeMap<String, i64> {
        v.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    #[test]
    fn deleted_rows_pass_only_up_to_the_number_accept_delete_accepts_and_are_counted() {
        let before = counts(&[("contact", 6), ("note", 4)]);
        let after = counts(&[("contact", 3), ("note", 5)]);
        let (diff, lost) = judge_rows(&before, &after, &Hints::default());
        assert_eq!(diff.len(), 1, "{diff:?}");
        assert!(diff[0].contains("3 rows deleted") && diff[0].contains("accept_delete"), "{diff:?}");
        let mut hints = Hints::default();
        hints.accept_delete.insert("contact".into(), 3);
        let (diff, lost2) = judge_rows(&before, &after, &hints);
        assert!(diff.is_empty(), "{diff:?}");
        assert_eq!(lost2, counts(&[("contact", 3)]), "rows added to note are no loss");
        assert!(lost.is_empty());
        hints.accept_delete.insert("contact".into(), 2);
        let (diff, _) = judge_rows(&before, &after, &hints);
        assert!(diff[0].contains("more than the 2"), "{diff:?}");
    }
}
