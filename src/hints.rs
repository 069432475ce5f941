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

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Hints {
    #[serde(default)]
    pub renames: Renames,
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
            std::fs::read_to_string(path).with_context(|| format!("cannot read hints file {}", path.display()))?;
        Hints::parse(&text, path)
    }

    /// Layer `over` (the sysadmin's) on top of self (the developers'): every key `over` names wins.
    pub fn overridden_by(mut self, over: Hints) -> Hints {
        self.renames.tables.extend(over.renames.tables);
        self.renames.columns.extend(over.renames.columns);
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
    fn hint_keys_split_on_the_dot_that_names_a_table() {
        let (t, c) = split_key("my.table.col", |t| t == "my.table").unwrap();
        assert_eq!((t, c), ("my.table", "col"));
        assert!(split_key("nope.col", |_| false).is_err());
    }
}
