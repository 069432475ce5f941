//! The engine boundary: everything the pipeline asks of PostgreSQL, MySQL/MariaDB or SQLite.
//!
//! `from_url` is the one place an engine is chosen from a URL scheme. Logic that is the same for
//! every engine lives outside this module (diff, probes, findings, script layout, verification);
//! each engine module holds only its catalog queries, quoting, clone and transaction handling.
//! Nothing here may write to a database opened with `Access::ReadOnly`.

pub mod mysql;
pub mod postgres;
pub mod sqlite;

use crate::schema::Schema;
use crate::sqltext::{Guard, Statement};
use std::path::Path;
use std::time::{Duration, Instant};

/// A row of query results, every value as text (NULL as None): probes only count and sample.
pub type Row = Vec<Option<String>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
            Dialect::Mysql => "mysql",
        }
    }

    /// Quote an identifier by the engine's rules (doubling the quote character).
    pub fn quote(self, ident: &str) -> String {
        match self {
            Dialect::Mysql => format!("`{}`", ident.replace('`', "``")),
            _ => format!("\"{}\"", ident.replace('"', "\"\"")),
        }
    }

    /// Quote a string literal. MySQL also treats backslash as an escape unless told otherwise.
    pub fn literal(self, value: &str) -> String {
        match self {
            Dialect::Mysql => format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''")),
            _ => format!("'{}'", value.replace('\'', "''")),
        }
    }

    /// `expr` as text, for value maps (`CASE <text> WHEN '1' THEN ...`).
    pub fn as_text(self, expr: &str) -> String {
        match self {
            Dialect::Sqlite => format!("CAST({expr} AS TEXT)"),
            Dialect::Postgres => format!("({expr})::text"),
            Dialect::Mysql => format!("CAST({expr} AS CHAR)"),
        }
    }

    /// Whether DDL can be rolled back: if not, rollback means restoring the copy from its dump.
    pub fn transactional_ddl(self) -> bool {
        !matches!(self, Dialect::Mysql)
    }
}

/// Whether a handle may write. Live is opened `ReadOnly` everywhere except by `--live`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

/// Per statement of a script run: where it starts and what it cost.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StatementTiming {
    pub line: usize,
    pub millis: f64,
    pub rows: u64,
    /// Tables the statement rewrote whole (PostgreSQL: a new relfilenode): on live these hold an
    /// exclusive lock for a time that grows with the table.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rewrote: Vec<String>,
    /// How MySQL/MariaDB carried out a DDL statement, told from InnoDB's table ids and the rows
    /// the statement reported: `copy` (rows copied into a new table, writes blocked throughout),
    /// `inplace, rebuilt` (a new table built in place), `inplace` (an index built, the table
    /// kept) or `instant` (metadata only). None elsewhere, or when the
    /// user may not read InnoDB's table list (PROCESS privilege).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
}

/// A script statement that failed, after the transaction was rolled back.
#[derive(Debug, Clone, thiserror::Error, serde::Serialize)]
#[error("statement at line {line} failed: {message}")]
pub struct StatementFailure {
    pub line: usize,
    pub statement: String,
    pub message: String,
}

/// A database that can be reached: it knows how to connect and how to copy itself, but holds no
/// connection.
pub trait Engine {
    fn dialect(&self) -> Dialect;
    /// Engine, host and database, never a password: for messages and reports.
    fn describe(&self) -> String;
    /// A URL for child processes (a schema command's DATABASE_URL). May hold a password: pass it
    /// through the environment only.
    fn url(&self) -> String;
    /// The database name (`eden`), or the file stem for SQLite.
    fn name(&self) -> String;
    fn connect(&self) -> anyhow::Result<Box<dyn Connection>>;
    /// Copy this (live) database into its test copy `<db>upgradetest`, replacing an earlier copy
    /// that rehearse made, and keep a backup of live in `workdir`. Only reads from self.
    fn clone_to_test_copy(&self, workdir: &Path) -> anyhow::Result<Cloned>;
    /// An empty test copy `<db>upgradetest` beside this database (replacing an earlier one
    /// rehearse made, refusing one it did not), for a rehearsal whose test copy is filled by
    /// `rehearse copy` from a live database of another engine (`test.url`). Only reads from self.
    fn empty_test_copy(&self, workdir: &Path) -> anyhow::Result<Box<dyn Engine>>;
    /// A fresh empty database of the same engine for the new code's schema.
    fn scratch(&self, workdir: &Path) -> anyhow::Result<Box<dyn Engine>>;
    /// Remove a scratch database made by `scratch`.
    fn drop_scratch(&self) -> anyhow::Result<()>;
    /// Put this test copy back to the state in `backup` (the dump its clone came from). Engines
    /// with transactional DDL never need it and say so with an error; MySQL's rollback is this.
    /// Start promoting to this (live) database: take the engine's lock for the whole promotion
    /// (SQLite: a write lock on the file; PostgreSQL: pg_advisory_lock; MySQL: GET_LOCK).
    fn promotion(&self, workdir: &Path) -> anyhow::Result<Box<dyn Promotion>> {
        let _ = workdir;
        Err(crate::exit::Refused(format!(
            "--live is not available for {} in this version; nothing was done",
            self.describe()
        ))
        .into())
    }
    /// Wait (bounded) while a promotion of this live database runs, from any workdir, then keep
    /// promotions off for as long as the returned value lives, so a rehearsal never reads a live
    /// that `--live` is half-way through changing. Refuses (exit 5) when a promotion goes on past
    /// the wait. Only reads. Default: nothing to wait for.
    fn hold_off_promotions(&self) -> anyhow::Result<Box<dyn std::any::Any>> {
        Ok(Box::new(()))
    }
    /// Whether this database (named as live) is one rehearse made itself (its test copy or a
    /// scratch database), told by rehearse's own mark, never by the name: Some(what it is).
    /// Only reads. Default: no engine mark to look for.
    fn made_by_rehearse(&self) -> anyhow::Result<Option<String>> {
        Ok(None)
    }
    fn restore_test_copy(&self, backup: &Path) -> anyhow::Result<()> {
        let _ = backup;
        anyhow::bail!("{} rolls a failed script back in its transaction; there is nothing to restore", self.describe())
    }
}

/// One promotion of a rehearsed script to live, holding the engine's lock until dropped.
pub trait Promotion {
    /// A fresh backup of live (native format, 0600, in the workdir).
    fn backup(&mut self, workdir: &Path) -> anyhow::Result<std::path::PathBuf>;
    /// The database the script runs on: live itself, or (SQLite) a copy beside it that replaces it.
    fn connection(&mut self) -> anyhow::Result<Box<dyn Connection>>;
    /// After a verified, committed run: make it live (SQLite: fsync and atomic rename).
    fn finish(&mut self) -> anyhow::Result<()>;
    /// After a failure: put live back as it was, and say in one sentence what state it is in.
    fn undo(&mut self) -> anyhow::Result<String>;
    /// Live's schema fingerprint read through the promotion's own lock, for engines where a
    /// second connection to live from this process could weaken that lock (SQLite); None: read
    /// it through any read-only connection.
    fn live_fingerprint(&mut self) -> anyhow::Result<Option<String>> {
        Ok(None)
    }
    /// After a crash (`rehearse recover`): put live back from a backup this promotion's engine
    /// made. Engines whose promotion is atomic have nothing to restore.
    fn restore_from(&mut self, backup: &Path) -> anyhow::Result<String> {
        let _ = backup;
        Ok("nothing to restore: this engine's promotion leaves live old or new".into())
    }
}

pub struct Cloned {
    pub test_copy: Box<dyn Engine>,
    /// The backup of live at rehearsal time (a dump, or a copy of the file).
    pub backup: std::path::PathBuf,
}

/// An open connection. `Send`, so a copy can read its source on one thread while it writes the
/// target on another.
pub trait Connection: Send {
    fn introspect(&mut self) -> anyhow::Result<Schema>;
    fn query(&mut self, sql: &str) -> anyhow::Result<Vec<Row>>;
    /// Run a multi-statement DDL text as it is (the new code's schema into a scratch database).
    fn execute_batch(&mut self, sql: &str) -> anyhow::Result<()>;
    /// Run `prelude` (session settings), then `body` in one transaction, then `before_commit` (the
    /// verification) on the same connection before COMMIT; on any error roll back and say which
    /// statement (or the verification) failed. Engines without transactional DDL run the body
    /// statement by statement and call `before_commit` at the end; the caller restores on failure.
    fn run_in_transaction(
        &mut self,
        prelude: &[Statement],
        body: &[Statement],
        before_commit: &mut dyn FnMut(&mut dyn Connection) -> anyhow::Result<()>,
    ) -> Result<Vec<StatementTiming>, StatementFailure>;
    /// A boolean SQL expression, true when `expr` (a non-NULL value) converts to `to_type` without
    /// loss, or None when every value converts. May prepare a session helper (a pg_temp function)
    /// on the test copy the first time it is needed.
    fn castable(&mut self, expr: &str, from_type: &str, to_type: &str) -> anyhow::Result<Option<String>>;
    /// Whether `sql` needs something only this session has (PostgreSQL's pg_temp cast helper): a
    /// script cannot re-run such a probe, so its figure gets no guard.
    fn session_bound(&self, sql: &str) -> bool {
        let _ = sql;
        false
    }
    /// Why the last `run_in_transaction`'s COMMIT has no known outcome (the connection failed
    /// with COMMIT sent and the server could not be asked), or None when its result is the truth.
    fn commit_in_doubt(&self) -> Option<String> {
        None
    }
    /// Character length of a text value.
    fn char_length(&self, expr: &str) -> String;
    /// `expr` as text (for value maps and samples).
    fn as_text(&self, expr: &str) -> String;
    /// Every row of one SELECT, handed to `f` in pages of at most `batch` rows as they arrive
    /// (`rehearse copy`): one statement streamed from the server, never the whole result in memory.
    fn stream(
        &mut self,
        select: &str,
        batch: usize,
        f: &mut dyn FnMut(Vec<Row>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()>;
    /// Bulk load (`rehearse copy`): run `COPY ... FROM STDIN` with the data in the chunks `data`
    /// yields (in the format the statement names), returning the rows loaded. Only PostgreSQL has
    /// it; the others are loaded with INSERT.
    fn copy_in(&mut self, copy_sql: &str, data: &mut dyn Iterator<Item = Vec<u8>>) -> anyhow::Result<u64> {
        let _ = data;
        anyhow::bail!("this engine has no COPY FROM STDIN ({copy_sql}): load it with INSERT")
    }
}

/// Run a guard (a statement its marker made one) inside the script's transaction: its query's one
/// value must be the figure the rehearsal measured. The engines' `run_in_transaction` loops call
/// this for a statement with a guard and treat an error like a failed statement (rollback; MySQL's
/// restore; `--live`'s undo).
pub fn run_guard(
    conn: &mut dyn Connection,
    st: &Statement,
    guard: &Guard,
) -> Result<StatementTiming, StatementFailure> {
    let fail = |message: String| StatementFailure { line: st.line, statement: st.sql.clone(), message };
    let started = Instant::now();
    let rows = conn.query(&st.sql).map_err(|e| fail(format!("guard failed: its query failed: {e:#}")))?;
    guard.check(&rows).map_err(fail)?;
    Ok(StatementTiming { line: st.line, millis: millis(started.elapsed()), rows: 0, rewrote: vec![], algorithm: None })
}

/// Choose the engine for a URL: `sqlite://PATH` (or `sqlite:PATH`), `postgres://`, `mysql://`.
pub fn from_url(url: &str, access: Access) -> anyhow::Result<Box<dyn Engine>> {
    use crate::dburl::DbUrl;
    Ok(match DbUrl::parse(url, "live.url")? {
        DbUrl::Sqlite(path) => Box::new(sqlite::Sqlite::at(path, access)),
        DbUrl::Postgres => Box::new(postgres::Postgres::from_url(url, access)?),
        DbUrl::Mysql => Box::new(mysql::Mysql::from_url(url, access)?),
    })
}

/// Whether two server URLs name the same database: same engine, port and database name, on
/// hosts that are the same name or resolve to a shared address (`localhost` and `127.0.0.1`; no
/// host is the local socket, so localhost too). SQLite files are compared by the caller.
pub fn same_database(a: &str, b: &str) -> bool {
    use std::net::ToSocketAddrs;
    fn parts(u: &str) -> Option<(&'static str, String, u16, String)> {
        let url = url::Url::parse(u).ok()?;
        let (family, default_port) = match url.scheme() {
            "postgres" | "postgresql" => ("postgres", 5432),
            "mysql" | "mariadb" => ("mysql", 3306),
            _ => return None,
        };
        let host = url.host_str().filter(|h| !h.is_empty()).unwrap_or("localhost").trim_matches(['[', ']']).to_string();
        let db =
            percent_encoding::percent_decode_str(url.path().trim_start_matches('/')).decode_utf8_lossy().into_owned();
        Some((family, host, url.port().unwrap_or(default_port), db))
    }
    let (Some(x), Some(y)) = (parts(a), parts(b)) else { return false };
    if (x.0, x.2, &x.3) != (y.0, y.2, &y.3) {
        return false;
    }
    if x.1.eq_ignore_ascii_case(&y.1) {
        return true;
    }
    let addrs = |h: &str, port: u16| -> Vec<std::net::IpAddr> {
        (h, port).to_socket_addrs().map(|it| it.map(|s| s.ip()).collect()).unwrap_or_default()
    };
    let (ax, ay) = (addrs(&x.1, x.2), addrs(&y.1, y.2));
    ax.iter().any(|ip| ay.contains(ip))
}

pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}

#[cfg(test)]
mod same_database_tests {
    use super::same_database;

    #[test]
    fn localhost_and_loopback_are_one_server_but_other_databases_or_ports_are_not() {
        assert!(same_database("postgres://u@localhost/eden", "postgresql://v@127.0.0.1:5432/eden"));
        assert!(same_database("postgres:///eden", "postgres://u@127.0.0.1/eden"), "no host is the local socket");
        assert!(same_database("mysql://root@127.0.0.1:3306/eden", "mariadb://root@localhost/eden"));
        assert!(!same_database("postgres://u@localhost/eden", "postgres://u@localhost/edennew"));
        assert!(!same_database("postgres://u@localhost:5433/eden", "postgres://u@localhost/eden"));
        assert!(!same_database("postgres://u@localhost:3306/eden", "mysql://u@localhost:3306/eden"));
        assert!(!same_database("sqlite:///a.db", "sqlite:///a.db"), "files are compared by path elsewhere");
    }
}
