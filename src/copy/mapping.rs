//! Schema translation for a copy: the source's neutral Schema becomes the target's, through the
//! type-mapping table of docs/copy.md, and is rendered as DDL in three steps (tables with their
//! primary keys; then uniques and indexes; then foreign keys and checks) so rows load without
//! secondary structures in the way. Every loss of precision or meaning is returned as a note: a
//! mapping that loses something is never silent.

use crate::engine::Dialect;
use crate::schema::{char_limit, numeric_precision, Column, Family, Schema, Table};

/// A column of `t` that a key, index or foreign key names (MySQL cannot index unbounded text).
fn in_key(t: &Table, col: &str) -> bool {
    let c = col.to_string();
    t.primary_key.contains(&c)
        || t.uniques.iter().any(|u| u.columns.contains(&c))
        || t.indexes.iter().any(|i| i.columns.contains(&c))
        || t.foreign_keys.iter().any(|f| f.columns.contains(&c))
}

/// The MySQL ` character set x collate y` suffix is meaningless elsewhere.
fn bare(t: &str) -> &str {
    let t = t.split(" character set ").next().unwrap_or(t);
    t.split(" collate ").next().unwrap_or(t).trim()
}

fn args(t: &str) -> &str {
    match (t.find('('), t.rfind(')')) {
        (Some(o), Some(c)) if o < c => &t[o..=c],
        _ => "",
    }
}

/// The target type of column `c` (of table `t`) read from `from`, written for `to`, and a note
/// when the mapping loses something. `fits_i32`: every value of an SQLite integer column fits
/// in 32 bits (SQLite integers are 64-bit whatever they are called).
pub fn map_type(from: Dialect, to: Dialect, t: &Table, c: &Column, fits_i32: bool) -> (String, Option<String>) {
    if from == to {
        return (c.data_type.clone(), None);
    }
    let ty = bare(&c.data_type).to_ascii_lowercase();
    let base = ty.split(['(', ' ']).next().unwrap_or("").trim().to_string();
    let unsigned = ty.ends_with(" unsigned") || ty.contains(" unsigned ");
    let fam = super::values::family(from, c);
    let note = |what: String| Some(format!("{}.{}: {what}", t.name, c.name));
    let keyed = in_key(t, &c.name);
    match to {
        Dialect::Postgres => match fam {
            Family::Integer => {
                let ty = match (base.as_str(), unsigned) {
                    ("tinyint", _) | ("smallint", false) => "smallint",
                    ("smallint", true) | ("mediumint", _) => "integer",
                    ("bigint", true) => return ("numeric(20)".into(), None),
                    ("bigint", false) => "bigint",
                    (_, true) => "bigint",
                    _ if from == Dialect::Sqlite && !fits_i32 => "bigint",
                    _ => "integer",
                };
                (ty.into(), None)
            }
            Family::Decimal => (format!("numeric{}", args(&ty)), None),
            Family::Float => {
                let single = base == "real" || base == "float" && from == Dialect::Mysql;
                (if single { "real" } else { "double precision" }.into(), None)
            }
            Family::Boolean => ("boolean".into(), None),
            Family::Text => match base.as_str() {
                "varchar" | "char" | "character" => {
                    (format!("{}{}", if base == "varchar" { "varchar" } else { "char" }, args(&ty)), None)
                }
                "enum" | "set" => {
                    ("text".into(), note(format!("{} becomes text (its allowed values are not checked)", c.data_type)))
                }
                "uuid" => ("text".into(), None),
                _ => ("text".into(), None),
            },
            Family::Temporal => match base.as_str() {
                "date" => ("date".into(), None),
                "time" => (format!("time{}", args(&ty)), None),
                "year" => ("smallint".into(), None),
                "timestamptz" => ("timestamptz".into(), None),
                "timestamp" if from == Dialect::Mysql => (
                    format!("timestamp{}", args(&ty)),
                    note("MySQL timestamp becomes timestamp, values read in UTC".into()),
                ),
                _ => (format!("timestamp{}", args(&ty)), None),
            },
            Family::Binary => ("bytea".into(), None),
            Family::Json => ("jsonb".into(), None),
            Family::Other => {
                ("text".into(), note(format!("{} has no PostgreSQL counterpart here: copied as text", c.data_type)))
            }
        },
        Dialect::Mysql => match fam {
            Family::Integer => {
                let ty = match base.as_str() {
                    "smallint" | "int2" | "smallserial" => "smallint",
                    "bigint" | "int8" | "bigserial" => "bigint",
                    _ if from == Dialect::Sqlite && !fits_i32 => "bigint",
                    _ => "integer",
                };
                (ty.into(), None)
            }
            Family::Decimal => match numeric_precision(&ty) {
                Some((p, s)) if p <= 65 && s <= 30 => (format!("decimal({p},{s})"), None),
                _ => (
                    "decimal(65,30)".into(),
                    note(format!(
                        "{} becomes decimal(65,30): at most 35 digits before the point and 30 after",
                        c.data_type
                    )),
                ),
            },
            Family::Float => (if base == "real" { "float" } else { "double" }.into(), None),
            Family::Boolean => ("boolean".into(), None),
            Family::Text => match (char_limit(&ty), base.as_str()) {
                (Some(n), "char" | "character") if n <= 255 => (format!("char({n})"), None),
                (Some(n), _) if n <= 16383 => (format!("varchar({n})"), None),
                (_, "uuid") => ("char(36)".into(), None),
                _ if keyed => (
                    "varchar(255)".into(),
                    note("unbounded text in a key or index becomes varchar(255): a longer value fails the copy".into()),
                ),
                _ => ("longtext".into(), None),
            },
            Family::Temporal => match base.as_str() {
                "date" => ("date".into(), None),
                "time" | "timetz" => (format!("time{}", if args(&ty).is_empty() { "(6)" } else { args(&ty) }), None),
                "year" => ("year".into(), None),
                "interval" => ("varchar(64)".into(), note("interval becomes varchar(64)".into())),
                _ => {
                    let precision = if args(&ty).is_empty() { "(6)" } else { args(&ty) };
                    let tz = base == "timestamptz" || ty.contains("with time zone");
                    (
                        format!("datetime{precision}"),
                        tz.then(|| format!("{}.{}: timestamptz becomes datetime, values in UTC", t.name, c.name)),
                    )
                }
            },
            Family::Binary => (if keyed { "varbinary(255)" } else { "longblob" }.into(), None),
            Family::Json => ("json".into(), None),
            Family::Other => (
                if keyed { "varchar(255)" } else { "longtext" }.into(),
                note(format!("{} has no MySQL counterpart here: copied as text", c.data_type)),
            ),
        },
        Dialect::Sqlite => match fam {
            Family::Integer if base == "bigint" && unsigned => (
                "text".into(),
                note("bigint unsigned kept as text in SQLite: values above 2^63-1 do not fit its integers".into()),
            ),
            Family::Integer => {
                let ty = match base.as_str() {
                    "smallint" | "bigint" => base.as_str(),
                    _ => "integer",
                };
                (ty.into(), None)
            }
            Family::Decimal => match numeric_precision(&ty) {
                // NUMERIC affinity stores a decimal as REAL when it is not an integer: exact up
                // to 15 significant digits; wider decimals keep every digit as text.
                Some((p, s)) if p <= 15 => (format!("numeric({p},{s})"), None),
                _ => ("text".into(), note(format!("{} kept as text in SQLite to keep every digit", c.data_type))),
            },
            Family::Float => (if base == "real" || base == "float" { "real" } else { "double precision" }.into(), None),
            Family::Boolean => ("boolean".into(), None),
            Family::Text => match base.as_str() {
                "varchar" | "char" | "character" => (ty.clone(), None),
                "enum" | "set" => {
                    ("text".into(), note(format!("{} becomes text (its allowed values are not checked)", c.data_type)))
                }
                _ => ("text".into(), None),
            },
            Family::Temporal => (ty.clone(), None),
            Family::Binary => ("blob".into(), None),
            Family::Json => ("json".into(), None),
            Family::Other => {
                ("text".into(), note(format!("{} has no SQLite counterpart: copied as text", c.data_type)))
            }
        },
    }
}

/// A default that means the same on the target, or None (with a note) when it cannot be carried.
fn map_default(from: Dialect, to: Dialect, t: &Table, c: &Column, notes: &mut Vec<String>) -> Option<String> {
    let d = c.default.as_ref()?;
    if from == to {
        return Some(d.clone());
    }
    let lower = d.trim().to_ascii_lowercase();
    let fam = super::values::family(from, c);
    if matches!(lower.as_str(), "now()" | "current_timestamp" | "current_timestamp()" | "localtimestamp")
        || lower.starts_with("current_timestamp(")
    {
        return Some("CURRENT_TIMESTAMP".into());
    }
    if fam == Family::Boolean {
        let b = match lower.trim_matches('\'') {
            "true" | "t" | "1" => Some(true),
            "false" | "f" | "0" => Some(false),
            _ => None,
        };
        if let Some(b) = b {
            return Some(match (to, b) {
                (Dialect::Postgres, b) => b.to_string(),
                (_, true) => "1".into(),
                (_, false) => "0".into(),
            });
        }
    }
    if super::values::is_number(d.trim()) {
        return Some(d.trim().to_string());
    }
    let s = d.trim();
    if s.len() >= 2 && s.starts_with('\'') && s.ends_with('\'') && !s[1..s.len() - 1].contains('\\') {
        let inner = s[1..s.len() - 1].replace("''", "'");
        return Some(to.literal(&inner));
    }
    notes.push(format!(
        "{}.{}: default {d} not carried over (no equivalent written for {})",
        t.name,
        c.name,
        to.name()
    ));
    None
}

/// The target schema: tables and columns renamed nowhere, types mapped, defaults translated,
/// checks kept only within one engine. `fits_i32(table, column)` answers for SQLite integers.
pub fn target_schema(
    src: &Schema,
    from: Dialect,
    to: Dialect,
    fits_i32: &dyn Fn(&str, &str) -> bool,
    notes: &mut Vec<String>,
) -> Schema {
    let mut out = Schema { engine: to.name().into(), tables: Vec::new() };
    for t in &src.tables {
        let mut nt = t.clone();
        for c in &mut nt.columns {
            let (ty, note) = map_type(from, to, t, c, fits_i32(&t.name, &c.name));
            notes.extend(note);
            c.default = map_default(from, to, t, c, notes);
            c.data_type = ty;
            c.identity = match to {
                Dialect::Postgres if c.auto_increment && from != Dialect::Postgres => Some("by default".into()),
                Dialect::Postgres => c.identity.clone(),
                _ => None,
            };
        }
        if from != to {
            nt.create_sql = None;
            nt.triggers.clear();
            for i in &mut nt.indexes {
                i.sql = None;
            }
            if !nt.checks.is_empty() {
                notes.push(format!("{}: {} check constraint(s) not copied across engines", t.name, nt.checks.len()));
                nt.checks.clear();
            }
            let before = nt.indexes.len();
            nt.indexes.retain(|i| {
                i.columns.iter().all(|c| t.column(c).is_some()) && (i.predicate.is_none() || to != Dialect::Mysql)
            });
            if nt.indexes.len() < before {
                notes.push(format!(
                    "{}: {} expression or partial index(es) not copied across engines",
                    t.name,
                    before - nt.indexes.len()
                ));
            }
            if to != Dialect::Postgres {
                nt.primary_key_name = None;
            }
            if to == Dialect::Mysql {
                // MySQL allows one AUTO_INCREMENT column, and it must be a key: the primary key's.
                let keyed = match nt.primary_key.as_slice() {
                    [pk] => Some(pk.clone()),
                    _ => None,
                };
                for c in nt.columns.iter_mut().filter(|c| c.auto_increment && Some(&c.name) != keyed.as_ref()) {
                    c.auto_increment = false;
                    notes.push(format!(
                        "{}.{}: no longer generated (MySQL allows one AUTO_INCREMENT column, the primary key)",
                        t.name, c.name
                    ));
                }
            }
        }
        if !nt.triggers.is_empty() {
            notes.push(format!("{}: {} trigger(s) not copied", t.name, nt.triggers.len()));
            nt.triggers.clear();
        }
        out.tables.push(nt);
    }
    out
}

fn list(d: Dialect, cols: &[String]) -> String {
    cols.iter().map(|c| d.quote(c)).collect::<Vec<_>>().join(", ")
}

/// SQLite's rowid alias with AUTOINCREMENT: the column is declared with its key inline.
fn sqlite_rowid(t: &Table) -> Option<&Column> {
    let [pk] = t.primary_key.as_slice() else { return None };
    t.column(pk).filter(|c| c.auto_increment && Family::of(&c.data_type) == Family::Integer)
}

fn column_ddl(d: Dialect, t: &Table, c: &Column) -> String {
    let q = d.quote(&c.name);
    let mut s = match d {
        Dialect::Postgres => match (&c.identity, c.auto_increment) {
            (Some(kind), _) => format!("{q} {} GENERATED {} AS IDENTITY", c.data_type, kind.to_uppercase()),
            (None, true) if c.default.is_none() => {
                let serial = match c.data_type.as_str() {
                    "smallint" => "smallserial",
                    "bigint" => "bigserial",
                    _ => "serial",
                };
                format!("{q} {serial}")
            }
            _ => format!("{q} {}", c.data_type),
        },
        Dialect::Sqlite if sqlite_rowid(t).is_some_and(|r| r.name == c.name) => {
            return format!("{q} INTEGER PRIMARY KEY AUTOINCREMENT{}", if c.nullable { "" } else { " NOT NULL" });
        }
        _ => format!("{q} {}", c.data_type),
    };
    if !c.nullable {
        s.push_str(" NOT NULL");
    } else if d == Dialect::Mysql {
        s.push_str(" NULL");
    }
    if let Some(def) = &c.default {
        s.push_str(&format!(" DEFAULT {def}"));
    }
    if d == Dialect::Mysql && c.auto_increment {
        s.push_str(" AUTO_INCREMENT");
    }
    s
}

fn fk_clause(d: Dialect, fk: &crate::schema::ForeignKey) -> String {
    let mut s = format!(
        "FOREIGN KEY ({}) REFERENCES {} ({})",
        list(d, &fk.columns),
        d.quote(&fk.ref_table),
        list(d, &fk.ref_columns)
    );
    for (kw, a) in [("ON DELETE", &fk.on_delete), ("ON UPDATE", &fk.on_update)] {
        if let Some(a) = a {
            s.push_str(&format!(" {kw} {a}"));
        }
    }
    if let (Some(a), Dialect::Postgres) = (&fk.deferrable, d) {
        s.push_str(&format!(" {a}"));
    }
    s
}

fn named(d: Dialect, name: &Option<String>) -> String {
    name.as_ref().map(|n| format!("CONSTRAINT {} ", d.quote(n))).unwrap_or_default()
}

/// CREATE TABLE with the primary key only; SQLite, which cannot add constraints later, also gets
/// its uniques, foreign keys and checks here. An SQLite table copied from SQLite is recreated from
/// its own text.
pub fn create_table(d: Dialect, t: &Table) -> String {
    if let (Dialect::Sqlite, Some(sql)) = (d, &t.create_sql) {
        return sql.clone();
    }
    let mut parts: Vec<String> = t.columns.iter().map(|c| format!("  {}", column_ddl(d, t, c))).collect();
    let inline_key = d == Dialect::Sqlite && sqlite_rowid(t).is_some();
    if !t.primary_key.is_empty() && !inline_key {
        let name = if d == Dialect::Postgres { named(d, &t.primary_key_name) } else { String::new() };
        parts.push(format!("  {name}PRIMARY KEY ({})", list(d, &t.primary_key)));
    }
    if d == Dialect::Sqlite {
        for u in &t.uniques {
            parts.push(format!("  {}UNIQUE ({})", named(d, &u.name), list(d, &u.columns)));
        }
        for fk in &t.foreign_keys {
            parts.push(format!("  {}{}", named(d, &fk.name), fk_clause(d, fk)));
        }
        for c in &t.checks {
            parts.push(format!("  {}CHECK ({})", named(d, &c.name), c.sql.as_deref().unwrap_or(&c.expr)));
        }
    }
    format!("CREATE TABLE {} (\n{}\n)", d.quote(&t.name), parts.join(",\n"))
}

/// After the rows: unique constraints and indexes.
pub fn indexes(d: Dialect, t: &Table) -> Vec<String> {
    let qt = d.quote(&t.name);
    let mut out = Vec::new();
    if d != Dialect::Sqlite {
        for u in &t.uniques {
            out.push(match (d, &u.name) {
                (Dialect::Mysql, Some(n)) => {
                    format!("ALTER TABLE {qt} ADD UNIQUE KEY {} ({})", d.quote(n), list(d, &u.columns))
                }
                _ => format!("ALTER TABLE {qt} ADD {}UNIQUE ({})", named(d, &u.name), list(d, &u.columns)),
            });
        }
    }
    for i in &t.indexes {
        out.push(match &i.sql {
            Some(sql) => sql.clone(),
            None => format!(
                "CREATE {}INDEX {} ON {qt} ({}){}",
                if i.unique { "UNIQUE " } else { "" },
                d.quote(&i.name),
                list(d, &i.columns),
                i.predicate.as_ref().map(|p| format!(" WHERE {p}")).unwrap_or_default()
            ),
        });
    }
    out
}

/// Last: foreign keys and checks (PostgreSQL and MySQL; SQLite declared them with the table).
pub fn constraints(d: Dialect, t: &Table) -> Vec<String> {
    if d == Dialect::Sqlite {
        return Vec::new();
    }
    let qt = d.quote(&t.name);
    let mut out: Vec<String> = t
        .foreign_keys
        .iter()
        .map(|fk| format!("ALTER TABLE {qt} ADD {}{}", named(d, &fk.name), fk_clause(d, fk)))
        .collect();
    for c in &t.checks {
        out.push(format!("ALTER TABLE {qt} ADD {}CHECK ({})", named(d, &c.name), c.sql.as_deref().unwrap_or(&c.expr)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str) -> Column {
        Column { name: name.into(), data_type: ty.into(), nullable: true, ..Default::default() }
    }

    #[test]
    fn timestamptz_to_mysql_is_reported_as_utc_datetime() {
        let t = Table { name: "t".into(), columns: vec![col("at", "timestamptz")], ..Default::default() };
        let (ty, note) = map_type(Dialect::Postgres, Dialect::Mysql, &t, &t.columns[0], true);
        assert_eq!(ty, "datetime(6)");
        assert!(note.unwrap().contains("UTC"));
    }

    #[test]
    fn sqlite_integers_widen_only_when_a_value_needs_it() {
        let t = Table { name: "t".into(), columns: vec![col("n", "integer")], ..Default::default() };
        assert_eq!(map_type(Dialect::Sqlite, Dialect::Postgres, &t, &t.columns[0], true).0, "integer");
        assert_eq!(map_type(Dialect::Sqlite, Dialect::Postgres, &t, &t.columns[0], false).0, "bigint");
    }

    #[test]
    fn wide_decimals_stay_text_in_sqlite_and_say_so() {
        let t = Table { name: "t".into(), columns: vec![col("d", "numeric(30,10)")], ..Default::default() };
        let (ty, note) = map_type(Dialect::Postgres, Dialect::Sqlite, &t, &t.columns[0], true);
        assert_eq!(ty, "text");
        assert!(note.is_some());
    }
}
