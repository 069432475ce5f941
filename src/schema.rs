//! The dialect-neutral Schema model (DESIGN.md "Schema"): tables, ordered columns, normalized types,
//! keys, indexes, foreign keys and checks, serializable as a snapshot (YAML/JSON).
//!
//! Engines fill it in; diff, probes and scripts only ever read it. It must never hold data or secrets.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    /// `sqlite`, `postgres` or `mysql`: the engine the snapshot was read from.
    pub engine: String,
    pub tables: Vec<Table>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub primary_key: Vec<String>,
    /// The primary key constraint's name, where the engine names it (PostgreSQL `t_pkey`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_key_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uniques: Vec<Unique>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<Index>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign_keys: Vec<ForeignKey>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    /// The engine's own DDL for the table, when the engine keeps it (SQLite): lets a same-engine
    /// script recreate the table exactly. Not part of the fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_sql: Option<String>,
    /// Triggers on the table, as the engine's own DDL (recreated after a rebuild).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    pub name: String,
    /// Normalized type: lower case, canonical spelling (`varchar(64)`, `integer`, `numeric(10,2)`).
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// serial / identity / AUTO_INCREMENT / SQLite AUTOINCREMENT.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_increment: bool,
    /// A PostgreSQL identity column: `always` or `by default` (then `auto_increment` is true too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

impl Column {
    /// Where a new row's value comes from when none is given, in words: the default, an
    /// identity, a serial sequence or auto-increment, or nothing.
    pub fn value_source(&self) -> String {
        match (&self.identity, self.auto_increment, &self.default) {
            (Some(kind), _, _) => format!("GENERATED {} AS IDENTITY", kind.to_uppercase()),
            (None, true, None) => "auto-increment (a sequence)".into(),
            (None, _, Some(d)) => d.clone(),
            (None, false, None) => "none".into(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unique {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    pub name: String,
    /// Column names, or expressions for expression indexes.
    pub columns: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unique: bool,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "where")]
    pub predicate: Option<String>,
    /// The engine's own DDL, when it keeps it (SQLite). Not part of the fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForeignKey {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub columns: Vec<String>,
    pub ref_table: String,
    pub ref_columns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_delete: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_update: Option<String>,
    /// `DEFERRABLE` or `DEFERRABLE INITIALLY DEFERRED` (PostgreSQL); None when checked at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferrable: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The expression in a form that compares across round trips (what diffs compare).
    pub expr: String,
    /// The engine's text that recreates the check exactly as declared, when it differs from
    /// `expr`'s; not part of the fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
}

/// What kind of values a type holds: renames pair columns of one family, casts between families
/// need probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Integer,
    Decimal,
    Float,
    Boolean,
    Text,
    Temporal,
    Binary,
    Json,
    Other,
}

impl Family {
    /// The family of a normalized type name. Names are matched the way SQLite's affinity rules
    /// read declared types (substring `int`, `char`/`clob`/`text`, `real`/`floa`/`doub`), after
    /// the names all three engines share.
    pub fn of(data_type: &str) -> Family {
        let t = data_type.to_ascii_lowercase();
        let base = t.split('(').next().unwrap_or("").trim();
        match base {
            "bool" | "boolean" | "tinyint(1)" => return Family::Boolean,
            "json" | "jsonb" => return Family::Json,
            "date"
            | "datetime"
            | "time"
            | "timestamp"
            | "timestamptz"
            | "year"
            | "interval"
            | "time with time zone"
            | "timestamp with time zone"
            | "timestamp without time zone"
            | "timetz" => return Family::Temporal,
            "numeric" | "decimal" | "money" => return Family::Decimal,
            "uuid" | "inet" | "cidr" | "macaddr" | "enum" | "set" => return Family::Text,
            _ => {}
        }
        if base.ends_with("[]") {
            Family::Other
        } else if base.contains("int") || base == "serial" || base == "bigserial" {
            Family::Integer
        } else if base.contains("char") || base.contains("clob") || base.contains("text") {
            Family::Text
        } else if base.contains("real") || base.contains("floa") || base.contains("doub") {
            Family::Float
        } else if base.contains("blob") || base.contains("binary") || base == "bytea" || base.is_empty() {
            Family::Binary
        } else if base.starts_with("timestamp") || base.starts_with("time") {
            Family::Temporal
        } else {
            Family::Other
        }
    }
}

/// The character limit of a type (`varchar(64)` is 64), if it has one.
pub fn char_limit(data_type: &str) -> Option<u64> {
    if Family::of(data_type) != Family::Text {
        return None;
    }
    let open = data_type.find('(')?;
    let close = data_type[open..].find(')')? + open;
    data_type[open + 1..close].trim().parse().ok()
}

/// Numeric precision and scale of a decimal type (`numeric(10,2)` is (10, 2)).
pub fn numeric_precision(data_type: &str) -> Option<(u32, u32)> {
    if Family::of(data_type) != Family::Decimal {
        return None;
    }
    let open = data_type.find('(')?;
    let close = data_type[open..].find(')')? + open;
    let mut parts = data_type[open + 1..close].split(',');
    let p = parts.next()?.trim().parse().ok()?;
    let s = parts.next().map(|s| s.trim().parse().unwrap_or(0)).unwrap_or(0);
    Some((p, s))
}

/// Integer width rank, for "does this change widen": smallint < integer < bigint.
pub fn integer_rank(data_type: &str) -> u8 {
    let t = data_type.to_ascii_lowercase();
    if t.contains("tiny") {
        1
    } else if t.contains("small") {
        2
    } else if t.contains("medium") {
        3
    } else if t.contains("big") {
        5
    } else {
        4
    }
}

impl Schema {
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// SHA-256 over the canonical model (tables sorted by name; engine DDL text left out), so two
    /// databases with the same structure have the same fingerprint.
    pub fn fingerprint(&self) -> String {
        let mut tables: Vec<Table> = self
            .tables
            .iter()
            .map(|t| {
                let mut t = t.clone();
                t.create_sql = None;
                t.primary_key_name = None;
                t.triggers.clear();
                for i in &mut t.indexes {
                    i.sql = None;
                }
                for c in &mut t.checks {
                    c.sql = None;
                }
                t.indexes.sort_by(|a, b| a.name.cmp(&b.name));
                t
            })
            .collect();
        tables.sort_by(|a, b| a.name.cmp(&b.name));
        let json = serde_json::to_string(&tables).expect("schema serializes");
        sha256_hex(json.as_bytes())
    }

    /// Tables ordered so that every table comes after the tables its foreign keys point at
    /// (self references and cycles are tolerated: a cycle keeps name order).
    pub fn fk_order(&self) -> Vec<&Table> {
        let mut done: Vec<&str> = Vec::new();
        let mut pending: Vec<&Table> = self.tables.iter().collect();
        pending.sort_by(|a, b| a.name.cmp(&b.name));
        while !pending.is_empty() {
            let before = pending.len();
            let mut i = 0;
            while i < pending.len() {
                let t = pending[i];
                let ready = t.foreign_keys.iter().all(|fk| {
                    fk.ref_table == t.name
                        || done.contains(&fk.ref_table.as_str())
                        || self.table(&fk.ref_table).is_none()
                });
                if ready {
                    done.push(&t.name);
                    pending.remove(i);
                } else {
                    i += 1;
                }
            }
            if pending.len() == before {
                // A cycle: take the first one and go on.
                done.push(&pending[0].name);
                pending.remove(0);
            }
        }
        done.iter().filter_map(|n| self.table(n)).collect()
    }
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_follow_sqlite_affinity_for_unknown_names() {
        assert_eq!(Family::of("varchar(64)"), Family::Text);
        assert_eq!(Family::of("nvarchar(10)"), Family::Text);
        assert_eq!(Family::of("integer"), Family::Integer);
        assert_eq!(Family::of("bigint"), Family::Integer);
        assert_eq!(Family::of("double precision"), Family::Float);
        assert_eq!(Family::of("jsonb"), Family::Json);
        assert_eq!(Family::of("numeric(10,2)"), Family::Decimal);
        assert_eq!(Family::of(""), Family::Binary);
    }

    #[test]
    fn char_limit_reads_the_length_of_text_types_only() {
        assert_eq!(char_limit("varchar(40)"), Some(40));
        assert_eq!(char_limit("text"), None);
        assert_eq!(char_limit("numeric(10,2)"), None);
        assert_eq!(numeric_precision("numeric(10,2)"), Some((10, 2)));
    }

    #[test]
    fn fk_order_puts_referenced_tables_first() {
        let t = |name: &str, refs: &[&str]| Table {
            name: name.into(),
            foreign_keys: refs
                .iter()
                .map(|r| ForeignKey {
                    columns: vec!["x".into()],
                    ref_table: (*r).into(),
                    ref_columns: vec!["id".into()],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let s = Schema {
            engine: "sqlite".into(),
            tables: vec![t("award", &["volunteer"]), t("volunteer", &["org"]), t("org", &[])],
        };
        let names: Vec<_> = s.fk_order().iter().map(|t| t.name.clone()).collect();
        assert_eq!(names, ["org", "volunteer", "award"]);
    }
}
