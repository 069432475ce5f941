//! The migration script: Findings -> a plan per table -> SQL text rendered by tera from
//! `templates/<dialect>/script.sql.tera`.
//!
//! Rust decides what must happen (which tables SQLite must rebuild, how each new column is filled,
//! where a human must decide); the templates decide how it reads as SQL. Everything that cannot be
//! generated safely becomes a `-- TODO(rehearse):` line with a draft, and a script with one is never
//! run. Value expressions (CAST, CASE maps, COALESCE backfills) are built here from the dialect's
//! quoting, because they are fragments inside statements rather than statements.

use crate::diff::{Change, Diff, Kind};
use crate::engine::Dialect;
use crate::findings::{Finding, Verdict};
use crate::hints::Hints;
use crate::schema::{Family, Schema, Table};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Serialize)]
struct Ctx {
    engine: &'static str,
    version: &'static str,
    live_fingerprint: String,
    target_fingerprint: String,
    verdict: &'static str,
    summary: Vec<String>,
    renames: Vec<RenameTable>,
    creates: Vec<CreateTable>,
    sections: Vec<Section>,
    drops: Vec<DropTable>,
}

#[derive(Serialize)]
struct RenameTable {
    from: String,
    to: String,
}

#[derive(Serialize)]
struct CreateTable {
    name: String,
    q: String,
    create_sql: Option<String>,
    columns: Vec<ColumnDef>,
    constraints: Vec<String>,
    indexes: Vec<String>,
}

#[derive(Serialize)]
struct ColumnDef {
    q: String,
    data_type: String,
    nullable: bool,
    default: Option<String>,
}

#[derive(Serialize)]
struct DropTable {
    name: String,
    q: String,
    note: String,
    todo: Option<String>,
}

#[derive(Serialize, Default)]
struct Section {
    table: String,
    q: String,
    notes: Vec<String>,
    todos: Vec<Todo>,
    ops: Vec<Op>,
    rebuild: Option<Rebuild>,
}

#[derive(Serialize, Default)]
struct Todo {
    kind: String,
    text: String,
    samples: Vec<String>,
    q_table: String,
    q_column: String,
    q_columns: String,
    q_parent: String,
    q_parent_columns: String,
    failing: String,
    limit: u64,
    counts: String,
}

#[derive(Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Op {
    RenameColumn { q_table: String, from: String, to: String },
    AddColumn { q_table: String, column: ColumnDef },
    DropIndex { q_index: String },
    CreateIndex { sql: String },
}

#[derive(Serialize)]
struct Rebuild {
    q_table: String,
    q_new: String,
    create_sql: Option<String>,
    columns: Vec<ColumnDef>,
    constraints: Vec<String>,
    insert: Vec<Fill>,
    indexes: Vec<String>,
    triggers: Vec<String>,
}

#[derive(Serialize)]
struct Fill {
    q: String,
    expr: String,
    todo: Option<String>,
}

pub struct Inputs<'a> {
    pub dialect: Dialect,
    pub current: &'a Schema,
    pub target: &'a Schema,
    pub diff: &'a Diff,
    pub findings: &'a [Finding],
    pub hints: &'a Hints,
}

fn tera() -> anyhow::Result<tera::Tera> {
    let mut t = tera::Tera::default();
    t.add_raw_templates(vec![("sqlite/script.sql", include_str!("../templates/sqlite/script.sql.tera"))])?;
    t.autoescape_on(vec![]);
    Ok(t)
}

/// A finding that blocks the run: for a human, or a loss nobody accepted.
fn open(f: &Finding) -> bool {
    f.verdict == Verdict::Human || (f.verdict == Verdict::Lossy && !f.accepted)
}

pub fn render(inp: &Inputs) -> anyhow::Result<String> {
    let d = inp.dialect;
    let q = |s: &str| d.quote(s);
    let mut ctx = Ctx {
        engine: d.name(),
        version: env!("CARGO_PKG_VERSION"),
        live_fingerprint: inp.current.fingerprint(),
        target_fingerprint: inp.target.fingerprint(),
        verdict: crate::findings::overall(inp.findings).as_str(),
        summary: inp.findings.iter().map(|f| format!("[{}] {}", f.verdict.as_str(), f.message)).collect(),
        renames: vec![],
        creates: vec![],
        sections: vec![],
        drops: vec![],
    };
    for f in inp.findings {
        match f.kind {
            Kind::TableRenamed => ctx.renames.push(RenameTable { from: q(f.change.source_table()), to: q(&f.table) }),
            Kind::TableDropped => ctx.drops.push(DropTable {
                name: f.table.clone(),
                q: q(&f.table),
                note: f.message.clone(),
                todo: open(f).then(|| format!("{} Remove this line to accept the loss.", f.message)),
            }),
            Kind::TableAdded => {
                let t = inp.target.table(&f.table).expect("added table is in the target");
                ctx.creates.push(CreateTable {
                    name: t.name.clone(),
                    q: q(&t.name),
                    create_sql: t.create_sql.clone(),
                    columns: column_defs(t, d),
                    constraints: constraints(t, d),
                    indexes: index_sql(t, d),
                });
            }
            _ => {}
        }
    }
    // Kept tables with changes, in the target's foreign-key order.
    let mut by_table: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for f in inp.findings {
        if !matches!(f.kind, Kind::TableAdded | Kind::TableDropped | Kind::TableRenamed) {
            by_table.entry(f.table.as_str()).or_default().push(f);
        }
    }
    for t in inp.target.fk_order() {
        let Some(fs) = by_table.get(t.name.as_str()) else {
            continue;
        };
        ctx.sections.push(section(inp, t, fs));
    }
    let mut out = tera()?.render(&format!("{}/script.sql", d.name()), &tera::Context::from_serialize(&ctx)?)?;
    // Blank-line runs left by template conditionals.
    while out.contains("\n\n\n") {
        out = out.replace("\n\n\n", "\n\n");
    }
    Ok(out)
}

fn column_defs(t: &Table, d: Dialect) -> Vec<ColumnDef> {
    t.columns
        .iter()
        .map(|c| ColumnDef {
            q: d.quote(&c.name),
            data_type: c.data_type.clone(),
            nullable: c.nullable,
            default: c.default.clone(),
        })
        .collect()
}

/// Table constraints as DDL fragments, for engines or snapshots without the table's own DDL.
fn constraints(t: &Table, d: Dialect) -> Vec<String> {
    let list = |cols: &[String]| cols.iter().map(|c| d.quote(c)).collect::<Vec<_>>().join(", ");
    let mut out = Vec::new();
    if !t.primary_key.is_empty() {
        out.push(format!("PRIMARY KEY ({})", list(&t.primary_key)));
    }
    for u in &t.uniques {
        out.push(format!("UNIQUE ({})", list(&u.columns)));
    }
    for fk in &t.foreign_keys {
        let mut s = format!(
            "FOREIGN KEY ({}) REFERENCES {} ({})",
            list(&fk.columns),
            d.quote(&fk.ref_table),
            list(&fk.ref_columns)
        );
        if let Some(a) = &fk.on_delete {
            s.push_str(&format!(" ON DELETE {a}"));
        }
        if let Some(a) = &fk.on_update {
            s.push_str(&format!(" ON UPDATE {a}"));
        }
        out.push(s);
    }
    for c in &t.checks {
        out.push(format!("CHECK ({})", c.expr));
    }
    out
}

fn index_sql(t: &Table, d: Dialect) -> Vec<String> {
    t.indexes
        .iter()
        .map(|i| match &i.sql {
            Some(sql) => sql.clone(),
            None => format!(
                "CREATE {}INDEX {} ON {} ({}){}",
                if i.unique { "UNIQUE " } else { "" },
                d.quote(&i.name),
                d.quote(&t.name),
                i.columns.iter().map(|c| d.quote(c)).collect::<Vec<_>>().join(", "),
                i.predicate.as_ref().map(|p| format!(" WHERE {p}")).unwrap_or_default()
            ),
        })
        .collect()
}

/// Does SQLite's ALTER TABLE make this change in place, or must the table be rebuilt?
fn sqlite_in_place(f: &Finding) -> bool {
    match f.kind {
        Kind::ColumnRenamed | Kind::IndexAdded | Kind::IndexDropped => true,
        Kind::ColumnAdded => {
            let c = f.change.to.clone().unwrap_or_default();
            let constant_default = c.default.as_deref().is_none_or(|d| !d.contains('('));
            f.change.candidates.is_empty() && (c.nullable || c.default.is_some()) && constant_default
        }
        _ => false,
    }
}

fn section(inp: &Inputs, t: &Table, fs: &[&Finding]) -> Section {
    let d = inp.dialect;
    let q = |s: &str| d.quote(s);
    let map = inp.diff.kept.get(&t.name).cloned().unwrap_or_default();
    let mut s = Section { table: t.name.clone(), q: q(&t.name), ..Default::default() };
    for f in fs {
        s.notes.push(format!("[{}] {}", f.verdict.as_str(), f.message));
    }
    let rebuild = fs.iter().any(|f| !sqlite_in_place(f));
    // Section TODOs: clean-ups a human decides on, drafted against the current table.
    for f in fs.iter().filter(|f| open(f)) {
        // Table renames run first, so the section works on the new table name (old column names).
        if let Some(todo) = section_todo(inp, f, &t.name, &map.columns) {
            s.todos.push(todo);
        }
    }
    if !rebuild {
        for f in fs {
            match f.kind {
                Kind::ColumnRenamed => s.ops.push(Op::RenameColumn {
                    q_table: q(&t.name),
                    from: q(f.change.old_column.as_deref().unwrap_or_default()),
                    to: q(f.column.as_deref().unwrap_or_default()),
                }),
                Kind::ColumnAdded => {
                    let c = f.change.to.clone().unwrap_or_default();
                    s.ops.push(Op::AddColumn {
                        q_table: q(&t.name),
                        column: ColumnDef {
                            q: q(&c.name),
                            data_type: c.data_type,
                            nullable: c.nullable,
                            default: c.default,
                        },
                    })
                }
                Kind::IndexDropped => {
                    s.ops.push(Op::DropIndex { q_index: q(&f.change.index.clone().unwrap_or_default().name) })
                }
                Kind::IndexAdded => {
                    let idx = f.change.index.clone().unwrap_or_default();
                    let one = Table { name: t.name.clone(), indexes: vec![idx], ..Default::default() };
                    s.ops.push(Op::CreateIndex { sql: index_sql(&one, d).remove(0) });
                }
                _ => {}
            }
        }
        return s;
    }
    let by_col =
        |col: &str, kind: Kind| fs.iter().find(|f| f.kind == kind && f.column.as_deref() == Some(col)).copied();
    let mut insert = Vec::new();
    for c in &t.columns {
        let key = format!("{}.{}", t.name, c.name);
        let (expr, todo) = match map.columns.get(&c.name) {
            Some(old) => {
                let mut e = q(old);
                let mut todo = None;
                if let Some(f) = by_col(&c.name, Kind::ColumnTypeChanged) {
                    let from = f.change.from.clone().unwrap_or_default();
                    if let Some(vm) = inp.hints.values.get(&key) {
                        let whens: Vec<String> =
                            vm.iter().map(|(k, v)| format!("WHEN {} THEN {}", d.literal(k), d.literal(v))).collect();
                        e = format!("CASE CAST({e} AS TEXT) {} ELSE {e} END", whens.join(" "));
                    } else if Family::of(&from.data_type) != Family::of(&c.data_type) {
                        e = format!("CAST({e} AS {})", cast_type(&c.data_type));
                    }
                }
                if let Some(f) = by_col(&c.name, Kind::ColumnNullabilityChanged) {
                    if !c.nullable {
                        match inp.hints.defaults.get(&key) {
                            Some(dflt) => e = format!("COALESCE({e}, {dflt})"),
                            None if open(f) => {
                                todo = Some(format!(
                                    "{} Replace the expression below, e.g. COALESCE({e}, <value>).",
                                    f.message
                                ))
                            }
                            None => {}
                        }
                    }
                }
                (e, todo)
            }
            None => {
                let added = by_col(&c.name, Kind::ColumnAdded);
                match (added, inp.hints.defaults.get(&key)) {
                    (Some(f), _) if !f.change.candidates.is_empty() => (
                        q(&f.change.candidates[0]),
                        Some(format!(
                            "{} Drafted as the rename from {}: confirm it, or change the expression.",
                            f.message, f.change.candidates[0]
                        )),
                    ),
                    (_, Some(dflt)) => (dflt.clone(), None),
                    (Some(f), None) if open(f) => (
                        "NULL".into(),
                        Some(format!("{} Replace NULL below with the value for existing rows.", f.message)),
                    ),
                    _ => continue, // the column's own default (or NULL) fills it
                }
            }
        };
        insert.push(Fill { q: q(&c.name), expr, todo });
    }
    s.rebuild = Some(Rebuild {
        q_table: q(&t.name),
        q_new: q(&format!("{}__rehearse_new", t.name)),
        create_sql: t
            .create_sql
            .as_deref()
            .and_then(|sql| rename_in_create(sql, &q(&format!("{}__rehearse_new", t.name)))),
        columns: column_defs(t, d),
        constraints: constraints(t, d),
        insert,
        indexes: index_sql(t, d),
        triggers: t.triggers.clone(),
    });
    s
}

/// The type to CAST to: SQLite takes any declared type name; strip nothing.
fn cast_type(t: &str) -> String {
    t.to_string()
}

/// Replace the table name in a `CREATE TABLE name (...)` text.
pub fn rename_in_create(sql: &str, new_quoted: &str) -> Option<String> {
    let upper = sql.to_ascii_uppercase();
    let mut i = upper.find("TABLE")? + 5;
    let bytes = sql.as_bytes();
    let skip_ws = |i: &mut usize| {
        while *i < bytes.len() && (bytes[*i] as char).is_whitespace() {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    if upper[i..].starts_with("IF NOT EXISTS") {
        i += "IF NOT EXISTS".len();
        skip_ws(&mut i);
    }
    let start = i;
    // The name, possibly quoted, possibly schema-qualified.
    loop {
        let c = *bytes.get(i)? as char;
        match c {
            '"' | '`' | '[' => {
                let close = if c == '[' { ']' } else { c };
                i += 1;
                loop {
                    let ch = *bytes.get(i)? as char;
                    if ch == close {
                        if bytes.get(i + 1).map(|b| *b as char) == Some(close) && close != ']' {
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    i += 1;
                }
            }
            _ => {
                while i < bytes.len() && !(bytes[i] as char).is_whitespace() && bytes[i] != b'(' && bytes[i] != b'.' {
                    i += 1;
                }
            }
        }
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            continue;
        }
        break;
    }
    Some(format!("{}{}{}", &sql[..start], new_quoted, &sql[i..]))
}

fn section_todo(inp: &Inputs, f: &Finding, src: &str, cols: &BTreeMap<String, String>) -> Option<Todo> {
    let d = inp.dialect;
    let q = |s: &str| d.quote(s);
    let old = |c: &str| cols.get(c).cloned().unwrap_or_else(|| c.to_string());
    let ch: &Change = &f.change;
    let base = Todo {
        kind: f.kind.as_str().into(),
        text: f.message.clone(),
        samples: f.evidence.samples.clone(),
        q_table: q(src),
        ..Default::default()
    };
    let todo = match f.kind {
        // These are decided inline, at the expression that fills the column.
        Kind::ColumnAdded | Kind::ColumnNullabilityChanged => return None,
        Kind::ColumnDropped if !ch.candidates.is_empty() => return None,
        Kind::ColumnDropped => {
            Todo { kind: "loss".into(), text: format!("{} Remove this line to accept the loss.", f.message), ..base }
        }
        Kind::ColumnTypeChanged => {
            let c = q(ch.old_column.as_deref().or(ch.column.as_deref()).unwrap_or_default());
            let to = ch.to.clone().unwrap_or_default();
            let limit = crate::schema::char_limit(&to.data_type).unwrap_or(0);
            Todo { q_column: c, limit, ..base }
        }
        Kind::UniqueAdded | Kind::PrimaryKeyChanged => {
            let list: Vec<String> = ch.columns.iter().map(|c| q(&old(c))).collect();
            Todo { q_columns: list.join(", "), ..base }
        }
        Kind::ForeignKeyAdded => {
            let fk = ch.foreign_key.clone().unwrap_or_default();
            let list: Vec<String> = fk.columns.iter().map(|c| q(&old(c))).collect();
            let parent_cur =
                inp.diff.kept.get(&fk.ref_table).map(|m| m.current.clone()).unwrap_or(fk.ref_table.clone());
            let pcols: Vec<String> = fk
                .ref_columns
                .iter()
                .map(|c| {
                    q(&inp.diff.kept.get(&fk.ref_table).and_then(|m| m.columns.get(c).cloned()).unwrap_or(c.clone()))
                })
                .collect();
            Todo { q_columns: list.join(", "), q_parent: q(&parent_cur), q_parent_columns: pcols.join(", "), ..base }
        }
        _ => base,
    };
    Some(todo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_name_in_create_text_is_replaced_quoted_or_not() {
        assert_eq!(rename_in_create("CREATE TABLE t (a int)", "\"n\"").unwrap(), "CREATE TABLE \"n\" (a int)");
        assert_eq!(rename_in_create("create table \"my \"\"t\"\"\"(a)", "\"n\"").unwrap(), "create table \"n\"(a)");
        assert_eq!(
            rename_in_create("CREATE TABLE IF NOT EXISTS [x y] (a)", "\"n\"").unwrap(),
            "CREATE TABLE IF NOT EXISTS \"n\" (a)"
        );
    }
}
