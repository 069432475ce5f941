//! Framework migration records: the rows in which Django, Alembic, Rails, knex, Doctrine or
//! Entity Framework note which migrations a database has had. The new code's schema command writes
//! them into the scratch database; the test copy still holds live's. Left alone, the new code
//! pointed at the migrated copy (or at live after `--live`) would run its migrations again on a
//! schema that already has them. So the script ends with the statements that make these rows what
//! the new code wrote: inserts of the records it has and live lacks (and, for tables that hold
//! only the current version, deletes of the old one).

use crate::engine::{Connection, Dialect, Row};
use crate::schema::{Family, Schema, Table};

/// Known record tables: name, the columns that identify a record, and whether the table holds
/// only the current version (its other rows are deleted).
const KNOWN: &[(&str, &[&str], bool)] = &[
    ("django_migrations", &["app", "name"], false),
    ("alembic_version", &["version_num"], true),
    ("schema_migrations", &["version"], false), // Rails (golang-migrate's has `dirty`: see below)
    ("knex_migrations", &["name"], false),
    ("doctrine_migration_versions", &["version"], false),
    ("__EFMigrationsHistory", &["MigrationId"], false),
];

/// The rows of the record tables the new code's schema command wrote, read from the scratch.
#[derive(Debug, Clone, Default)]
pub struct Records {
    pub tables: Vec<TableRecords>,
}

#[derive(Debug, Clone)]
pub struct TableRecords {
    pub table: String,
    pub key: Vec<String>,
    pub replace: bool,
    /// The columns read, in order (auto-increment columns left out: the database numbers them).
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
}

fn known(t: &Table) -> Option<(Vec<String>, bool)> {
    let (_, key, replace) = KNOWN.iter().find(|(name, _, _)| *name == t.name)?;
    if !key.iter().all(|k| t.column(k).is_some()) {
        return None;
    }
    // golang-migrate's schema_migrations (version, dirty) holds one row: the current version.
    let replace = *replace || (t.name == "schema_migrations" && t.column("dirty").is_some());
    Some((key.iter().map(|k| k.to_string()).collect(), replace))
}

/// Read the record tables of `scratch` (the database the new code's schema command built).
pub fn read(conn: &mut dyn Connection, dialect: Dialect, scratch: &Schema) -> anyhow::Result<Records> {
    let mut tables = Vec::new();
    for t in &scratch.tables {
        let Some((key, replace)) = known(t) else { continue };
        let columns: Vec<String> = t.columns.iter().filter(|c| !c.auto_increment).map(|c| c.name.clone()).collect();
        let rows = select(conn, dialect, &t.name, &columns)?;
        tables.push(TableRecords { table: t.name.clone(), key, replace, columns, rows });
    }
    Ok(Records { tables })
}

fn select(conn: &mut dyn Connection, d: Dialect, table: &str, columns: &[String]) -> anyhow::Result<Vec<Row>> {
    let list: Vec<String> = columns.iter().map(|c| d.as_text(&d.quote(c))).collect();
    conn.query(&format!("SELECT {} FROM {}", list.join(", "), d.quote(table)))
}

/// The statements that make the record tables of the database behind `conn` (the test copy,
/// whose schema is `current`) hold what the new code wrote, each preceded by a comment line.
/// Tables the script creates get every record; `target` gives the column types.
pub fn statements(
    conn: &mut dyn Connection,
    d: Dialect,
    records: &Records,
    current: &Schema,
    target: &Schema,
) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for r in &records.tables {
        let Some(tt) = target.table(&r.table) else { continue };
        let key_at: Vec<usize> = r.key.iter().filter_map(|k| r.columns.iter().position(|c| c == k)).collect();
        let key_of = |row: &Row| -> Vec<Option<String>> { key_at.iter().map(|&i| row[i].clone()).collect() };
        let have: Vec<Row> = match current.table(&r.table) {
            Some(ct) if r.key.iter().all(|k| ct.column(k).is_some()) => select(conn, d, &r.table, &r.key)?,
            _ => vec![],
        };
        let want_keys: Vec<Vec<Option<String>>> = r.rows.iter().map(key_of).collect();
        let where_key = |key: &[Option<String>]| -> String {
            r.key
                .iter()
                .zip(key)
                .map(|(c, v)| match v {
                    Some(v) => format!("{} = {}", d.as_text(&d.quote(c)), d.literal(v)),
                    None => format!("{} IS NULL", d.quote(c)),
                })
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        if r.replace {
            for key in have.iter().filter(|k| !want_keys.contains(k)) {
                out.push(format!(
                    "-- {}: the new code's current version replaces this one\nDELETE FROM {} WHERE {}",
                    r.table,
                    d.quote(&r.table),
                    where_key(key)
                ));
            }
        }
        for row in r.rows.iter().filter(|row| !have.contains(&key_of(row))) {
            let values: Vec<String> = r
                .columns
                .iter()
                .zip(row)
                .map(|(c, v)| {
                    let temporal = tt.column(c).is_some_and(|col| Family::of(&col.data_type) == Family::Temporal);
                    match v {
                        // When the migration is applied is now, not when the scratch got it.
                        Some(_) if temporal => "CURRENT_TIMESTAMP".to_string(),
                        Some(v) => d.literal(v),
                        None => "NULL".to_string(),
                    }
                })
                .collect();
            let cols: Vec<String> = r.columns.iter().map(|c| d.quote(c)).collect();
            out.push(format!(
                "-- {}: recorded by the new code ({})\nINSERT INTO {} ({}) VALUES ({})",
                r.table,
                key_of(row).iter().map(|v| v.clone().unwrap_or_else(|| "NULL".into())).collect::<Vec<_>>().join(" "),
                d.quote(&r.table),
                cols.join(", "),
                values.join(", ")
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Column;

    fn table(name: &str, cols: &[&str]) -> Table {
        Table {
            name: name.into(),
            columns: cols
                .iter()
                .map(|c| Column { name: c.to_string(), data_type: "text".into(), nullable: true, ..Default::default() })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn only_known_tables_with_their_key_columns_are_records() {
        assert!(!known(&table("django_migrations", &["id", "app", "name", "applied"])).unwrap().1);
        assert!(known(&table("django_migrations", &["id", "name"])).is_none(), "key column missing");
        assert!(known(&table("migrations", &["id", "migration"])).is_none(), "too generic a name to guess");
        assert!(known(&table("alembic_version", &["version_num"])).unwrap().1, "one current version");
        assert!(known(&table("schema_migrations", &["version", "dirty"])).unwrap().1, "golang-migrate");
        assert!(!known(&table("schema_migrations", &["version"])).unwrap().1, "Rails keeps every version");
    }
}
