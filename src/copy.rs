//! `rehearse copy`: move tables and rows from one database (or folder) to another, across
//! engines. The source's neutral Schema is translated for the target (copy/mapping.rs, documented
//! in docs/copy.md); tables are created with their primary keys only, rows stream through in
//! bounded pages (never a whole table in memory; a reading thread hashes and encodes a page while
//! the main thread writes the one before), then indexes, uniques, foreign keys and checks follow,
//! and identity/serial/AUTO_INCREMENT counters restart after the largest value. Each table is
//! verified by row count and an order-independent checksum of its values read back from both
//! sides. A failure drops the tables the copy created.
//!
//! It must never write to the source (opened read-only), never touch a target table that holds
//! rows unless told to empty it, never drop a table it did not create, and never copy a database
//! onto itself.

mod dir;
mod mapping;
mod pgbinary;
mod values;

use crate::engine::{self, Access, Connection, Dialect, Engine, Row};
use crate::exit::{self, Refused, UsageError};
use crate::schema::{Family, Schema, Table};
use anyhow::Context;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::time::Instant;
use values::Checksum;

/// SQL text of one multi-row INSERT stays under this many bytes (MariaDB's max_allowed_packet is
/// 16 MiB by default).
const MAX_STATEMENT_BYTES: usize = 4 << 20;

pub struct Options {
    pub from: String,
    pub to: String,
    /// Only these tables (all when empty).
    pub tables: Vec<String>,
    /// Empty target tables that already hold rows instead of refusing.
    pub truncate: bool,
    /// Rows per page read and per INSERT.
    pub batch: usize,
    /// Show per-table progress on stderr (only when it is a terminal).
    pub progress: bool,
    /// Text columns that become jsonb on a PostgreSQL target.
    pub json_columns: JsonColumns,
}

impl Options {
    /// Every table of `from` into `to` as it is (no jsonb, nothing emptied), with progress: the
    /// copies other commands make (`rehearse backup`, an engine switch's clone).
    pub fn whole(from: String, to: String, batch: usize) -> Options {
        Options { from, to, tables: vec![], truncate: false, batch, progress: true, json_columns: JsonColumns::None }
    }
}

/// `--json-columns`: which text columns become jsonb on a PostgreSQL target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonColumns {
    None,
    /// Every text column of a created table whose non-NULL values are all JSON objects or arrays
    /// (and at least one value is): a column of plain numbers or words stays text.
    Auto,
    /// These `table.column`s, whatever they hold (a value that is not JSON fails the copy).
    Listed(Vec<(String, String)>),
}

impl std::str::FromStr for JsonColumns {
    type Err = String;

    fn from_str(s: &str) -> Result<JsonColumns, String> {
        match s {
            "none" => Ok(JsonColumns::None),
            "auto" => Ok(JsonColumns::Auto),
            list => list
                .split(',')
                .map(|tc| match tc.trim().split_once('.') {
                    Some((t, c)) if !t.is_empty() && !c.is_empty() => Ok((t.to_string(), c.to_string())),
                    _ => Err(format!("{tc:?} is not table.column: use auto, none or a list like t.c,u.d")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(JsonColumns::Listed),
        }
    }
}

/// A JSON document (object or array), not a scalar that merely parses as JSON.
fn is_json_document(v: &str) -> bool {
    let t = v.trim_start();
    (t.starts_with('{') || t.starts_with('[')) && serde_json::from_str::<serde::de::IgnoredAny>(v).is_ok()
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TableCopied {
    pub table: String,
    pub rows: u64,
    pub seconds: f64,
    pub target_rows: u64,
    pub verified: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub tables: Vec<TableCopied>,
    /// Losses and things not carried over, one line each.
    pub notes: Vec<String>,
}

impl Outcome {
    pub fn verified(&self) -> bool {
        self.tables.iter().all(|t| t.verified)
    }

    /// `table | rows | seconds | verified`, then the notes.
    pub fn render(&self, w: &mut impl Write) -> std::io::Result<()> {
        let width = self.tables.iter().map(|t| t.table.len()).max().unwrap_or(5).max(5);
        writeln!(w, "{:<width$} | {:>10} | {:>8} | verified", "table", "rows", "seconds")?;
        for t in &self.tables {
            let v = if t.verified {
                "yes".to_string()
            } else if t.rows != t.target_rows {
                format!("NO: target has {} rows", t.target_rows)
            } else {
                "NO: values differ".to_string()
            };
            writeln!(w, "{:<width$} | {:>10} | {:>8.2} | {v}", t.table, t.rows, t.seconds)?;
        }
        for n in &self.notes {
            writeln!(w, "note: {n}")?;
        }
        Ok(())
    }
}

/// One end of a copy.
enum Endpoint {
    Db(Box<dyn Engine>),
    Dir(PathBuf),
}

use crate::dburl::DbUrl;

fn endpoint(url: &str, access: Access, which: &str) -> anyhow::Result<Endpoint> {
    if let Some(p) = url.strip_prefix("dir:") {
        if p.is_empty() {
            return Err(UsageError(format!("--{which} dir: names no folder: use dir:PATH")).into());
        }
        return Ok(Endpoint::Dir(PathBuf::from(p)));
    }
    if !url.contains(':') {
        return Err(UsageError(format!(
            "--{which} {url:?} is not a URL: use sqlite:///file.db, postgres://user@host/db, mysql://user@host/db or dir:PATH"
        ))
        .into());
    }
    if access == Access::ReadWrite {
        // An SQLite target may be a new file: an empty file is an empty database.
        if let Some(p) = DbUrl::sqlite(url).filter(|p| !p.exists()) {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&p)
                .map_err(|e| UsageError(format!("--{which}: cannot create SQLite file {}: {e}", p.display())))?;
        }
    }
    let e = engine::from_url(url, access).map_err(|e| UsageError(format!("--{which}: {e:#}")))?;
    Ok(Endpoint::Db(e))
}

fn same_place(a: &Endpoint, b: &Endpoint, from: &str, to: &str) -> bool {
    let canon = |p: &Path| fs_err::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    match (a, b) {
        (Endpoint::Dir(x), Endpoint::Dir(y)) => canon(x) == canon(y),
        (Endpoint::Db(x), Endpoint::Db(y)) if x.dialect() == Dialect::Sqlite && y.dialect() == Dialect::Sqlite => {
            match (DbUrl::sqlite(from), DbUrl::sqlite(to)) {
                (Some(p), Some(q)) => canon(&p) == canon(&q),
                _ => false,
            }
        }
        (Endpoint::Db(x), Endpoint::Db(y)) => x.describe() == y.describe() || engine::same_database(from, to),
        _ => false,
    }
}

/// An open end: a connection and its dialect, or a folder (whose values are spelled in the
/// dialect its schema.yaml was read from).
enum Side {
    Db { conn: Box<dyn Connection>, d: Dialect },
    Dir(PathBuf),
}

fn dialect_of(schema: &Schema) -> anyhow::Result<Dialect> {
    Ok(match schema.engine.as_str() {
        "sqlite" => Dialect::Sqlite,
        "postgres" => Dialect::Postgres,
        "mysql" => Dialect::Mysql,
        other => anyhow::bail!("schema.yaml names engine {other:?}: expected sqlite, postgres or mysql"),
    })
}

/// Session settings that make values read and written the same way on both ends: timestamps with
/// a time zone in UTC, foreign keys not checked while tables fill (they are added or checked
/// after), and, on a source, one consistent snapshot for the whole copy.
fn prepare(conn: &mut dyn Connection, d: Dialect, source: bool) -> anyhow::Result<()> {
    let sql = match (d, source) {
        (Dialect::Postgres, true) => "SET TIME ZONE 'UTC'; BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        (Dialect::Postgres, false) => "SET TIME ZONE 'UTC'",
        (Dialect::Mysql, true) => "SET time_zone = '+00:00'; START TRANSACTION WITH CONSISTENT SNAPSHOT",
        (Dialect::Mysql, false) => "SET time_zone = '+00:00'; SET FOREIGN_KEY_CHECKS = 0; SET UNIQUE_CHECKS = 0",
        (Dialect::Sqlite, true) => "BEGIN",
        (Dialect::Sqlite, false) => "PRAGMA foreign_keys = OFF",
    };
    conn.execute_batch(sql)
}

/// Read `t`'s rows (columns in `t`'s order) in pages of at most `batch`: one SELECT streamed by
/// the engine, or the table's file. The order is the engine's: the checksum does not depend on it.
fn read(
    side: &mut Side,
    t: &Table,
    batch: usize,
    f: &mut dyn FnMut(Vec<Row>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    match side {
        Side::Db { conn, d } => {
            let exprs: Vec<String> = t.columns.iter().map(|c| values::select_expr(*d, c)).collect();
            conn.stream(&format!("SELECT {} FROM {}", exprs.join(", "), d.quote(&t.name)), batch, f)
        }
        Side::Dir(p) => dir::read_table(p, &t.name, t.columns.len(), batch, f),
    }
}

/// The rows of a source table, for the progress line; None for a folder (its files are not
/// counted ahead).
fn count_rows(side: &mut Side, table: &str) -> anyhow::Result<Option<u64>> {
    match side {
        Side::Db { conn, d } => {
            let counts = crate::verify::count_rows(conn.as_mut(), *d, &[table.to_string()])?;
            Ok(counts.into_values().next().and_then(|n| u64::try_from(n).ok()))
        }
        Side::Dir(_) => Ok(None),
    }
}

/// Multi-row INSERT statements for `rows`, each under MAX_STATEMENT_BYTES.
fn inserts(d: Dialect, t: &Table, rows: &[Row]) -> anyhow::Result<Vec<String>> {
    let fams: Vec<Family> = t.columns.iter().map(|c| values::family(d, c)).collect();
    let overriding = d == Dialect::Postgres && t.columns.iter().any(|c| c.identity.as_deref() == Some("always"));
    let head = format!(
        "INSERT INTO {} ({}){} VALUES ",
        d.quote(&t.name),
        t.columns.iter().map(|c| d.quote(&c.name)).collect::<Vec<_>>().join(", "),
        if overriding { " OVERRIDING SYSTEM VALUE" } else { "" }
    );
    let mut out = Vec::new();
    let mut sql = head.clone();
    let mut count = 0;
    for r in rows {
        let mut tuple = String::from("(");
        for (i, (v, fam)) in r.iter().zip(&fams).enumerate() {
            if i > 0 {
                tuple.push_str(", ");
            }
            match v {
                None => tuple.push_str("NULL"),
                Some(v) => tuple.push_str(
                    &values::literal(d, *fam, v)
                        .map_err(|e| anyhow::anyhow!("{}.{}: {e}", t.name, t.columns[i].name))?,
                ),
            }
        }
        tuple.push(')');
        if count > 0 && sql.len() + tuple.len() > MAX_STATEMENT_BYTES {
            out.push(std::mem::replace(&mut sql, head.clone()));
            count = 0;
        }
        if count > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&tuple);
        count += 1;
    }
    if count > 0 {
        out.push(sql);
    }
    Ok(out)
}

/// PostgreSQL's fast path: `COPY t (cols) FROM STDIN` (one per segment of a table), in the binary format when
/// every column has one (copy/pgbinary.rs), else the text format; FREEZE when the table was
/// created (and emptied) in the same transaction, so reading it back does not rewrite every page
/// to set hint bits.
fn pg_copy_statement(t: &Table, freeze: bool, binary: bool) -> String {
    let d = Dialect::Postgres;
    let options: Vec<&str> =
        [(binary, "FORMAT binary"), (freeze, "FREEZE")].into_iter().filter_map(|(on, o)| on.then_some(o)).collect();
    format!(
        "COPY {} ({}) FROM STDIN{}",
        d.quote(&t.name),
        t.columns.iter().map(|c| d.quote(&c.name)).collect::<Vec<_>>().join(", "),
        if options.is_empty() { String::new() } else { format!(" ({})", options.join(", ")) }
    )
}

/// A page of rows in COPY's text format.
fn pg_copy_data(t: &Table, fams: &[Family], rows: &[Row]) -> anyhow::Result<Vec<u8>> {
    let mut data = String::with_capacity(rows.len() * 64);
    for r in rows {
        for (i, (v, fam)) in r.iter().zip(fams).enumerate() {
            if i > 0 {
                data.push('\t');
            }
            match v {
                None => data.push_str("\\N"),
                Some(v) => values::copy_text(*fam, v, &mut data)
                    .map_err(|e| anyhow::anyhow!("{}.{}: {e}", t.name, t.columns[i].name))?,
            }
        }
        data.push('\n');
    }
    Ok(data.into_bytes())
}

/// Progress on stderr, only when it is a terminal: a line per table (rows done of the total,
/// rate, time left), rewritten in place at most five times a second.
struct Progress {
    on: bool,
    table: String,
    total: Option<u64>,
    rows: u64,
    started: Instant,
    last: Option<Instant>,
}

impl Progress {
    /// Whether progress is shown at all: asked for, and stderr is a terminal.
    fn wanted(want: bool) -> bool {
        want && std::io::stderr().is_terminal()
    }

    fn new(on: bool, table: &str, total: Option<u64>) -> Progress {
        Progress { on, table: table.to_string(), total, rows: 0, started: Instant::now(), last: None }
    }

    fn add(&mut self, rows: u64) {
        self.rows += rows;
        if self.on && self.last.is_none_or(|l| l.elapsed().as_millis() >= 200) {
            self.last = Some(Instant::now());
            eprint!(
                "\r{}\x1b[K",
                progress_line(&self.table, self.rows, self.total, self.started.elapsed().as_secs_f64(), false)
            );
        }
    }

    fn done(&self) {
        if self.on {
            eprintln!(
                "\r{}\x1b[K",
                progress_line(&self.table, self.rows, self.total, self.started.elapsed().as_secs_f64(), true)
            );
        }
    }
}

/// `grids: 120000/1000000 rows (12%), 40000 rows/s, 0:22 left`; without a total, rows and rate
/// only; once done, the rows and the time they took.
fn progress_line(table: &str, rows: u64, total: Option<u64>, secs: f64, done: bool) -> String {
    let rate = rows as f64 / secs.max(0.001);
    if done {
        return format!("{table}: {rows} rows in {secs:.1} s, {rate:.0} rows/s");
    }
    match total {
        Some(total) if total >= rows && total > 0 => {
            let left = if rate > 0.0 { ((total - rows) as f64 / rate).round() as u64 } else { 0 };
            format!(
                "{table}: {rows}/{total} rows ({}%), {rate:.0} rows/s, {}:{:02} left",
                rows * 100 / total,
                left / 60,
                left % 60
            )
        }
        _ => format!("{table}: {rows} rows, {rate:.0} rows/s"),
    }
}

/// Whether every value of each integer column of an SQLite table fits in 32 bits.
fn sqlite_int_fits(conn: &mut dyn Connection, t: &Table) -> anyhow::Result<Vec<(String, bool)>> {
    let cols: Vec<&str> = t
        .columns
        .iter()
        .filter(|c| Family::of(&c.data_type) == Family::Integer && !c.data_type.contains("big"))
        .map(|c| c.name.as_str())
        .collect();
    if cols.is_empty() {
        return Ok(Vec::new());
    }
    let d = Dialect::Sqlite;
    let qt = d.quote(&t.name);
    let exprs: Vec<String> = cols
        .iter()
        .map(|c| {
            let q = d.quote(c);
            if t.primary_key.first().map(String::as_str) == Some(*c) {
                // The key's index (or the rowid) answers a lone min() or max() without a scan.
                format!(
                    "coalesce((SELECT max({q}) FROM {qt}) <= 2147483647 AND (SELECT min({q}) FROM {qt}) >= -2147483648, 1)"
                )
            } else {
                format!("coalesce(max({q}) <= 2147483647 AND min({q}) >= -2147483648, 1)")
            }
        })
        .collect();
    // Without an aggregate, FROM would return a row per table row.
    let from = if exprs.iter().any(|e| e.starts_with("coalesce(max(")) { format!(" FROM {qt}") } else { String::new() };
    let row = conn.query(&format!("SELECT {}{from}", exprs.join(", ")))?;
    let row = row.into_iter().next().unwrap_or_default();
    Ok(cols.iter().zip(row).map(|(c, v)| (c.to_string(), v.as_deref() != Some("0"))).collect())
}

fn has_rows(side: &mut Side, table: &str) -> anyhow::Result<bool> {
    match side {
        Side::Db { conn, d } => Ok(!conn.query(&format!("SELECT 1 FROM {} LIMIT 1", d.quote(table)))?.is_empty()),
        Side::Dir(p) => Ok(dir::has_rows(p, table)),
    }
}

/// Run the copy and verify it. A verification mismatch is part of the outcome (the command turns
/// it into exit 4); refusals and usage errors are typed errors.
pub fn copy(opts: &Options) -> anyhow::Result<Outcome> {
    if opts.batch == 0 {
        return Err(UsageError("--batch must be at least 1".into()).into());
    }
    let to_postgres = ["postgres:", "postgresql:"].iter().any(|p| opts.to.starts_with(p));
    if opts.json_columns != JsonColumns::None && !to_postgres {
        return Err(UsageError("--json-columns needs a PostgreSQL target (--to postgres://...)".into()).into());
    }
    let from = endpoint(&opts.from, Access::ReadOnly, "from")?;
    if let (Endpoint::Dir(p), true) = (&from, true) {
        if !p.join(dir::SCHEMA_FILE).exists() {
            return Err(UsageError(format!(
                "--from dir:{} holds no {}: give a folder written by `rehearse copy --to dir:PATH`",
                p.display(),
                dir::SCHEMA_FILE
            ))
            .into());
        }
    }
    // Checked before the target is opened, so a copy onto itself creates nothing.
    if opts.from == opts.to || {
        let probe = match opts.to.strip_prefix("dir:") {
            Some(p) => Some(Endpoint::Dir(PathBuf::from(p))),
            None => engine::from_url(&opts.to, Access::ReadOnly).ok().map(Endpoint::Db),
        };
        probe.is_some_and(|to| same_place(&from, &to, &opts.from, &opts.to))
    } {
        return Err(
            Refused("--from and --to are the same database: copy to another database, file or folder".into()).into()
        );
    }
    let to = endpoint(&opts.to, Access::ReadWrite, "to")?;

    // The source: its schema and the dialect its values are spelled in.
    let (mut src, src_schema, from_d) = match from {
        Endpoint::Db(e) => {
            let d = e.dialect();
            let mut conn = e.connect()?;
            let schema = conn.introspect()?;
            prepare(conn.as_mut(), d, true)?;
            (Side::Db { conn, d }, schema, d)
        }
        Endpoint::Dir(p) => {
            let schema = dir::load_schema(&p)?;
            let d = dialect_of(&schema)?;
            (Side::Dir(p), schema, d)
        }
    };
    let mut schema = src_schema.clone();
    if !opts.tables.is_empty() {
        for name in &opts.tables {
            if schema.table(name).is_none() {
                return Err(UsageError(format!("--tables: the source has no table {name:?}")).into());
            }
        }
        schema.tables.retain(|t| opts.tables.contains(&t.name));
    }

    // The target: what exists already, and the refusal before anything is written.
    let (mut dst, existing, to_d, to_engine) = match to {
        Endpoint::Db(e) => {
            let d = e.dialect();
            let mut conn = e.connect()?;
            let existing = conn.introspect()?;
            prepare(conn.as_mut(), d, false)?;
            (Side::Db { conn, d }, Some(existing), d, Some(e))
        }
        Endpoint::Dir(p) => (Side::Dir(p), None, from_d, None),
    };
    let mut full = Vec::new();
    for t in &schema.tables {
        let exists = existing.as_ref().is_none_or(|s| s.table(&t.name).is_some());
        if exists && has_rows(&mut dst, &t.name)? {
            full.push(t.name.clone());
        }
    }
    if !full.is_empty() && !opts.truncate {
        return Err(Refused(format!(
            "target table(s) {} already hold rows: pass --truncate to empty them first, or copy into an empty database",
            full.join(", ")
        ))
        .into());
    }

    // The target schema.
    let mut notes = Vec::new();
    let mut fits = std::collections::HashMap::new();
    if let (Side::Db { conn, d: Dialect::Sqlite }, true) = (&mut src, to_d != Dialect::Sqlite) {
        for t in &schema.tables {
            for (c, ok) in sqlite_int_fits(conn.as_mut(), t)? {
                fits.insert((t.name.clone(), c), ok);
            }
        }
    }
    let target = match &existing {
        Some(_) => mapping::target_schema(
            &schema,
            from_d,
            to_d,
            &|t, c| fits.get(&(t.to_string(), c.to_string())).copied().unwrap_or(true),
            &mut notes,
        ),
        None => schema.clone(),
    };

    if let JsonColumns::Listed(list) = &opts.json_columns {
        for (t, c) in list {
            if schema.table(t).and_then(|t| t.column(c)).is_none() {
                return Err(UsageError(format!("--json-columns: the copy has no column {t}.{c}")).into());
            }
        }
    }

    // From the first table created on, a failure drops the tables this copy created.
    let mut created: Vec<String> = Vec::new();
    let mut run = || -> anyhow::Result<Outcome> {
        // Tables first, with their primary keys only; existing tables are emptied when asked.
        match (&mut dst, &existing) {
            (Side::Db { conn, d }, Some(ex)) => {
                // Referencing tables are emptied before the tables they reference.
                for t in schema.fk_order().iter().rev().filter(|t| full.contains(&t.name)) {
                    conn.execute_batch(&format!("DELETE FROM {}", d.quote(&t.name)))
                        .map_err(|e| anyhow::anyhow!("--truncate: emptying table {}: {e:#}", t.name))?;
                }
                for t in &target.tables {
                    match ex.table(&t.name) {
                        None => {
                            conn.execute_batch(&mapping::create_table(*d, t))
                                .map_err(|e| anyhow::anyhow!("creating table {}: {e:#}", t.name))?;
                            created.push(t.name.clone());
                        }
                        Some(et) => {
                            if let Some(c) = t.columns.iter().find(|c| et.column(&c.name).is_none()) {
                                anyhow::bail!(
                                    "target table {} has no column {}: drop the table or copy into an empty database",
                                    t.name,
                                    c.name
                                );
                            }
                        }
                    }
                }
            }
            (Side::Dir(p), _) => {
                let mut saved = schema.clone();
                if p.join(dir::SCHEMA_FILE).exists() {
                    // Tables of an earlier extract that this one does not rewrite stay described.
                    let old = dir::load_schema(p)?;
                    if old.engine != saved.engine && old.tables.iter().any(|t| saved.table(&t.name).is_none()) {
                        return Err(Refused(format!(
                            "dir:{} holds tables read from {}, this copy reads {}: use another folder",
                            p.display(),
                            old.engine,
                            saved.engine
                        ))
                        .into());
                    }
                    saved.tables.extend(old.tables.into_iter().filter(|t| schema.table(&t.name).is_none()));
                }
                dir::save_schema(p, &saved)?;
            }
            (Side::Db { .. }, None) => unreachable!("a database target is always introspected"),
        }

        // Rows, table by table, referenced tables first. A server target is read back for
        // verification on a second connection while the next table loads; a file or a folder is
        // read back at the end.
        let verify_side = match (&to_engine, to_d) {
            (Some(e), Dialect::Postgres | Dialect::Mysql) => {
                let mut conn = e.connect()?;
                prepare(conn.as_mut(), to_d, false)?;
                Some(Side::Db { conn, d: to_d })
            }
            _ => None,
        };
        let show = Progress::wanted(opts.progress);
        let batch = opts.batch;
        let to_db = match &dst {
            Side::Db { d, .. } => Some(*d),
            Side::Dir(_) => None,
        };
        std::thread::scope(|s| -> anyhow::Result<Outcome> {
            let (jobs, queue) = std::sync::mpsc::channel::<ReadBack>();
            let verifier = verify_side.map(|mut side| {
                s.spawn(move || -> anyhow::Result<Vec<(String, Checksum)>> {
                    queue.iter().map(|job| Ok((job.target.name.clone(), read_back(&mut side, &job, batch)?))).collect()
                })
            });
            let mut later = Vec::new();
            let mut loaded = Vec::new();
            for st in schema.fk_order() {
                let mut plan = plan(st, &target, existing.as_ref(), &created, &opts.json_columns, from_d, to_db);
                let total = if show { count_rows(&mut src, &st.name)? } else { None };
                let mut progress = Progress::new(show, &st.name, total);
                let started = Instant::now();
                let (sum, json_ok) = match load(&mut src, &mut dst, &plan, batch, &mut progress) {
                    // A value PostgreSQL must read itself: the table loads again, in the text format.
                    Err(e) if plan.binary.is_some() && e.downcast_ref::<pgbinary::NotBinary>().is_some() => {
                        plan.binary = None;
                        progress = Progress::new(show, &st.name, total);
                        load(&mut src, &mut dst, &plan, batch, &mut progress)?
                    }
                    loaded => loaded?,
                };
                progress.done();
                if let Side::Db { conn, d } = &mut dst {
                    let listed = matches!(opts.json_columns, JsonColumns::Listed(_));
                    for (i, c) in st.columns.iter().enumerate().filter(|(i, _)| plan.json[*i]) {
                        if !listed && json_ok[i] != Some(true) {
                            continue;
                        }
                        let qc = d.quote(&c.name);
                        let sql =
                            format!("ALTER TABLE {} ALTER COLUMN {qc} TYPE jsonb USING {qc}::jsonb", d.quote(&st.name));
                        match conn.execute_batch(&sql) {
                            Ok(()) => notes.push(format!("{}.{}: text holding JSON became jsonb", st.name, c.name)),
                            Err(e) if listed => anyhow::bail!("--json-columns {}.{}: {e:#}", st.name, c.name),
                            Err(e) => notes
                                .push(format!("{}.{}: kept as text, jsonb refused a value: {e:#}", st.name, c.name)),
                        }
                    }
                }
                let job = ReadBack { target: plan.target, families: plan.families };
                match &verifier {
                    // A verifier that stopped says why when it is joined.
                    Some(_) => {
                        let _ = jobs.send(job);
                    }
                    None => later.push(job),
                }
                loaded.push((st.name.clone(), sum, started.elapsed().as_secs_f64()));
            }

            // Then indexes and uniques, then foreign keys and checks, then counters after the
            // largest value.
            if let Side::Db { conn, d } = &mut dst {
                let d = *d;
                for step in [mapping::indexes as fn(Dialect, &Table) -> Vec<String>, mapping::constraints] {
                    for t in target.tables.iter().filter(|t| created.contains(&t.name)) {
                        for sql in step(d, t) {
                            conn.execute_batch(&sql).map_err(|e| anyhow::anyhow!("on table {}: {e:#}", t.name))?;
                        }
                    }
                }
                for t in &target.tables {
                    reset_counters(conn.as_mut(), d, t)?;
                }
            }

            // Verification: every copied table read back and compared.
            drop(jobs);
            let mut back = match verifier {
                Some(v) => v.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?,
                None => Vec::new(),
            };
            for job in later {
                back.push((job.target.name.clone(), read_back(&mut dst, &job, batch)?));
            }
            let tables = loaded
                .into_iter()
                .map(|(name, sum, seconds)| {
                    let got = back.iter().find(|(n, _)| *n == name).map(|(_, c)| *c).unwrap_or_default();
                    TableCopied {
                        rows: sum.rows,
                        seconds: (seconds * 100.0).round() / 100.0,
                        target_rows: got.rows,
                        verified: got == sum,
                        table: name,
                    }
                })
                .collect();
            Ok(Outcome { tables, notes: std::mem::take(&mut notes) })
        })
    };
    let outcome = run();
    outcome.map_err(|e| drop_created(&mut dst, &target, &created, e))
}

/// How one table travels from the source to the target.
struct Plan {
    /// The source table, as read.
    source: Table,
    /// The target's columns in the source's order, with the target's types.
    target: Table,
    /// How each value is hashed: the source's families, JSON for a column that may become jsonb.
    families: Vec<Family>,
    /// Columns checked for JSON documents while they stream (`--json-columns`).
    json: Vec<bool>,
    /// Created by this copy: PostgreSQL may then load it frozen.
    created: bool,
    /// A PostgreSQL target whose every column has a binary form: COPY's binary format.
    binary: Option<Vec<pgbinary::Kind>>,
}

fn plan(
    st: &Table,
    target: &Schema,
    existing: Option<&Schema>,
    created: &[String],
    json_columns: &JsonColumns,
    from_d: Dialect,
    to_db: Option<Dialect>,
) -> Plan {
    let mut tcols = target.table(&st.name).expect("every source table has a target").clone();
    // Insert with the target's types, columns in the source's order.
    if let Some(ex) = existing.and_then(|s| s.table(&st.name)) {
        tcols.columns = st.columns.iter().filter_map(|c| ex.column(&c.name).cloned()).collect();
    }
    let was_created = created.contains(&st.name);
    // Columns that may become jsonb are hashed as JSON on both sides whatever they end as.
    let json: Vec<bool> = st
        .columns
        .iter()
        .zip(&tcols.columns)
        .map(|(c, tc)| {
            was_created
                && Family::of(&tc.data_type) == Family::Text
                && match json_columns {
                    JsonColumns::None => false,
                    JsonColumns::Auto => true,
                    JsonColumns::Listed(l) => l.iter().any(|(t, col)| t == &st.name && col == &c.name),
                }
        })
        .collect();
    let families =
        st.columns.iter().zip(&json).map(|(c, j)| if *j { Family::Json } else { values::family(from_d, c) }).collect();
    let binary = match to_db {
        Some(Dialect::Postgres) => tcols.columns.iter().map(|c| pgbinary::kind(&c.data_type)).collect(),
        _ => None,
    };
    Plan { source: st.clone(), target: tcols, families, json, created: was_created, binary }
}

/// One page on its way from the reading thread to the writing one, already in the target's form.
struct Page {
    rows: u64,
    data: PageData,
}

enum PageData {
    /// COPY text-format lines (PostgreSQL).
    Copy(Vec<u8>),
    /// Multi-row INSERT statements (MySQL, SQLite).
    Inserts(Vec<String>),
    /// Rows for a folder's table file.
    Rows(Vec<Row>),
}

/// Bytes of one COPY statement on PostgreSQL (a table takes as many as it needs, in its one
/// transaction).
const COPY_SEGMENT_BYTES: usize = 64 << 20;

/// Pages read ahead of the writer: memory holds a few pages whatever the table's size.
const PAGES_AHEAD: usize = 2;

/// Load one table. A thread reads the source, hashes each row and puts each page in the target's
/// form, while this thread writes the pages, so reading and writing overlap. On a database the
/// table loads in one transaction, committed only when both sides succeeded. Returns the source's
/// checksum and, per column, whether every value read was a JSON document.
fn load(
    src: &mut Side,
    dst: &mut Side,
    plan: &Plan,
    batch: usize,
    progress: &mut Progress,
) -> anyhow::Result<(Checksum, Vec<Option<bool>>)> {
    let to = match dst {
        Side::Db { d, .. } => Some(*d),
        Side::Dir(_) => None,
    };
    let copy_fams: Vec<Family> = plan.target.columns.iter().map(|c| values::family(Dialect::Postgres, c)).collect();
    let names: Vec<String> = plan.target.columns.iter().map(|c| c.name.clone()).collect();
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Page>(PAGES_AHEAD);
        let reader = s.spawn(move || -> anyhow::Result<(Checksum, Vec<Option<bool>>)> {
            let mut sum = Checksum::default();
            let mut json_ok: Vec<Option<bool>> = vec![None; plan.json.len()];
            read(src, &plan.source, batch, &mut |page| {
                for r in &page {
                    sum.add(&plan.families, r);
                    for (i, v) in r.iter().enumerate() {
                        if let (true, Some(v), None | Some(true)) = (plan.json[i], v, json_ok[i]) {
                            json_ok[i] = Some(is_json_document(v));
                        }
                    }
                }
                let rows = page.len() as u64;
                let data = match to {
                    Some(Dialect::Postgres) => PageData::Copy(match &plan.binary {
                        Some(kinds) => {
                            let mut data = Vec::with_capacity(page.len() * 64);
                            for r in &page {
                                pgbinary::encode_row(kinds, &names, r, &mut data)?;
                            }
                            data
                        }
                        None => pg_copy_data(&plan.target, &copy_fams, &page)?,
                    }),
                    Some(d) => PageData::Inserts(inserts(d, &plan.target, &page)?),
                    None => PageData::Rows(page),
                };
                // Only when the writer failed; its error is the one reported.
                tx.send(Page { rows, data }).map_err(|_| anyhow::anyhow!("the writer stopped"))
            })?;
            Ok((sum, json_ok))
        });
        let written = write(dst, plan, &rx, progress);
        drop(rx);
        let read = reader.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        let result = match (written, read) {
            (Ok(()), Ok(r)) => match dst {
                Side::Db { conn, .. } => conn.execute_batch("COMMIT").map(|()| r),
                Side::Dir(_) => Ok(r),
            },
            (Err(e), _) | (Ok(()), Err(e)) => {
                if let Side::Db { conn, .. } = dst {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                Err(e)
            }
        };
        // Context, not a new error: the caller looks for NotBinary underneath.
        result.with_context(|| format!("copying table {}", plan.target.name))
    })
}

/// Write the pages of one table as they arrive: on a database inside a transaction that the
/// caller ends, into the table's file in a folder.
fn write(dst: &mut Side, plan: &Plan, pages: &Receiver<Page>, progress: &mut Progress) -> anyhow::Result<()> {
    let name = &plan.target.name;
    match dst {
        Side::Db { conn, d } => {
            conn.execute_batch("BEGIN")?;
            if *d == Dialect::Postgres {
                if plan.created {
                    // Emptied in this transaction, the new table can take its rows frozen.
                    conn.execute_batch(&format!("TRUNCATE {}", d.quote(name)))?;
                }
                // One COPY per segment of at most COPY_SEGMENT_BYTES: the server reports a refused
                // value only when its COPY ends, so a failure is known after a segment, not after
                // the whole table.
                let binary = plan.binary.is_some();
                let sql = pg_copy_statement(&plan.target, plan.created, binary);
                let mut next = pages.recv().ok();
                while let Some(first) = next.take() {
                    let (mut first, mut size) = (Some(first), 0);
                    let segment = std::iter::from_fn(|| {
                        let p = match first.take() {
                            Some(p) => p,
                            None if size < COPY_SEGMENT_BYTES => pages.recv().ok()?,
                            None => return None,
                        };
                        progress.add(p.rows);
                        let PageData::Copy(bytes) = p.data else { return Some(Vec::new()) };
                        size += bytes.len();
                        Some(bytes)
                    });
                    let (head, tail) =
                        if binary { (pgbinary::header(), pgbinary::trailer()) } else { (vec![], vec![]) };
                    let mut chunks =
                        std::iter::once(head).chain(segment).chain(std::iter::once(tail)).filter(|c| !c.is_empty());
                    conn.copy_in(&sql, &mut chunks)?;
                    next = pages.recv().ok();
                }
            } else {
                for p in pages.iter() {
                    if let PageData::Inserts(statements) = p.data {
                        for sql in statements {
                            conn.execute_batch(&sql)?;
                        }
                    }
                    progress.add(p.rows);
                }
            }
        }
        Side::Dir(folder) => {
            let mut w = dir::Writer::create(folder, name)?;
            for p in pages.iter() {
                if let PageData::Rows(rows) = &p.data {
                    w.write(rows)?;
                }
                progress.add(p.rows);
            }
            w.finish()?;
        }
    }
    Ok(())
}

/// A copied table to read back from the target.
struct ReadBack {
    target: Table,
    families: Vec<Family>,
}

/// Read one copied table back from the target and hash it as the source was hashed.
fn read_back(dst: &mut Side, job: &ReadBack, batch: usize) -> anyhow::Result<Checksum> {
    let mut sum = Checksum::default();
    read(dst, &job.target, batch, &mut |page| {
        for r in &page {
            sum.add(&job.families, r);
        }
        Ok(())
    })
    .map_err(|e| anyhow::anyhow!("reading table {} back from the target: {e:#}", job.target.name))?;
    Ok(sum)
}

/// After a failure: drop the tables this copy created, never one that was there before, so the
/// target is left as it was found; the error says so.
fn drop_created(dst: &mut Side, target: &Schema, created: &[String], e: anyhow::Error) -> anyhow::Error {
    let Side::Db { conn, d } = dst else { return e };
    if created.is_empty() {
        return e;
    }
    // Ends a transaction the failure left open; an error only means there was none.
    let _ = conn.execute_batch("ROLLBACK");
    // Referencing tables first; on PostgreSQL CASCADE also takes the foreign keys between the
    // created tables (no table that was there before can reference one of them).
    let cascade = if *d == Dialect::Postgres { " CASCADE" } else { "" };
    for t in target.fk_order().iter().rev().filter(|t| created.contains(&t.name)) {
        if let Err(de) = conn.execute_batch(&format!("DROP TABLE IF EXISTS {}{cascade}", d.quote(&t.name))) {
            return e.context(format!(
                "the copy failed, and dropping table {} that it had created failed too ({de:#}): drop the tables it created by hand: {}",
                t.name,
                created.join(", ")
            ));
        }
    }
    e.context(format!(
        "the copy failed; the tables it created were dropped ({}), the tables that were there before were not",
        created.join(", ")
    ))
}

/// Make the next generated value follow the largest copied one. SQLite does it by itself (rowid
/// and sqlite_sequence follow explicit values).
fn reset_counters(conn: &mut dyn Connection, d: Dialect, t: &Table) -> anyhow::Result<()> {
    let qt = d.quote(&t.name);
    for c in t.columns.iter().filter(|c| c.auto_increment) {
        let qc = d.quote(&c.name);
        match d {
            Dialect::Postgres => {
                let seq = format!("pg_catalog.pg_get_serial_sequence({}, {})", d.literal(&qt), d.literal(&c.name));
                conn.query(&format!(
                    "SELECT pg_catalog.setval({seq}, coalesce(max({qc}), 0) + 1, false) FROM {qt} WHERE {seq} IS NOT NULL"
                ))?;
            }
            Dialect::Mysql => {
                let max = conn.query(&format!("SELECT coalesce(max({qc}), 0) + 1 FROM {qt}"))?;
                if let Some(Some(next)) = max.into_iter().next().and_then(|r| r.into_iter().next()) {
                    conn.execute_batch(&format!("ALTER TABLE {qt} AUTO_INCREMENT = {next}"))?;
                }
            }
            Dialect::Sqlite => {}
        }
    }
    Ok(())
}

/// The exit code of a finished copy: a verification mismatch is exit 4.
pub fn exit_code(o: &Outcome) -> i32 {
    if o.verified() {
        exit::OK
    } else {
        exit::REHEARSAL_FAILED
    }
}
