//! `rehearse copy`: move tables and rows from one database (or folder) to another, across
//! engines. The source's neutral Schema is translated for the target (copy/mapping.rs, documented
//! in docs/copy.md); tables are created with their primary keys only, rows stream through in
//! bounded pages (never a whole table in memory), then indexes, uniques, foreign keys and checks
//! follow, and identity/serial/AUTO_INCREMENT counters restart after the largest value. Each table
//! is verified by row count and an order-independent checksum of its values read back from both
//! sides.
//!
//! It must never write to the source (opened read-only), never touch a target table that holds
//! rows unless told to empty it, and never copy a database onto itself.

mod dir;
mod mapping;
mod values;

use crate::engine::{self, Access, Connection, Dialect, Engine, Row};
use crate::exit::{self, Refused, UsageError};
use crate::schema::{Family, Schema, Table};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
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

/// The SQLite file of a `sqlite:` URL.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty()).then(|| PathBuf::from(path))
}

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
        if let Some(p) = sqlite_path(url).filter(|p| !p.exists()) {
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
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    match (a, b) {
        (Endpoint::Dir(x), Endpoint::Dir(y)) => canon(x) == canon(y),
        (Endpoint::Db(x), Endpoint::Db(y)) if x.dialect() == Dialect::Sqlite && y.dialect() == Dialect::Sqlite => {
            match (sqlite_path(from), sqlite_path(to)) {
                (Some(p), Some(q)) => canon(&p) == canon(&q),
                _ => false,
            }
        }
        (Endpoint::Db(x), Endpoint::Db(y)) => x.describe() == y.describe(),
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

/// Read `t`'s rows (columns in `t`'s order) in pages of at most `batch`: keyset pages on a single
/// integer primary key, otherwise LIMIT/OFFSET in a stable order (the key, PostgreSQL's ctid,
/// SQLite's rowid, or every column).
fn read_db(
    conn: &mut dyn Connection,
    d: Dialect,
    t: &Table,
    batch: usize,
    f: &mut dyn FnMut(Vec<Row>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let qt = d.quote(&t.name);
    let exprs: Vec<String> = t.columns.iter().map(|c| values::select_expr(d, c)).collect();
    let select = format!("SELECT {} FROM {qt}", exprs.join(", "));
    // Keyset pages need a key whose order the engine compares the same way in ORDER BY and `>`:
    // integers everywhere; text, decimals and times on the servers (SQLite columns may mix types).
    let keyset = match t.primary_key.as_slice() {
        [pk] => t.columns.iter().position(|c| {
            &c.name == pk
                && match Family::of(&c.data_type) {
                    Family::Integer => true,
                    Family::Text | Family::Decimal | Family::Temporal => d != Dialect::Sqlite,
                    _ => false,
                }
        }),
        _ => None,
    };
    if let Some(i) = keyset {
        let qpk = d.quote(&t.columns[i].name);
        let integer = Family::of(&t.columns[i].data_type) == Family::Integer;
        let mut last: Option<String> = None;
        loop {
            let cond = last.as_ref().map(|v| format!(" WHERE {qpk} > {v}")).unwrap_or_default();
            let page = conn.query(&format!("{select}{cond} ORDER BY {qpk} LIMIT {batch}"))?;
            let n = page.len();
            if let Some(v) = page.last().and_then(|r| r[i].clone()) {
                if integer && !values::is_number(&v) {
                    anyhow::bail!("table {}: key value {v:?} is not an integer", t.name);
                }
                last = Some(if integer { v } else { d.literal(&v) });
            }
            if n > 0 {
                f(page)?;
            }
            if n < batch {
                return Ok(());
            }
        }
    }
    let order = if !t.primary_key.is_empty() {
        t.primary_key.iter().map(|c| d.quote(c)).collect::<Vec<_>>().join(", ")
    } else {
        match d {
            Dialect::Postgres => "ctid".into(),
            Dialect::Sqlite => "rowid".into(),
            Dialect::Mysql => (1..=t.columns.len()).map(|i| i.to_string()).collect::<Vec<_>>().join(", "),
        }
    };
    let mut offset = 0usize;
    loop {
        let page = conn.query(&format!("{select} ORDER BY {order} LIMIT {batch} OFFSET {offset}"))?;
        let n = page.len();
        offset += n;
        if n > 0 {
            f(page)?;
        }
        if n < batch {
            return Ok(());
        }
    }
}

fn read(
    side: &mut Side,
    t: &Table,
    batch: usize,
    f: &mut dyn FnMut(Vec<Row>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    match side {
        Side::Db { conn, d } => read_db(conn.as_mut(), *d, t, batch, f),
        Side::Dir(p) => dir::read_table(p, &t.name, t.columns.len(), batch, f),
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

/// PostgreSQL's fast path: `COPY t (cols) FROM STDIN` and the page in COPY text format.
fn pg_copy(t: &Table, rows: &[Row]) -> anyhow::Result<(String, Vec<u8>)> {
    let d = Dialect::Postgres;
    let fams: Vec<Family> = t.columns.iter().map(|c| values::family(d, c)).collect();
    let sql = format!(
        "COPY {} ({}) FROM STDIN",
        d.quote(&t.name),
        t.columns.iter().map(|c| d.quote(&c.name)).collect::<Vec<_>>().join(", ")
    );
    let mut data = String::new();
    for r in rows {
        for (i, (v, fam)) in r.iter().zip(&fams).enumerate() {
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
    Ok((sql, data.into_bytes()))
}

/// Progress on stderr, only when it is a terminal: a line per table, rewritten in place.
struct Progress {
    on: bool,
    started: Instant,
    last: Instant,
}

impl Progress {
    fn new(want: bool) -> Progress {
        let now = Instant::now();
        Progress { on: want && std::io::stderr().is_terminal(), started: now, last: now }
    }

    fn show(&mut self, table: &str, rows: u64, done: bool) {
        if !self.on || (!done && self.last.elapsed().as_millis() < 200) {
            return;
        }
        self.last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        eprint!("\r{table}: {rows} rows, {:.0} rows/s{}", rows as f64 / secs, if done { "\n" } else { "" });
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
    let exprs: Vec<String> = cols
        .iter()
        .map(|c| {
            let q = d.quote(c);
            format!("coalesce(max({q}) <= 2147483647 AND min({q}) >= -2147483648, 1)")
        })
        .collect();
    let row = conn.query(&format!("SELECT {} FROM {}", exprs.join(", "), d.quote(&t.name)))?;
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
    let (mut dst, existing, to_d) = match to {
        Endpoint::Db(e) => {
            let d = e.dialect();
            let mut conn = e.connect()?;
            let existing = conn.introspect()?;
            prepare(conn.as_mut(), d, false)?;
            (Side::Db { conn, d }, Some(existing), d)
        }
        Endpoint::Dir(p) => (Side::Dir(p), None, from_d),
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

    // Tables first, with their primary keys only; existing tables are emptied when asked.
    let mut created = Vec::new();
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

    // Rows, table by table, referenced tables first.
    let mut results = Vec::new();
    let mut sums = Vec::new();
    for st in schema.fk_order() {
        let tt = target.table(&st.name).expect("every source table has a target");
        // Insert with the target's types, columns in the source's order.
        let mut tcols = tt.clone();
        if let Some(ex) = existing.as_ref().and_then(|s| s.table(&st.name)) {
            tcols.columns = st.columns.iter().filter_map(|c| ex.column(&c.name).cloned()).collect();
        }
        // Columns that may become jsonb are hashed as JSON on both sides whatever they end as.
        let json: Vec<bool> = st
            .columns
            .iter()
            .zip(&tcols.columns)
            .map(|(c, tc)| {
                created.contains(&st.name)
                    && Family::of(&tc.data_type) == Family::Text
                    && match &opts.json_columns {
                        JsonColumns::None => false,
                        JsonColumns::Auto => true,
                        JsonColumns::Listed(l) => l.iter().any(|(t, col)| t == &st.name && col == &c.name),
                    }
            })
            .collect();
        let mut json_ok: Vec<Option<bool>> = vec![None; json.len()];
        let fams: Vec<Family> = st
            .columns
            .iter()
            .zip(&json)
            .map(|(c, j)| if *j { Family::Json } else { values::family(from_d, c) })
            .collect();
        let started = Instant::now();
        let mut progress = Progress::new(opts.progress);
        let mut sum = Checksum::default();
        match &mut dst {
            Side::Db { conn, d } => {
                let d = *d;
                conn.execute_batch("BEGIN")?;
                read(&mut src, st, opts.batch, &mut |page| {
                    for r in &page {
                        sum.add(&fams, r);
                        for (i, v) in r.iter().enumerate() {
                            if let (true, Some(v), None | Some(true)) = (json[i], v, json_ok[i]) {
                                json_ok[i] = Some(is_json_document(v));
                            }
                        }
                    }
                    if d == Dialect::Postgres {
                        let (sql, data) = pg_copy(&tcols, &page)?;
                        conn.copy_in(&sql, data).map_err(|e| anyhow::anyhow!("copying table {}: {e:#}", st.name))?;
                    } else {
                        for sql in inserts(d, &tcols, &page)? {
                            conn.execute_batch(&sql)
                                .map_err(|e| anyhow::anyhow!("copying table {}: {e:#}", st.name))?;
                        }
                    }
                    progress.show(&st.name, sum.rows, false);
                    Ok(())
                })?;
                conn.execute_batch("COMMIT")?;
                let listed = matches!(opts.json_columns, JsonColumns::Listed(_));
                for (i, c) in st.columns.iter().enumerate().filter(|(i, _)| json[*i]) {
                    if !listed && json_ok[i] != Some(true) {
                        continue;
                    }
                    let qc = d.quote(&c.name);
                    let sql =
                        format!("ALTER TABLE {} ALTER COLUMN {qc} TYPE jsonb USING {qc}::jsonb", d.quote(&st.name));
                    match conn.execute_batch(&sql) {
                        Ok(()) => notes.push(format!("{}.{}: text holding JSON became jsonb", st.name, c.name)),
                        Err(e) if listed => anyhow::bail!("--json-columns {}.{}: {e:#}", st.name, c.name),
                        Err(e) => {
                            notes.push(format!("{}.{}: kept as text, jsonb refused a value: {e:#}", st.name, c.name))
                        }
                    }
                }
            }
            Side::Dir(p) => {
                let mut w = dir::Writer::create(p, &st.name)?;
                read(&mut src, st, opts.batch, &mut |page| {
                    for r in &page {
                        sum.add(&fams, r);
                    }
                    w.write(&page)?;
                    progress.show(&st.name, sum.rows, false);
                    Ok(())
                })?;
                w.finish()?;
            }
        }
        progress.show(&st.name, sum.rows, true);
        sums.push((st.name.clone(), sum, started.elapsed().as_secs_f64(), tcols, fams));
    }

    // Then indexes and uniques, then foreign keys and checks, then counters after the largest value.
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

    // Verification: read every copied table back and compare.
    for (name, sum, seconds, tcols, fams) in sums {
        let mut back = Checksum::default();
        read(&mut dst, &tcols, opts.batch, &mut |page| {
            for r in &page {
                back.add(&fams, r);
            }
            Ok(())
        })?;
        results.push(TableCopied {
            table: name,
            rows: sum.rows,
            seconds: (seconds * 100.0).round() / 100.0,
            target_rows: back.rows,
            verified: back == sum,
        });
    }
    Ok(Outcome { tables: results, notes })
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
