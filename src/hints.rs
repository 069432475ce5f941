//! Hints (DESIGN.md "Hints file"): what the developers (in the new code) and the sysadmin (in their
//! own file, which wins) tell rehearse that the schemas alone cannot: renames, value maps,
//! backfill defaults, accepted losses, splits and merges.
//!
//! Parsing is strict: an unknown key or a wrong shape is an error naming the key and line, because
//! a silently ignored hint is a silently lost column.

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

use crate::engine::{Connection, Dialect};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Hints {
    #[serde(default)]
    pub renames: Renames,
    /// Pairings that are not renames (`rehearse hints`' "no" to "did you rename A to B?"): the
    /// old one is dropped and the new one added, and the question is not asked again.
    #[serde(default, skip_serializing_if = "Renames::is_empty")]
    pub not_renames: Renames,
    /// "table.column" -> { old value as text -> new value }
    #[serde(default, deserialize_with = "scalar_maps")]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// "table.column" -> SQL expression that backfills existing rows
    #[serde(default, deserialize_with = "scalar_map")]
    pub defaults: BTreeMap<String, String>,
    /// "table.column" or "table": drops the sysadmin accepts
    #[serde(default)]
    pub accept_loss: Vec<String>,
    /// "table" -> N: the sysadmin accepts that an edited script (a de-duplication or orphan
    /// draft) deletes up to N rows of the table. Verification lets the table end at most N rows
    /// shorter and the report says how many went; the draft's guard re-counts them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub accept_delete: BTreeMap<String, i64>,
    #[serde(default)]
    pub split: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub merge: BTreeMap<String, Merge>,
    /// `false`: no `rehearse_archive_*` copy of the data a lossy change removes (default: on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_losses: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Renames {
    #[serde(default)]
    pub tables: BTreeMap<String, String>,
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
}

impl Renames {
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty() && self.columns.is_empty()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Merge {
    pub from: Vec<String>,
    /// YAML 1.1 tools (PyYAML) read the key `on` as the boolean true and write it back as `true`.
    #[serde(default, alias = "true")]
    pub on: BTreeMap<String, String>,
}

fn scalar_text(v: &serde_yaml::Value) -> Result<String, String> {
    match v {
        serde_yaml::Value::String(s) => Ok(s.clone()),
        serde_yaml::Value::Number(n) => Ok(n.to_string()),
        serde_yaml::Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("expected a plain value, found {other:?}")),
    }
}

fn scalar_map<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw: BTreeMap<String, serde_yaml::Value> = BTreeMap::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| {
            scalar_text(&v).map(|v| (k.clone(), v)).map_err(|e| serde::de::Error::custom(format!("{k}: {e}")))
        })
        .collect()
}

fn scalar_maps<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, BTreeMap<String, String>>, D::Error> {
    let raw: BTreeMap<String, serde_yaml::Mapping> = BTreeMap::deserialize(d)?;
    let mut out = BTreeMap::new();
    for (col, map) in raw {
        let mut m = BTreeMap::new();
        for (k, v) in map {
            let k = scalar_text(&k).map_err(|e| serde::de::Error::custom(format!("values.{col}: {e}")))?;
            let v = scalar_text(&v).map_err(|e| serde::de::Error::custom(format!("values.{col}.{k}: {e}")))?;
            m.insert(k, v);
        }
        out.insert(col, m);
    }
    Ok(out)
}

impl Hints {
    pub fn parse(text: &str, origin: &Path) -> anyhow::Result<Hints> {
        if text.trim().is_empty() {
            return Ok(Hints::default());
        }
        serde_yaml::from_str(text).with_context(|| format!("hints file {} is not valid: fix it", origin.display()))
    }

    pub fn load(path: &Path) -> anyhow::Result<Hints> {
        let text =
            fs_err::read_to_string(path).with_context(|| format!("cannot read hints file {}", path.display()))?;
        Hints::parse(&text, path)
    }

    /// Layer `over` (the sysadmin's) on top of self (the developers'): every key `over` names wins.
    pub fn overridden_by(mut self, over: Hints) -> Hints {
        // A pairing one side calls a rename and the other not: the sysadmin's word wins.
        let unsaid = |mine: &mut BTreeMap<String, String>, theirs: &BTreeMap<String, String>| {
            mine.retain(|old, new| theirs.get(old) != Some(new));
        };
        unsaid(&mut self.renames.tables, &over.not_renames.tables);
        unsaid(&mut self.renames.columns, &over.not_renames.columns);
        unsaid(&mut self.not_renames.tables, &over.renames.tables);
        unsaid(&mut self.not_renames.columns, &over.renames.columns);
        self.renames.tables.extend(over.renames.tables);
        self.renames.columns.extend(over.renames.columns);
        self.not_renames.tables.extend(over.not_renames.tables);
        self.not_renames.columns.extend(over.not_renames.columns);
        self.values.extend(over.values);
        self.defaults.extend(over.defaults);
        for a in over.accept_loss {
            if !self.accept_loss.contains(&a) {
                self.accept_loss.push(a);
            }
        }
        self.accept_delete.extend(over.accept_delete);
        self.split.extend(over.split);
        self.merge.extend(over.merge);
        if over.archive_losses.is_some() {
            self.archive_losses = over.archive_losses;
        }
        self
    }

    /// How many rows of `table` the hints accept to see deleted (`accept_delete`), if any.
    pub fn accepted_deletion(&self, table: &str) -> Option<i64> {
        self.accept_delete.get(table).copied()
    }

    pub fn accepts_loss(&self, table: &str, column: Option<&str>) -> bool {
        self.accept_loss.iter().any(|a| match column {
            Some(c) => a == &format!("{table}.{c}") || a == table,
            None => a == table,
        })
    }
}

/// The hints whose text goes into the script as SQL (not as a quoted value): `defaults`, each
/// pasted where a value goes (`UPDATE t SET c = <expr>`, `COALESCE(c, <expr>)`). Value maps and
/// every name are quoted by the engine's rules, so they cannot end a statement.
fn sql_texts(hints: &Hints) -> impl Iterator<Item = (String, &String)> {
    hints.defaults.iter().map(|(k, v)| (format!("defaults {k:?}"), v))
}

fn not_one_expression(what: &str, expr: &str, why: &str) -> anyhow::Error {
    let shown: String = expr.chars().take(80).collect();
    let more = if shown.len() < expr.len() { "..." } else { "" };
    crate::exit::usage(anyhow::anyhow!(
        "hints: {what} is {shown:?}{more}, which is not one SQL expression: {why}; write one value or expression, such as 'UNKNOWN' or lower(name)"
    ))
}

impl Hints {
    /// Refuse (usage error) a hint whose SQL text is not one scalar expression, read by the rules
    /// the script is split by: a crafted hint must never end the statement it lands in and add
    /// statements of its own. Checked before anything runs.
    pub fn check_expressions(&self, dialect: Dialect) -> anyhow::Result<()> {
        for (what, expr) in sql_texts(self) {
            crate::sqltext::one_expression(expr, dialect).map_err(|why| not_one_expression(&what, expr, &why))?;
        }
        Ok(())
    }

    /// The engine's own word on each hint expression: `SELECT (<expr>) FROM <table> LIMIT 0` on the
    /// test copy, in a read-only transaction rolled back after it, so a text the lexical check let
    /// through but the engine reads differently (a `(DELETE ... RETURNING)`) is refused too.
    /// `source_of` gives the live table a target table's rows come from (None: a new table, whose
    /// hint is never evaluated against rows, so only its syntax is checked). A column the engine
    /// does not know is not this check's business: the expression runs after the script's renames,
    /// so the rehearsal itself judges it.
    pub fn try_expressions(
        &self,
        conn: &mut dyn Connection,
        dialect: Dialect,
        table_exists: impl Fn(&str) -> bool,
        source_of: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<()> {
        for (key, expr) in &self.defaults {
            let Ok((table, _)) = split_key(key, &table_exists) else { continue };
            let from = source_of(table).map(|t| format!(" FROM {}", dialect.quote(&t))).unwrap_or_default();
            let select = format!("SELECT ({expr}){from} LIMIT 0");
            let (begin, end) = match dialect {
                Dialect::Postgres => ("BEGIN READ ONLY", "ROLLBACK"),
                Dialect::Mysql => ("START TRANSACTION READ ONLY", "ROLLBACK"),
                Dialect::Sqlite => ("BEGIN; PRAGMA query_only = ON", "ROLLBACK; PRAGMA query_only = OFF"),
            };
            conn.execute_batch(begin)?;
            let tried = conn.query(&select);
            conn.execute_batch(end)?;
            if let Err(e) = tried {
                let msg = format!("{e:#}");
                let first = msg.lines().next().unwrap_or_default();
                let lower = first.to_lowercase();
                let unknown_column = (lower.contains("column") && lower.contains("does not exist"))
                    || lower.contains("no such column")
                    || lower.contains("unknown column");
                if !unknown_column {
                    return Err(not_one_expression(
                        &format!("defaults {key:?}"),
                        expr,
                        &format!("the database refuses it ({first})"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Split a `table.column` hint key against the tables that exist (names may hold dots).
pub fn split_key(key: &str, table_exists: impl Fn(&str) -> bool) -> anyhow::Result<(&str, &str)> {
    for (i, _) in key.match_indices('.') {
        let (t, c) = (&key[..i], &key[i + 1..]);
        if table_exists(t) {
            return Ok((t, c));
        }
    }
    match key.split_once('.') {
        Some((t, _)) => {
            bail!("hint {key:?} names table {t:?}, which is in neither schema: fix the hints file")
        }
        None => bail!("hint {key:?} must be written table.column"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_map_keys_may_be_numbers_in_yaml() {
        let h = Hints::parse("values:\n  org_office.type: { 1: First, 2: Second }\n", Path::new("h.yaml")).unwrap();
        assert_eq!(h.values["org_office.type"]["1"], "First");
    }

    #[test]
    fn unknown_hint_key_is_an_error_with_its_line() {
        let err = Hints::parse("renames: {}\nrenamez: {}\n", Path::new("h.yaml")).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("renamez") && msg.contains("line 2"), "{msg}");
    }

    #[test]
    fn sysadmin_hints_win_over_developer_hints() {
        let dev = Hints::parse("defaults: { t.c: \"'a'\" }", Path::new("d")).unwrap();
        let ops = Hints::parse("defaults: { t.c: \"'b'\" }", Path::new("s")).unwrap();
        assert_eq!(dev.overridden_by(ops).defaults["t.c"], "'b'");
    }

    #[test]
    fn the_sysadmins_no_to_a_rename_wins_over_the_developers_rename_and_the_other_way() {
        let dev = Hints::parse("renames: { columns: { t.a: b } }\nnot_renames: { tables: { x: y } }", Path::new("d"))
            .unwrap();
        let ops = Hints::parse("not_renames: { columns: { t.a: b } }\nrenames: { tables: { x: y } }", Path::new("s"))
            .unwrap();
        let h = dev.overridden_by(ops);
        assert!(h.renames.columns.is_empty());
        assert_eq!(h.not_renames.columns["t.a"], "b");
        assert_eq!(h.renames.tables["x"], "y");
        assert!(h.not_renames.tables.is_empty());
    }

    #[test]
    fn hint_keys_split_on_the_dot_that_names_a_table() {
        let (t, c) = split_key("my.table.col", |t| t == "my.table").unwrap();
        assert_eq!((t, c), ("my.table", "col"));
        assert!(split_key("nope.col", |_| false).is_err());
    }
}
