//! The migration script: Findings -> a plan -> SQL text rendered by tera from
//! `templates/<dialect>/script.sql.tera`.
//!
//! Rust decides what must happen and in which order; the templates decide how each step reads as
//! SQL. Two plan shapes share this module: SQLite, whose ALTER TABLE can only rename and add, gets
//! in-place steps where it can and SQLite's documented table rebuild where it cannot; PostgreSQL
//! and MySQL get ALTER steps in phases that respect dependencies (foreign keys and indexes dropped
//! first, tables renamed and created, columns changed per table, indexes and foreign keys added,
//! tables dropped last).
//!
//! Everything that cannot be generated safely becomes a `-- TODO(rehearse):` line with a draft; a
//! script with one is never run. Value expressions (casts, CASE value maps, COALESCE backfills) are
//! built here because they are fragments inside statements, not statements.
//!
//! Every figure a verdict rests on gets a guard: the probe's own query under a
//! `-- guard(rehearse):` marker (crate::sqltext::Guard), placed where that query still reads what
//! the probe read. A guard never goes where an earlier step of the script has renamed or changed
//! what it reads: it then goes to the guards block before anything changes.

use crate::diff::{Diff, Kind, TableMap};
use crate::engine::Dialect;
use crate::findings::{Finding, Verdict};
use crate::hints::Hints;
use crate::probe::Figure;
use crate::schema::{Column, Family, Index, Schema, Table};
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
    /// Phases before the per-table sections (ALTER engines): foreign keys and indexes dropped.
    fk_drops: Vec<Op>,
    index_drops: Vec<Op>,
    renames: Vec<Op>,
    creates: Vec<CreateTable>,
    sections: Vec<Section>,
    /// Rows moved by splits and merges, after the tables exist and before anything is dropped.
    moves: Vec<Op>,
    /// Phases after the sections (ALTER engines): indexes and foreign keys added.
    index_adds: Vec<Op>,
    fk_adds: Vec<Op>,
    drops: Vec<DropTable>,
    /// Framework migration records brought in line with the new code's (crate::bookkeeping).
    records: Vec<String>,
    /// `CREATE TABLE rehearse_archive_... AS SELECT` of the data lossy changes remove, first thing.
    archives: Vec<String>,
    /// Guards whose query cannot run where their section starts: first of all, on the data as
    /// the probes saw it.
    guards: Vec<GuardStep>,
}

/// A guard as the script writes it: its marker line, then its query.
#[derive(Serialize, Clone, PartialEq)]
struct GuardStep {
    marker: String,
    sql: String,
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

#[derive(Serialize, Clone, Default)]
struct ColumnDef {
    q: String,
    data_type: String,
    nullable: bool,
    default: Option<String>,
    auto_increment: bool,
    identity: Option<String>,
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
    /// Guards first: the figures this section's steps and TODOs rely on.
    guards: Vec<GuardStep>,
    todos: Vec<Todo>,
    ops: Vec<Op>,
    rebuild: Option<Rebuild>,
}

#[derive(Serialize, Default, Clone)]
struct Todo {
    kind: String,
    text: String,
    samples: Vec<String>,
    q_table: String,
    q_column: String,
    q_columns: String,
    q_parent: String,
    q_parent_columns: String,
    limit: u64,
    /// Tables whose foreign keys point at this one: deleting its rows would orphan theirs.
    referenced_by: Vec<String>,
    /// Every key column accepts NULL, so duplicates can be cleared instead of deleted.
    nullable: bool,
    /// `"a" = NULL, "b" = NULL`: clearing a (composite) reference.
    set_null: String,
    /// `"a" IS NOT NULL AND "b" IS NOT NULL`: NULLs never collide in a unique key, so a draft
    /// must leave rows with a NULL key alone.
    keys_not_null: String,
    /// True for exactly the rows the orphan probe counted: every key column set, no parent.
    orphan_condition: String,
    /// A new uniqueness with duplicates: the de-duplication drafts. None when they cannot be
    /// written (a key the engine does not show, or a MySQL table without a primary key).
    dedupe: Option<Dedupe>,
    /// A type change: true for the values that will not convert (a script can evaluate it), for
    /// the clean-up draft; empty when only the report can list them.
    fails: String,
}

/// The fragments of the de-duplication drafts of a new uniqueness (unique key, primary key,
/// unique index): each duplicate group keeps its row with the lowest primary key, the others are
/// cleared (draft A) or deleted (draft B) after their referencing rows are re-pointed at the
/// kept row. Built here because they are conditions and correlated subqueries, not statements.
#[derive(Serialize, Default, Clone)]
struct Dedupe {
    /// The table's name as the section has it.
    table: String,
    /// Which row each group keeps, in words.
    keep: String,
    /// True for the rows a de-duplication removes, over the table aliased `d`: every key set
    /// (and the partial index's predicate), and a row of the same key with a lower primary key.
    cond: String,
    /// MySQL (which cannot read the table it deletes from in a subquery): the self-join
    /// `T d JOIN T k ON ...` that pairs each removed row with a lower one of its group.
    mysql_join: String,
    /// Draft A: `"a" = NULL, ...` (MySQL: `d."a" = NULL`); empty when a key column is NOT NULL
    /// now or in the target, or a key is an expression.
    clear: String,
    /// The rows removed, as the probe counted them.
    rows: i64,
    /// The table's name for the deleted rows' archive, quoted.
    q_archive: String,
    /// The guard marker for the count of removed rows, as it reads once uncommented.
    marker: String,
    /// The sysadmin hint that accepts the deletion (`accept_delete: { "t": 3 }`).
    hint: String,
    /// `UPDATE child SET ...` statements that re-point referencing rows at the kept row.
    repoints: Vec<String>,
    /// Referencing tables the drafts cannot re-point (composite foreign keys): named instead.
    named: Vec<String>,
}

/// One step of an ALTER plan (or an in-place step of a SQLite plan).
#[derive(Serialize, Clone)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Op {
    RenameTable {
        from: String,
        to: String,
        todo: Option<String>,
    },
    RenameColumn {
        q_table: String,
        from: String,
        to: String,
        todo: Option<String>,
        /// Draft B of a rename only a human can confirm: what replaces it when the new column is
        /// new (rendered commented out, above the rename, which is draft A).
        instead: Vec<Op>,
    },
    AddColumn {
        q_table: String,
        column: ColumnDef,
    },
    /// Statements written out in full (PostgreSQL identity and serial changes).
    Statements {
        sql: Vec<String>,
    },
    DropColumn {
        q_table: String,
        q_column: String,
    },
    /// `UPDATE t SET c = expr [WHERE c IS NULL]`; a TODO above it when a human must give `expr`.
    Backfill {
        q_table: String,
        q_column: String,
        expr: String,
        only_nulls: bool,
        todo: Option<String>,
    },
    AlterType {
        q_table: String,
        q_column: String,
        data_type: String,
        using: String,
    },
    SetNotNull {
        q_table: String,
        q_column: String,
    },
    DropNotNull {
        q_table: String,
        q_column: String,
    },
    SetDefault {
        q_table: String,
        q_column: String,
        default: String,
    },
    DropDefault {
        q_table: String,
        q_column: String,
    },
    /// MySQL: the column's whole definition at once (type, NULL, default).
    ModifyColumn {
        q_table: String,
        column: ColumnDef,
    },
    DropPrimaryKey {
        q_table: String,
        q_name: String,
    },
    DropUnique {
        q_table: String,
        q_name: String,
    },
    DropCheck {
        q_table: String,
        q_name: String,
    },
    DropForeignKey {
        q_table: String,
        q_name: String,
    },
    AddPrimaryKey {
        q_table: String,
        q_columns: String,
    },
    AddUnique {
        q_table: String,
        q_name: Option<String>,
        q_columns: String,
    },
    AddCheck {
        q_table: String,
        q_name: Option<String>,
        expr: String,
    },
    AddForeignKey {
        q_table: String,
        q_name: Option<String>,
        q_columns: String,
        q_ref_table: String,
        q_ref_columns: String,
        on_delete: Option<String>,
        on_update: Option<String>,
        deferrable: Option<String>,
    },
    DropIndex {
        q_table: String,
        q_index: String,
    },
    /// PostgreSQL `ALTER INDEX .. RENAME TO`, MySQL/MariaDB `ALTER TABLE .. RENAME INDEX`.
    RenameIndex {
        q_table: String,
        from: String,
        to: String,
    },
    /// PostgreSQL `ALTER TABLE .. RENAME CONSTRAINT` (its index is renamed with it).
    RenameConstraint {
        q_table: String,
        from: String,
        to: String,
    },
    CreateIndex {
        sql: String,
    },
    /// Split: `INSERT INTO part (cols) SELECT cols FROM old`.
    CopyRows {
        q_into: String,
        q_columns: String,
        q_from: String,
        todo: Option<String>,
    },
    /// Merge: `UPDATE into SET c = (SELECT m.c FROM merged m WHERE m.on = into.key), ...`.
    MergeColumns {
        q_into: String,
        sets: Vec<(String, String)>,
        q_from: String,
        q_on: String,
        q_key: String,
        todo: Option<String>,
    },
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
    /// AUTOINCREMENT: `sqlite_sequence` names (as literals) of the old and the new table, so the
    /// high-water mark survives the rebuild (ids of deleted rows are never handed out again).
    sequence: Option<(String, String)>,
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
    /// Statements from crate::bookkeeping, each with its comment line.
    pub records: &'a [String],
}

/// Every line as an SQL comment (`-- `): a draft to uncomment.
fn commented(value: &tera::Value, _: &std::collections::HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    let text = value.as_str().unwrap_or_default();
    Ok(tera::Value::String(text.lines().map(|l| format!("-- {l}\n")).collect()))
}

fn tera() -> anyhow::Result<tera::Tera> {
    let mut t = tera::Tera::default();
    t.add_raw_templates(vec![
        ("postgres/ops.sql", include_str!("../templates/postgres/ops.sql.tera")),
        ("mysql/ops.sql", include_str!("../templates/mysql/ops.sql.tera")),
        ("sqlite/script.sql", include_str!("../templates/sqlite/script.sql.tera")),
        ("postgres/script.sql", include_str!("../templates/postgres/script.sql.tera")),
        ("mysql/script.sql", include_str!("../templates/mysql/script.sql.tera")),
    ])?;
    t.autoescape_on(vec![]);
    t.register_filter("commented", commented);
    Ok(t)
}

/// A rename only a human can confirm ("did you rename A to B?"): no hint, and names that do not
/// say so.
fn asks(f: &Finding) -> bool {
    matches!(f.kind, Kind::ColumnRenamed | Kind::TableRenamed) && f.verdict == Verdict::Human
}

/// The rename of a column; for one only a human can confirm, a TODO and both drafts, commented
/// out, one to choose: A, the rename (the data is carried); B, drop the old column and add the new.
/// Choosing neither leaves the schema short of the target, so verification fails: nothing moves.
fn rename_column(d: Dialect, table: &str, f: &Finding) -> Op {
    let (q_table, old, new) =
        (d.quote(table), f.change.old_column.clone().unwrap_or_default(), f.column.clone().unwrap_or_default());
    let (todo, instead) = match asks(f) {
        false => (None, vec![]),
        true => (
            Some(format!(
                "{}. Uncomment draft A or draft B below (for draft B on a NOT NULL column without a default, answer no in `rehearse hints` instead: the script then asks for its value).",
                f.message
            )),
            vec![
                Op::DropColumn { q_table: q_table.clone(), q_column: d.quote(&old) },
                Op::AddColumn { q_table: q_table.clone(), column: column_def(&f.change.to.clone().unwrap_or_default(), d) },
            ],
        ),
    };
    Op::RenameColumn { q_table, from: d.quote(&old), to: d.quote(&new), todo, instead }
}

/// A finding that blocks the run: for a human, or a loss nobody accepted.
fn open(f: &Finding) -> bool {
    f.verdict == Verdict::Human || (f.verdict == Verdict::Lossy && !f.accepted)
}

fn list(d: Dialect, cols: &[String]) -> String {
    cols.iter().map(|c| d.quote(c)).collect::<Vec<_>>().join(", ")
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
        fk_drops: vec![],
        index_drops: vec![],
        renames: vec![],
        creates: vec![],
        sections: vec![],
        moves: vec![],
        index_adds: vec![],
        fk_adds: vec![],
        drops: vec![],
        records: inp.records.to_vec(),
        archives: archives(inp),
        guards: vec![],
    };
    for f in inp.findings {
        match f.kind {
            Kind::TableRenamed => {
                ctx.renames.push(Op::RenameTable {
                    from: q(f.change.source_table()),
                    to: q(&f.table),
                    todo: asks(f).then(|| {
                        format!(
                            "{} Draft A is the rename below (the rows are carried). Draft B, if {} is a new table and {}'s rows go: answer no in `rehearse hints` and rehearse again (the script then drops {} and creates {}).",
                            f.message,
                            f.table,
                            f.change.source_table(),
                            f.change.source_table(),
                            f.table
                        )
                    }),
                })
            }
            Kind::TableSplit | Kind::TableMerged => {
                ctx.moves.extend(moves(inp, f));
                ctx.drops.push(DropTable {
                    name: f.table.clone(),
                    q: q(&f.table),
                    note: f.message.clone(),
                    todo: (f.verdict == Verdict::Lossy && !f.accepted)
                        .then(|| format!("{}. Remove this line to accept the loss.", f.message)),
                });
            }
            Kind::TableDropped => ctx.drops.push(DropTable {
                name: f.table.clone(),
                q: q(&f.table),
                note: f.message.clone(),
                todo: open(f).then(|| format!("{}. Remove this line to accept the loss.", f.message)),
            }),
            Kind::TableAdded => {
                let t = inp.target.table(&f.table).expect("added table is in the target");
                let in_place = d != Dialect::Sqlite;
                ctx.creates.push(CreateTable {
                    name: t.name.clone(),
                    q: q(&t.name),
                    create_sql: t.create_sql.clone().filter(|_| d == Dialect::Sqlite),
                    columns: column_defs(t, d),
                    // ALTER engines add foreign keys (and indexes) in their own phases, so tables
                    // may reference each other in any order.
                    constraints: constraints(t, d, !in_place),
                    indexes: if in_place { vec![] } else { index_sql(t, d) },
                });
                if in_place {
                    ctx.index_adds.extend(index_sql(t, d).into_iter().map(|sql| Op::CreateIndex { sql }));
                    ctx.fk_adds.extend(t.foreign_keys.iter().map(|fk| add_fk(d, &t.name, fk)));
                }
            }
            _ => {}
        }
    }
    // Kept tables with changes, in the target's foreign-key order.
    let mut by_table: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for f in inp.findings {
        if !matches!(
            f.kind,
            Kind::TableAdded | Kind::TableDropped | Kind::TableRenamed | Kind::TableSplit | Kind::TableMerged
        ) {
            by_table.entry(f.table.as_str()).or_default().push(f);
        }
    }
    for t in inp.target.fk_order() {
        let Some(fs) = by_table.get(t.name.as_str()) else { continue };
        let mut s = match d {
            Dialect::Sqlite => sqlite_section(inp, t, fs),
            _ => alter_section(inp, t, fs, &mut ctx),
        };
        for f in fs {
            for (figure, g) in guards(f) {
                let block = if at_section_top(inp, f, figure) { &mut s.guards } else { &mut ctx.guards };
                if !block.contains(&g) {
                    block.push(g);
                }
            }
        }
        ctx.sections.push(s);
    }
    if d == Dialect::Mysql {
        let (drops, adds) = fks_around_type_changes(inp);
        ctx.fk_drops.extend(drops);
        ctx.fk_adds.extend(adds);
    }
    // Findings without a section of their own (dropped, split and merged tables).
    for f in inp.findings.iter().filter(|f| matches!(f.kind, Kind::TableDropped | Kind::TableSplit | Kind::TableMerged))
    {
        for (_, g) in guards(f) {
            if !ctx.guards.contains(&g) {
                ctx.guards.push(g);
            }
        }
    }
    let mut out = tera()?.render(&format!("{}/script.sql", d.name()), &tera::Context::from_serialize(&ctx)?)?;
    // Blank-line runs left by template conditionals.
    while out.contains("\n\n\n") {
        out = out.replace("\n\n\n", "\n\n");
    }
    Ok(out)
}

/// A finding's guards: each figure its verdict rests on, with the probe's own query for it.
fn guards(f: &Finding) -> Vec<(Figure, GuardStep)> {
    f.basis
        .iter()
        .filter_map(|(figure, label)| {
            let expect = f.evidence.value(*figure)?;
            let sql = f.evidence.queries.get(figure)?.clone();
            Some((*figure, GuardStep { marker: crate::sqltext::Guard::marker(expect, label), sql }))
        })
        .collect()
}

/// Whether the probe's query for a figure of a kept table's finding still reads, where that
/// table's section starts, exactly what it read on the clone. The sections run after the table
/// renames and after the sections of the tables before them (foreign-key order), but before any
/// step of their own: the table's own columns are as probed; a renamed table is not; another
/// table the query reads (an orphan probe's parent) may have been renamed or changed by its own
/// section; and a foreign key that cascades updates from a table whose section changes the
/// referenced columns may have changed this one's values.
fn at_section_top(inp: &Inputs, f: &Finding, figure: Figure) -> bool {
    let Some(map) = inp.diff.kept.get(&f.table) else { return false };
    if map.current != map.target {
        return false;
    }
    let touched = |table: &str, col: &str| {
        inp.findings
            .iter()
            .any(|g| g.table == table && g.kind != Kind::TableRenamed && g.column.as_deref() == Some(col))
    };
    let cascades_in = inp.current.table(&map.current).is_some_and(|t| {
        t.foreign_keys.iter().any(|fk| {
            let cascading = fk.on_update.as_deref().is_some_and(|a| !matches!(a, "NO ACTION" | "RESTRICT"));
            let parent = inp.diff.kept.values().find(|m| m.current == fk.ref_table);
            cascading
                && parent.is_some_and(|pm| {
                    pm.columns.iter().any(|(new, old)| fk.ref_columns.contains(old) && touched(&pm.target, new))
                })
        })
    });
    if cascades_in {
        return false;
    }
    if figure != Figure::Orphans || f.kind != Kind::ForeignKeyAdded {
        return true;
    }
    let fk = f.change.foreign_key.clone().unwrap_or_default();
    if fk.ref_table == f.table {
        return true; // its own table: nothing of it has changed yet
    }
    match inp.diff.kept.get(&fk.ref_table) {
        // A new parent: the probe's query does not read it (every set reference is an orphan).
        None => true,
        Some(pm) => pm.current == pm.target && !fk.ref_columns.iter().any(|c| touched(&pm.target, c)),
    }
}

fn column_def(c: &Column, d: Dialect) -> ColumnDef {
    ColumnDef {
        q: d.quote(&c.name),
        data_type: c.data_type.clone(),
        nullable: c.nullable,
        default: c.default.clone(),
        auto_increment: c.auto_increment,
        identity: c.identity.clone(),
    }
}

fn column_defs(t: &Table, d: Dialect) -> Vec<ColumnDef> {
    t.columns.iter().map(|c| column_def(c, d)).collect()
}

/// Table constraints as DDL fragments, for tables rendered from the model.
fn constraints(t: &Table, d: Dialect, with_fks: bool) -> Vec<String> {
    let named =
        |name: &Option<String>| name.as_ref().map(|n| format!("CONSTRAINT {} ", d.quote(n))).unwrap_or_default();
    let mut out = Vec::new();
    if !t.primary_key.is_empty() {
        out.push(format!("PRIMARY KEY ({})", list(d, &t.primary_key)));
    }
    for u in &t.uniques {
        out.push(format!("{}UNIQUE ({})", named(&u.name), list(d, &u.columns)));
    }
    if with_fks {
        for fk in &t.foreign_keys {
            let mut s = format!(
                "{}FOREIGN KEY ({}) REFERENCES {} ({})",
                named(&fk.name),
                list(d, &fk.columns),
                d.quote(&fk.ref_table),
                list(d, &fk.ref_columns)
            );
            if let Some(a) = &fk.on_delete {
                s.push_str(&format!(" ON DELETE {a}"));
            }
            if let Some(a) = &fk.on_update {
                s.push_str(&format!(" ON UPDATE {a}"));
            }
            if let Some(a) = &fk.deferrable {
                s.push_str(&format!(" {a}"));
            }
            out.push(s);
        }
    }
    for c in &t.checks {
        out.push(format!("{}CHECK ({})", named(&c.name), c.sql.as_deref().unwrap_or(&c.expr)));
    }
    out
}

fn one_index_sql(table: &str, i: &Index, d: Dialect) -> String {
    match &i.sql {
        Some(sql) => sql.clone(),
        None => format!(
            "CREATE {}INDEX {} ON {} ({}){}",
            if i.unique { "UNIQUE " } else { "" },
            d.quote(&i.name),
            d.quote(table),
            i.columns
                .iter()
                .map(|c| if c.contains('(') { c.clone() } else { d.quote(c) })
                .collect::<Vec<_>>()
                .join(", "),
            i.predicate.as_ref().map(|p| format!(" WHERE {p}")).unwrap_or_default()
        ),
    }
}

fn index_sql(t: &Table, d: Dialect) -> Vec<String> {
    t.indexes.iter().map(|i| one_index_sql(&t.name, i, d)).collect()
}

/// The archive copies of what lossy changes remove (a dropped table, a dropped column's values,
/// values a lossy type change alters), made before anything changes, so the data stays in the
/// database after the upgrade: `rehearse_archive_<table>[_<column>]`, key columns beside the
/// values. Off with `archive_losses: false` in the hints. rehearse never reads these tables back
/// (introspection leaves them out) and never drops them.
fn archives(inp: &Inputs) -> Vec<String> {
    if inp.hints.archive_losses == Some(false) {
        return vec![];
    }
    let d = inp.dialect;
    let mut out = Vec::new();
    for f in inp.findings.iter().filter(|f| f.verdict == Verdict::Lossy) {
        let ch = &f.change;
        let table = ch.source_table();
        let Some(current) = inp.current.table(table) else { continue };
        let (name, select) = match f.kind {
            Kind::TableDropped => (format!("rehearse_archive_{table}"), format!("SELECT * FROM {}", d.quote(table))),
            Kind::ColumnDropped | Kind::ColumnTypeChanged => {
                let col = ch.old_column.as_deref().or(ch.column.as_deref()).unwrap_or_default();
                if current.column(col).is_none() {
                    continue;
                }
                let mut cols: Vec<String> =
                    current.primary_key.iter().filter(|k| *k != col).map(|k| d.quote(k)).collect();
                if cols.is_empty() {
                    cols.push("*".into());
                } else {
                    cols.push(d.quote(col));
                }
                (
                    format!("rehearse_archive_{table}_{col}"),
                    format!("SELECT {} FROM {} WHERE {} IS NOT NULL", cols.join(", "), d.quote(table), d.quote(col)),
                )
            }
            _ => continue,
        };
        let name = if name.len() > 60 {
            let hash = crate::schema::sha256_hex(name.as_bytes());
            let mut cut = 50;
            while !name.is_char_boundary(cut) {
                cut -= 1;
            }
            format!("{}_{}", &name[..cut], &hash[..8])
        } else {
            name
        };
        out.push(format!("-- {}\nCREATE TABLE {} AS {select}", f.message, d.quote(&name)));
    }
    out
}

/// PostgreSQL: turn column `from` of `table` into `to`'s kind of generated value (identity
/// ALWAYS / BY DEFAULT, serial, or none), keeping its values and starting any new sequence
/// after the largest one. A serial's sequence is the one PostgreSQL names `<table>_<column>_seq`.
fn pg_identity_change(table: &str, from: &Column, to: &Column) -> Vec<String> {
    let d = Dialect::Postgres;
    let (qt, qc) = (d.quote(table), d.quote(&to.name));
    let alter = format!("ALTER TABLE {qt} ALTER COLUMN {qc}");
    let serial = |c: &Column| c.auto_increment && c.identity.is_none() && c.default.is_none();
    let seq = format!("{table}_{}_seq", to.name);
    let restart =
        |seq_expr: &str| format!("SELECT pg_catalog.setval({seq_expr}, coalesce(max({qc}), 0) + 1, false) FROM {qt}");
    let mut out = Vec::new();
    match (&from.identity, &to.identity) {
        (Some(_), Some(kind)) => return vec![format!("{alter} SET GENERATED {}", kind.to_uppercase())],
        (Some(_), None) => out.push(format!("{alter} DROP IDENTITY")),
        (None, _) if serial(from) => {
            out.push(format!("{alter} DROP DEFAULT"));
            out.push(format!("DROP SEQUENCE {}", d.quote(&seq)));
        }
        _ => {}
    }
    if let Some(kind) = &to.identity {
        out.push(format!("{alter} ADD GENERATED {} AS IDENTITY", kind.to_uppercase()));
        let expr = format!("pg_catalog.pg_get_serial_sequence({}, {})", d.literal(&qt), d.literal(&to.name));
        out.push(restart(&expr));
    } else if serial(to) {
        let as_type = match to.data_type.as_str() {
            t @ ("smallint" | "integer" | "bigint") => format!(" AS {t}"),
            _ => String::new(),
        };
        out.push(format!("CREATE SEQUENCE {}{as_type} OWNED BY {qt}.{qc}", d.quote(&seq)));
        let regclass = format!("{}::regclass", d.literal(&d.quote(&seq)));
        out.push(format!("{alter} SET DEFAULT nextval({regclass})"));
        out.push(restart(&regclass));
    }
    out
}

fn add_fk(d: Dialect, table: &str, fk: &crate::schema::ForeignKey) -> Op {
    Op::AddForeignKey {
        q_table: d.quote(table),
        q_name: fk.name.as_ref().map(|n| d.quote(n)),
        q_columns: list(d, &fk.columns),
        q_ref_table: d.quote(&fk.ref_table),
        q_ref_columns: list(d, &fk.ref_columns),
        on_delete: fk.on_delete.clone(),
        on_update: fk.on_update.clone(),
        deferrable: fk.deferrable.clone(),
    }
}

/// MySQL/MariaDB refuse to change the type of a column a foreign key uses, on either side (the
/// 32->64-bit key migration: `Cannot change column 'id': used in a foreign key constraint`). Every
/// kept foreign key whose columns or referenced columns change type is dropped before anything
/// changes and added back after the columns have their new types, as the target declares it (its
/// name and actions). Foreign keys that go away or change anyway are already in those phases.
fn fks_around_type_changes(inp: &Inputs) -> (Vec<Op>, Vec<Op>) {
    let d = inp.dialect;
    // (current table, current column) of every column whose type changes.
    let retyped: Vec<(&str, &str)> = inp
        .findings
        .iter()
        .filter(|f| f.kind == Kind::ColumnTypeChanged)
        .map(|f| {
            let col = f.change.old_column.as_deref().or(f.column.as_deref()).unwrap_or_default();
            (f.change.source_table(), col)
        })
        .collect();
    let dropped_anyway = |table: &str, fk: &crate::schema::ForeignKey| {
        inp.findings.iter().any(|f| {
            let renamed = f.kind == Kind::ConstraintRenamed && f.change.foreign_key.is_some();
            let gone =
                f.kind == Kind::ForeignKeyDropped && f.change.foreign_key.as_ref().is_some_and(|g| g.name == fk.name);
            f.change.source_table() == table && (gone || (renamed && f.change.old_name == fk.name))
        })
    };
    let (mut drops, mut adds) = (Vec::new(), Vec::new());
    for (current, map) in inp.diff.kept.values().map(|m| (inp.current.table(&m.current), m)) {
        let (Some(ct), Some(tt)) = (current, inp.target.table(&map.target)) else { continue };
        for fk in &ct.foreign_keys {
            let uses_retyped = fk.columns.iter().any(|c| retyped.contains(&(ct.name.as_str(), c.as_str())))
                || fk.ref_columns.iter().any(|c| retyped.contains(&(fk.ref_table.as_str(), c.as_str())));
            let Some(name) = fk.name.as_ref().filter(|_| uses_retyped && !dropped_anyway(&ct.name, fk)) else {
                continue;
            };
            // The same foreign key in the target: by name, the columns renamed along.
            let cols: Vec<String> = fk
                .columns
                .iter()
                .map(|c| map.columns.iter().find(|(_, o)| *o == c).map(|(n, _)| n.clone()).unwrap_or(c.clone()))
                .collect();
            let Some(kept) = tt.foreign_keys.iter().find(|g| g.name.as_ref() == Some(name) || g.columns == cols) else {
                continue;
            };
            drops.push(Op::DropForeignKey { q_table: d.quote(&ct.name), q_name: d.quote(name) });
            adds.push(add_fk(d, &tt.name, kept));
        }
    }
    (drops, adds)
}

/// Drafted pairings for ambiguous renames (target column -> current column): each added column
/// takes its most likely candidate that no other added column took first.
fn draft_pairs(fs: &[&Finding]) -> BTreeMap<String, String> {
    let mut taken: Vec<String> = Vec::new();
    let mut out = BTreeMap::new();
    for f in fs.iter().filter(|f| f.kind == Kind::ColumnAdded && !f.change.candidates.is_empty()) {
        if let Some(c) = f.change.candidates.iter().find(|c| !taken.contains(c)) {
            taken.push(c.clone());
            out.insert(f.column.clone().unwrap_or_default(), c.clone());
        }
    }
    out
}

/// The value a kept column gets: the old column, through a value map or a cast when its type
/// changes. `old` is the expression for the old value.
fn converted(inp: &Inputs, table: &str, c: &Column, from: &Column, old: &str) -> String {
    let d = inp.dialect;
    let key = format!("{table}.{}", c.name);
    if let Some(vm) = inp.hints.values.get(&key) {
        let whens: Vec<String> =
            vm.iter().map(|(k, v)| format!("WHEN {} THEN {}", d.literal(k), d.literal(v))).collect();
        let text = d.as_text(old);
        let case = format!("CASE {text} {} ELSE {text} END", whens.join(" "));
        return match d {
            Dialect::Postgres => format!("({case})::{}", c.data_type),
            _ => case,
        };
    }
    if from.data_type == c.data_type {
        return old.to_string();
    }
    match d {
        Dialect::Postgres => format!("({old})::{}", c.data_type),
        Dialect::Sqlite if Family::of(&from.data_type) != Family::of(&c.data_type) => {
            format!("CAST({old} AS {})", c.data_type)
        }
        _ => old.to_string(),
    }
}

/// Does SQLite's ALTER TABLE make this change in place, or must the table be rebuilt?
fn sqlite_in_place(f: &Finding) -> bool {
    match f.kind {
        Kind::ColumnRenamed | Kind::IndexAdded | Kind::IndexDropped | Kind::IndexRenamed => true,
        Kind::ColumnAdded => {
            let c = f.change.to.clone().unwrap_or_default();
            let constant_default = c.default.as_deref().is_none_or(|d| !d.contains('('));
            f.change.candidates.is_empty() && (c.nullable || c.default.is_some()) && constant_default
        }
        _ => false,
    }
}

fn section_header(inp: &Inputs, t: &Table, fs: &[&Finding], map: &TableMap) -> Section {
    let d = inp.dialect;
    let mut s = Section { table: t.name.clone(), q: d.quote(&t.name), ..Default::default() };
    for f in fs {
        s.notes.push(format!("[{}] {}", f.verdict.as_str(), f.message));
    }
    // Section TODOs: clean-ups a human decides on, drafted against the table as it is when the
    // section starts (table renames ran first; column names are still the old ones).
    for f in fs.iter().filter(|f| open(f)) {
        if let Some(todo) = section_todo(inp, f, &t.name, &map.columns) {
            s.todos.push(todo);
        }
    }
    s
}

fn sqlite_section(inp: &Inputs, t: &Table, fs: &[&Finding]) -> Section {
    let d = inp.dialect;
    let q = |s: &str| d.quote(s);
    let map = inp.diff.kept.get(&t.name).cloned().unwrap_or_default();
    let mut s = section_header(inp, t, fs, &map);
    if fs.iter().all(|f| sqlite_in_place(f)) {
        for f in fs {
            match f.kind {
                Kind::ColumnRenamed => s.ops.push(rename_column(d, &t.name, f)),
                Kind::ColumnAdded => s.ops.push(Op::AddColumn {
                    q_table: q(&t.name),
                    column: column_def(&f.change.to.clone().unwrap_or_default(), d),
                }),
                Kind::IndexDropped => s.ops.push(Op::DropIndex {
                    q_table: q(&t.name),
                    q_index: q(&f.change.index.clone().unwrap_or_default().name),
                }),
                Kind::IndexAdded => s.ops.push(Op::CreateIndex {
                    sql: one_index_sql(&t.name, &f.change.index.clone().unwrap_or_default(), d),
                }),
                // SQLite has no ALTER INDEX: the index is made again under the target's name.
                Kind::IndexRenamed => {
                    s.ops.push(Op::DropIndex {
                        q_table: q(&t.name),
                        q_index: q(f.change.old_name.as_deref().unwrap_or_default()),
                    });
                    s.ops.push(Op::CreateIndex {
                        sql: one_index_sql(&t.name, &f.change.index.clone().unwrap_or_default(), d),
                    });
                }
                _ => {}
            }
        }
        return s;
    }
    let by_col =
        |col: &str, kind: Kind| fs.iter().find(|f| f.kind == kind && f.column.as_deref() == Some(col)).copied();
    let drafts = draft_pairs(fs);
    let mut insert = Vec::new();
    for c in &t.columns {
        let key = format!("{}.{}", t.name, c.name);
        let (expr, todo) = match map.columns.get(&c.name) {
            Some(old) => {
                let from = inp.current.table(&map.current).and_then(|ct| ct.column(old)).cloned().unwrap_or_default();
                let mut e = converted(inp, &t.name, c, &from, &q(old));
                let mut todo = by_col(&c.name, Kind::ColumnRenamed).filter(|f| asks(f)).map(|f| {
                    format!(
                        "{} Draft A is the value below (the rename). Draft B, if {} is a new column and the values of {old} go: replace it with NULL (for a NOT NULL column without a default, answer no in `rehearse hints` instead: the script then asks for its value).",
                        f.message, c.name
                    )
                });
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
            None => match (drafts.get(&c.name), by_col(&c.name, Kind::ColumnAdded), inp.hints.defaults.get(&key)) {
                (Some(old), Some(f), _) => (
                    q(old),
                    Some(format!(
                        "{} Drafted as the rename from {old}: confirm it, or change the expression.",
                        f.message
                    )),
                ),
                (_, _, Some(dflt)) => (dflt.clone(), None),
                (_, Some(f), None) if open(f) => {
                    ("NULL".into(), Some(format!("{} Replace NULL below with the value for existing rows.", f.message)))
                }
                _ => continue, // the column's own default (or NULL) fills it
            },
        };
        insert.push(Fill { q: q(&c.name), expr, todo });
    }
    let new_name = format!("{}__rehearse_new", t.name);
    let q_new = q(&new_name);
    let sequence = t.columns.iter().any(|c| c.auto_increment).then(|| (d.literal(&t.name), d.literal(&new_name)));
    s.rebuild = Some(Rebuild {
        q_table: q(&t.name),
        create_sql: t.create_sql.as_deref().and_then(|sql| rename_in_create(sql, &q_new)),
        q_new,
        columns: column_defs(t, d),
        constraints: constraints(t, d, true),
        insert,
        indexes: index_sql(t, d),
        triggers: t.triggers.clone(),
        sequence,
    });
    s
}

/// An ALTER plan for one kept table (PostgreSQL, MySQL). Foreign keys and indexes go to the global
/// phases in `ctx`.
fn alter_section(inp: &Inputs, t: &Table, fs: &[&Finding], ctx: &mut Ctx) -> Section {
    let d = inp.dialect;
    let q = |s: &str| d.quote(s);
    let qt = q(&t.name);
    let map = inp.diff.kept.get(&t.name).cloned().unwrap_or_default();
    let current = inp.current.table(&map.current).cloned().unwrap_or_default();
    let mut s = section_header(inp, t, fs, &map);
    let drafts = draft_pairs(fs);
    let of = |kind: Kind| fs.iter().filter(move |f| f.kind == kind);
    let mysql = d == Dialect::Mysql;

    // Renames first: every later step names columns by their new names.
    for f in of(Kind::ColumnRenamed) {
        s.ops.push(rename_column(d, &t.name, f));
    }
    for (new, old) in &drafts {
        let f = of(Kind::ColumnAdded).find(|f| f.column.as_deref() == Some(new)).expect("draft of an added column");
        s.ops.push(Op::RenameColumn {
            q_table: qt.clone(),
            from: q(old),
            to: q(new),
            todo: Some(format!("{} Drafted as the rename from {old}: confirm it, or change it.", f.message)),
            instead: vec![],
        });
    }
    // Constraints that go away (or change) before the columns under them change.
    for f in of(Kind::PrimaryKeyChanged) {
        if !current.primary_key.is_empty() {
            let name = current.primary_key_name.clone().unwrap_or_else(|| format!("{}_pkey", current.name));
            s.ops.push(Op::DropPrimaryKey { q_table: qt.clone(), q_name: q(&name) });
        }
        let _ = f;
    }
    for f in of(Kind::UniqueDropped) {
        if let Some(name) = f.change.unique.as_ref().and_then(|u| u.name.clone()) {
            s.ops.push(Op::DropUnique { q_table: qt.clone(), q_name: q(&name) });
        }
    }
    for f in of(Kind::CheckDropped) {
        if let Some(name) = f.change.check.as_ref().and_then(|c| c.name.clone()) {
            s.ops.push(Op::DropCheck { q_table: qt.clone(), q_name: q(&name) });
        }
    }
    // New columns: added as declared when that is enough, else nullable, backfilled, tightened.
    for f in of(Kind::ColumnAdded) {
        let name = f.column.clone().unwrap_or_default();
        if drafts.contains_key(&name) {
            continue;
        }
        let c = f.change.to.clone().unwrap_or_default();
        let key = format!("{}.{name}", t.name);
        let backfill = inp.hints.defaults.get(&key).cloned();
        let needs_value = !c.nullable && c.default.is_none() && !c.auto_increment && f.evidence.rows.unwrap_or(0) > 0;
        if !needs_value && backfill.is_none() {
            s.ops.push(Op::AddColumn { q_table: qt.clone(), column: column_def(&c, d) });
            continue;
        }
        let relaxed = Column { nullable: true, ..c.clone() };
        s.ops.push(Op::AddColumn { q_table: qt.clone(), column: column_def(&relaxed, d) });
        let todo =
            backfill.is_none().then(|| format!("{} Replace NULL below with the value for existing rows.", f.message));
        s.ops.push(Op::Backfill {
            q_table: qt.clone(),
            q_column: q(&name),
            expr: backfill.unwrap_or_else(|| "NULL".into()),
            only_nulls: false,
            todo,
        });
        if !c.nullable {
            s.ops.push(tighten(d, &qt, &c));
        }
    }
    // Changed columns: value conversions, backfills of new NOT NULLs, defaults.
    for c in &t.columns {
        let Some(old) = map.columns.get(&c.name) else { continue };
        let Some(from) = current.column(old) else { continue };
        let changed = |k: Kind| fs.iter().find(|f| f.kind == k && f.column.as_deref() == Some(&c.name)).copied();
        let (ty, null, dflt) = (
            changed(Kind::ColumnTypeChanged),
            changed(Kind::ColumnNullabilityChanged),
            changed(Kind::ColumnDefaultChanged),
        );
        if ty.is_none() && null.is_none() && dflt.is_none() {
            continue;
        }
        let qc = q(&c.name);
        let key = format!("{}.{}", t.name, c.name);
        let not_null_backfill = null.filter(|_| !c.nullable).and_then(|f| {
            let nulls = f.evidence.nulls.unwrap_or(0);
            match inp.hints.defaults.get(&key) {
                Some(v) => Some((v.clone(), None)),
                None if nulls > 0 && open(f) => Some((
                    "NULL".to_string(),
                    Some(format!("{} Replace NULL below with the value for these rows.", f.message)),
                )),
                None => None,
            }
        });
        if mysql {
            // MySQL redefines the whole column at once; a value map is applied by an UPDATE on
            // whichever side of the MODIFY holds text.
            let map_update = ty.filter(|_| inp.hints.values.contains_key(&key)).map(|_| Op::Backfill {
                q_table: qt.clone(),
                q_column: qc.clone(),
                expr: converted(inp, &t.name, c, from, &qc),
                only_nulls: false,
                todo: None,
            });
            let to_text = Family::of(&c.data_type) == Family::Text;
            if let Some(op) = map_update.clone().filter(|_| !to_text) {
                s.ops.push(op);
            }
            if let Some((expr, todo)) = not_null_backfill {
                s.ops.push(Op::Backfill { q_table: qt.clone(), q_column: qc.clone(), expr, only_nulls: true, todo });
            }
            s.ops.push(Op::ModifyColumn { q_table: qt.clone(), column: column_def(c, d) });
            if let Some(op) = map_update.filter(|_| to_text) {
                s.ops.push(op);
            }
            continue;
        }
        if ty.is_some() {
            if dflt.is_some() || from.default.is_some() {
                // The old default may not cast to the new type: drop it first, set the new one after.
                s.ops.push(Op::DropDefault { q_table: qt.clone(), q_column: qc.clone() });
            }
            s.ops.push(Op::AlterType {
                q_table: qt.clone(),
                q_column: qc.clone(),
                data_type: c.data_type.clone(),
                using: converted(inp, &t.name, c, from, &qc),
            });
        }
        if let Some((expr, todo)) = not_null_backfill {
            s.ops.push(Op::Backfill { q_table: qt.clone(), q_column: qc.clone(), expr, only_nulls: true, todo });
        }
        if null.is_some() {
            s.ops.push(if c.nullable {
                Op::DropNotNull { q_table: qt.clone(), q_column: qc.clone() }
            } else {
                Op::SetNotNull { q_table: qt.clone(), q_column: qc.clone() }
            });
        }
        if d == Dialect::Postgres && from.value_source() != c.value_source() {
            s.ops.push(Op::Statements { sql: pg_identity_change(&t.name, from, c) });
            if c.auto_increment {
                continue;
            }
        }
        if dflt.is_some() || (ty.is_some() && from.default.is_some()) {
            s.ops.push(match &c.default {
                Some(v) => Op::SetDefault { q_table: qt.clone(), q_column: qc.clone(), default: v.clone() },
                None => Op::DropDefault { q_table: qt.clone(), q_column: qc.clone() },
            });
        }
    }
    for f in of(Kind::ColumnDropped) {
        let name = f.column.clone().unwrap_or_default();
        if drafts.values().any(|o| o == &name) {
            continue;
        }
        s.ops.push(Op::DropColumn { q_table: qt.clone(), q_column: q(&name) });
    }
    // New constraints, once the columns are in their final shape.
    if of(Kind::PrimaryKeyChanged).next().is_some() && !t.primary_key.is_empty() {
        s.ops.push(Op::AddPrimaryKey { q_table: qt.clone(), q_columns: list(d, &t.primary_key) });
    }
    for f in of(Kind::UniqueAdded) {
        let u = f.change.unique.clone().unwrap_or_default();
        s.ops.push(Op::AddUnique {
            q_table: qt.clone(),
            q_name: u.name.as_ref().map(|n| q(n)),
            q_columns: list(d, &u.columns),
        });
    }
    for f in of(Kind::CheckAdded) {
        let c = f.change.check.clone().unwrap_or_default();
        s.ops.push(Op::AddCheck {
            q_table: qt.clone(),
            q_name: c.name.as_ref().map(|n| q(n)),
            expr: c.sql.unwrap_or(c.expr),
        });
    }
    // Global phases.
    // Names become the target's, right after the table renames (so by the table's new name).
    for f in of(Kind::IndexRenamed).chain(of(Kind::ConstraintRenamed)) {
        let (from, to) =
            (q(f.change.old_name.as_deref().unwrap_or_default()), q(f.change.new_name.as_deref().unwrap_or_default()));
        let ch = &f.change;
        match (d, ch.kind()) {
            (_, Kind::IndexRenamed) => ctx.renames.push(Op::RenameIndex { q_table: qt.clone(), from, to }),
            (Dialect::Postgres, _) => ctx.renames.push(Op::RenameConstraint { q_table: qt.clone(), from, to }),
            // MySQL/MariaDB: a unique key is an index; a foreign key or a check has no RENAME, so it
            // is dropped and added again as the target declares it (a foreign key's own index is
            // renamed by its own index_renamed change, between the two).
            _ if ch.unique.is_some() => ctx.renames.push(Op::RenameIndex { q_table: qt.clone(), from, to }),
            _ if ch.foreign_key.is_some() => {
                ctx.fk_drops.push(Op::DropForeignKey { q_table: q(&map.current), q_name: from });
                ctx.fk_adds.push(add_fk(d, &t.name, ch.foreign_key.as_ref().expect("checked")));
            }
            _ => {
                let c = ch.check.clone().unwrap_or_default();
                s.ops.push(Op::DropCheck { q_table: qt.clone(), q_name: from });
                s.ops.push(Op::AddCheck { q_table: qt.clone(), q_name: Some(to), expr: c.sql.unwrap_or(c.expr) });
            }
        }
    }
    for f in of(Kind::IndexDropped) {
        let idx = f.change.index.clone().unwrap_or_default();
        ctx.index_drops.push(Op::DropIndex { q_table: q(&map.current), q_index: q(&idx.name) });
    }
    for f in of(Kind::IndexAdded) {
        ctx.index_adds
            .push(Op::CreateIndex { sql: one_index_sql(&t.name, &f.change.index.clone().unwrap_or_default(), d) });
    }
    for f in of(Kind::ForeignKeyDropped) {
        if let Some(name) = f.change.foreign_key.as_ref().and_then(|fk| fk.name.clone()) {
            ctx.fk_drops.push(Op::DropForeignKey { q_table: q(&map.current), q_name: q(&name) });
        }
    }
    for f in of(Kind::ForeignKeyAdded) {
        ctx.fk_adds.push(add_fk(d, &t.name, &f.change.foreign_key.clone().unwrap_or_default()));
    }
    s
}

/// The row moves of a split (one INSERT ... SELECT per new table, in foreign-key order) or a merge
/// (one UPDATE from a correlated subquery). Without a confirming hint they carry a TODO.
fn moves(inp: &Inputs, f: &Finding) -> Vec<Op> {
    let d = inp.dialect;
    let q = |s: &str| d.quote(s);
    let todo = (f.verdict == Verdict::Human).then(|| f.message.clone());
    let Some(old) = inp.current.table(&f.table) else { return vec![] };
    match f.kind {
        Kind::TableSplit => inp
            .target
            .fk_order()
            .into_iter()
            .filter(|t| f.change.parts.contains(&t.name))
            .enumerate()
            .map(|(i, part)| {
                let cols: Vec<String> =
                    part.columns.iter().filter(|c| old.column(&c.name).is_some()).map(|c| c.name.clone()).collect();
                Op::CopyRows {
                    q_into: q(&part.name),
                    q_columns: list(d, &cols),
                    q_from: q(&f.table),
                    todo: todo.clone().filter(|_| i == 0),
                }
            })
            .collect(),
        Kind::TableMerged => {
            let (on, key) = f.change.join.clone().unwrap_or_default();
            let into = f.change.parts.first().cloned().unwrap_or_default();
            vec![Op::MergeColumns {
                q_into: q(&into),
                sets: f.change.columns.iter().map(|c| (q(c), q(c))).collect(),
                q_from: q(&f.table),
                q_on: q(&on),
                q_key: q(&key),
                todo,
            }]
        }
        _ => vec![],
    }
}

/// NOT NULL after a backfill.
fn tighten(d: Dialect, qt: &str, c: &Column) -> Op {
    match d {
        Dialect::Mysql => Op::ModifyColumn { q_table: qt.to_string(), column: column_def(c, d) },
        _ => Op::SetNotNull { q_table: qt.to_string(), q_column: d.quote(&c.name) },
    }
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

fn section_todo(inp: &Inputs, f: &Finding, table_now: &str, cols: &BTreeMap<String, String>) -> Option<Todo> {
    let d = inp.dialect;
    let q = |s: &str| d.quote(s);
    let old = |c: &str| cols.get(c).cloned().unwrap_or_else(|| c.to_string());
    let ch = &f.change;
    let base = Todo {
        kind: f.kind.as_str().into(),
        text: f.message.clone(),
        samples: f.evidence.samples.clone(),
        q_table: q(table_now),
        ..Default::default()
    };
    let todo = match f.kind {
        // These are decided inline, at the step that fills the column.
        Kind::ColumnAdded | Kind::ColumnNullabilityChanged => return None,
        // A rename only a human can confirm carries its TODO and both drafts at the rename.
        Kind::ColumnRenamed | Kind::TableRenamed => return None,
        Kind::ColumnDropped if !ch.candidates.is_empty() => return None,
        Kind::ColumnDropped => {
            Todo { kind: "loss".into(), text: format!("{}. Remove this line to accept the loss.", f.message), ..base }
        }
        Kind::ColumnTypeChanged => {
            let c = q(ch.old_column.as_deref().or(ch.column.as_deref()).unwrap_or_default());
            let to = ch.to.clone().unwrap_or_default();
            let limit = crate::schema::char_limit(&to.data_type).unwrap_or(0);
            // Clearing a value is a draft only where the column may hold NULL after the script.
            let fails = match (&f.evidence.converts, to.nullable) {
                (Some(cond), true) => format!("{c} IS NOT NULL AND NOT ({cond})"),
                _ => String::new(),
            };
            Todo { q_column: c, limit, nullable: to.nullable, fails, ..base }
        }
        _ if ch.adds_uniqueness() => {
            let source = inp.diff.kept.get(&f.table).map(|m| m.current.clone()).unwrap_or(f.table.clone());
            let current = inp.current.table(&source);
            let olds: Vec<String> = ch.columns.iter().map(|c| old(c)).collect();
            let dedupe = current.and_then(|ct| dedupe(inp, f, ct, table_now, &olds));
            Todo {
                kind: "unique_added".into(),
                q_columns: list(d, &olds),
                keys_not_null: olds.iter().map(|c| format!("{} IS NOT NULL", q(c))).collect::<Vec<_>>().join(" AND "),
                referenced_by: dedupe.as_ref().map(|x| x.named.clone()).unwrap_or_else(|| {
                    inp.current
                        .tables
                        .iter()
                        .filter(|t| t.foreign_keys.iter().any(|fk| fk.ref_table == source))
                        .map(|t| t.name.clone())
                        .collect()
                }),
                nullable: dedupe.as_ref().is_some_and(|x| !x.clear.is_empty()),
                dedupe,
                ..base
            }
        }
        Kind::ForeignKeyAdded => {
            let fk = ch.foreign_key.clone().unwrap_or_default();
            let parent = inp.diff.kept.get(&fk.ref_table);
            let parent_now = parent.map(|m| m.target.clone()).unwrap_or(fk.ref_table.clone());
            // Sections run in the target's foreign-key order: a parent's own section (and the
            // column renames in it) ran before this one, so its columns have their new names
            // here; only a table referencing itself (or a cycle) still has the old ones.
            let order: Vec<String> = inp.target.fk_order().iter().map(|t| t.name.clone()).collect();
            let position = |name: &str| order.iter().position(|n| n == name);
            let parent_ran = fk.ref_table != ch.table
                && matches!((position(&fk.ref_table), position(&ch.table)), (Some(p), Some(c)) if p < c);
            let pcols: Vec<String> = fk
                .ref_columns
                .iter()
                .map(|c| match parent_ran {
                    true => c.clone(),
                    false => parent.and_then(|m| m.columns.get(c).cloned()).unwrap_or(c.clone()),
                })
                .collect();
            let ccols: Vec<String> = fk.columns.iter().map(|c| old(c)).collect();
            let qt = q(table_now);
            let set: Vec<String> = ccols.iter().map(|c| format!("{} = NULL", q(c))).collect();
            let not_null: Vec<String> = ccols.iter().map(|c| format!("{qt}.{} IS NOT NULL", q(c))).collect();
            let join: Vec<String> =
                ccols.iter().zip(&pcols).map(|(c, p)| format!("p.{} = {qt}.{}", q(p), q(c))).collect();
            // Clearing the reference is a draft only where the target lets the columns be NULL.
            let target_t = inp.target.table(&ch.table);
            let nullable = fk.columns.iter().all(|c| target_t.and_then(|t| t.column(c)).is_some_and(|c| c.nullable));
            Todo {
                nullable,
                q_columns: list(d, &ccols),
                q_parent: q(&parent_now),
                q_parent_columns: list(d, &pcols),
                set_null: set.join(", "),
                orphan_condition: format!(
                    "{} AND NOT EXISTS (SELECT 1 FROM {} p WHERE {})",
                    not_null.join(" AND "),
                    q(&parent_now),
                    join.join(" AND ")
                ),
                ..base
            }
        }
        _ => base,
    };
    Some(todo)
}

/// The de-duplication drafts of a new uniqueness on `ct` (the current table, whose name is now
/// `table_now`) over its current key columns `olds` (expressions as the target writes them).
fn dedupe(inp: &Inputs, f: &Finding, ct: &Table, table_now: &str, olds: &[String]) -> Option<Dedupe> {
    let d = inp.dialect;
    let q = |s: &str| d.quote(s);
    let qt = q(table_now);
    let is_column = |c: &str| ct.column(c).is_some();
    if olds.iter().any(|c| c == "<expr>") {
        return None;
    }
    // The row each group keeps: the lowest primary key; without one, the engine's row address.
    let (pk, keep): (Vec<String>, String) = match (ct.primary_key.is_empty(), d) {
        (false, _) => (
            ct.primary_key.iter().map(|c| q(c)).collect(),
            format!("the row with the lowest {} of each duplicate group", ct.primary_key.join(", ")),
        ),
        (true, Dialect::Sqlite) => {
            (vec!["rowid".into()], "the first row stored of each duplicate group (the table has no primary key)".into())
        }
        (true, Dialect::Postgres) => {
            (vec!["ctid".into()], "the first row stored of each duplicate group (the table has no primary key)".into())
        }
        (true, Dialect::Mysql) => return None,
    };
    let row = |alias: &str| {
        let cols: Vec<String> = pk.iter().map(|c| format!("{alias}.{c}")).collect();
        if cols.len() == 1 {
            cols[0].clone()
        } else {
            format!("({})", cols.join(", "))
        }
    };
    let pred = f.change.key_predicate().map(|p| format!("({p})"));
    // A plain key column compares as `k.a = d.a`; an expression, written unqualified, as the
    // value it has in `k` against the value it has in the row `d` (read again by its key).
    let same_key: Vec<String> = olds
        .iter()
        .map(|c| match is_column(c) {
            true => format!("k.{0} = d.{0}", q(c)),
            false => format!("{c} = (SELECT {c} FROM {qt} x WHERE {} = {})", row("x"), row("d")),
        })
        .collect();
    let key = |alias: &str, c: &str| if is_column(c) { format!("{alias}.{}", q(c)) } else { c.to_string() };
    let mut inner = same_key.clone();
    inner.extend(pred.clone());
    inner.push(format!("{} < {}", row("k"), row("d")));
    let mut cond: Vec<String> = olds.iter().map(|c| format!("{} IS NOT NULL", key("d", c))).collect();
    cond.extend(pred.clone());
    cond.push(format!("EXISTS (SELECT 1 FROM {qt} k WHERE {})", inner.join(" AND ")));
    let cond = cond.join(" AND ");
    let mut join = same_key;
    join.push(format!("{} < {}", row("k"), row("d")));
    // Draft A only where NULL is a value every key column may hold, now and after the script.
    let target_t = inp.target.table(&f.table);
    let nullable_everywhere = |c: &str| {
        let target_name =
            inp.diff.kept.get(&f.table).and_then(|m| m.columns.iter().find(|(_, o)| *o == c)).map(|(n, _)| n.clone());
        ct.column(c).is_some_and(|col| col.nullable)
            && target_name.is_some_and(|n| target_t.and_then(|t| t.column(&n)).is_some_and(|col| col.nullable))
    };
    let clear = if f.kind == Kind::PrimaryKeyChanged || !olds.iter().all(|c| is_column(c) && nullable_everywhere(c)) {
        String::new()
    } else {
        let prefix = if d == Dialect::Mysql { "d." } else { "" };
        olds.iter().map(|c| format!("{prefix}{} = NULL", q(c))).collect::<Vec<_>>().join(", ")
    };
    // Referencing rows: re-pointed at the kept row where the reference is one column (MySQL:
    // from another table, since it cannot update a table it reads in a subquery); named otherwise.
    let mut repoints = Vec::new();
    let mut named = Vec::new();
    for child in &inp.current.tables {
        for fk in child.foreign_keys.iter().filter(|fk| fk.ref_table == ct.name) {
            let child_now = inp
                .diff
                .kept
                .values()
                .find(|m| m.current == child.name)
                .map(|m| m.target.clone())
                .unwrap_or(child.name.clone());
            let (qc, self_ref) = (q(&child_now), child.name == ct.name);
            match (fk.columns.as_slice(), fk.ref_columns.as_slice()) {
                ([fc], [rc]) if !(self_ref && d == Dialect::Mysql) => {
                    let (fc, rc) = (q(fc), q(rc));
                    let keys: Vec<String> = olds.iter().map(|c| key("k", c)).collect();
                    let dkeys: Vec<String> = olds.iter().map(|c| key("d", c)).collect();
                    let tuple = |v: &[String]| if v.len() == 1 { v[0].clone() } else { format!("({})", v.join(", ")) };
                    let mut kept = vec![format!(
                        "{} = (SELECT {} FROM {qt} d WHERE d.{rc} = {qc}.{fc})",
                        tuple(&keys),
                        dkeys.join(", ")
                    )];
                    kept.extend(pred.clone());
                    let order: Vec<String> = pk.iter().map(|c| format!("k.{c}")).collect();
                    repoints.push(format!(
                        "UPDATE {qc} SET {fc} = (SELECT k.{rc} FROM {qt} k WHERE {} ORDER BY {} LIMIT 1) WHERE {fc} IN (SELECT d.{rc} FROM {qt} d WHERE {cond})",
                        kept.join(" AND "),
                        order.join(", ")
                    ));
                }
                _ => named.push(format!("{child_now}({})", fk.columns.join(", "))),
            }
        }
    }
    let rows = f.evidence.duplicate_rows.unwrap_or(0);
    let mut archive = format!("rehearse_archive_{table_now}_duplicates");
    if archive.len() > 60 {
        let hash = crate::schema::sha256_hex(archive.as_bytes());
        let mut cut = 50;
        while !archive.is_char_boundary(cut) {
            cut -= 1;
        }
        archive = format!("{}_{}", &archive[..cut], &hash[..8]);
    }
    Some(Dedupe {
        table: table_now.to_string(),
        keep,
        cond,
        mysql_join: join.join(" AND "),
        clear,
        rows,
        q_archive: q(&archive),
        marker: crate::sqltext::Guard::marker(
            rows,
            &format!("{} of {table_now} that the de-duplication removes", if rows == 1 { "row" } else { "rows" }),
        ),
        hint: format!("accept_delete: {{ {}: {rows} }}", serde_json::Value::from(table_now)),
        repoints,
        named,
    })
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
