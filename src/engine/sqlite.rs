//! SQLite: introspection through the `pragma_*` table functions (one query per object kind for the
//! whole file), clone through the online backup API, scripts in one transaction with foreign keys
//! checked before commit.
//!
//! The live file is opened read-only (SQLITE_OPEN_READ_ONLY) unless `Access::ReadWrite`: a
//! rehearsal cannot write to it even by mistake.

use super::{Access, Cloned, Connection, Dialect, Engine, Promotion, Row, StatementFailure, StatementTiming};
use crate::fsutil;
use crate::schema::{Check, Column, ForeignKey, Index, Schema, Table, Unique};
use crate::sqltext::Statement;
use anyhow::{bail, Context};
use rusqlite::{types::ValueRef, OpenFlags};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub struct Sqlite {
    pub path: PathBuf,
    access: Access,
}

impl Sqlite {
    pub fn at(path: PathBuf, access: Access) -> Sqlite {
        Sqlite { path, access }
    }

    fn open(&self) -> anyhow::Result<rusqlite::Connection> {
        if !self.path.exists() {
            return Err(crate::exit::UsageError(format!(
                "SQLite file {} does not exist: check live.url",
                self.path.display()
            ))
            .into());
        }
        if self.access == Access::ReadOnly && fs_err::metadata(&self.path).is_ok_and(|m| m.is_file() && m.len() == 0) {
            return Err(crate::exit::UsageError(format!(
                "{} is an empty file (0 bytes), not a database: check live.url",
                self.path.display()
            ))
            .into());
        }
        if self.path.is_dir() {
            return Err(crate::exit::UsageError(format!(
                "{} is a folder, not a SQLite file: check live.url",
                self.path.display()
            ))
            .into());
        }
        // A WAL database nobody has open (no -shm): a read-only connection would create -wal and
        // -shm beside live, owned by whoever rehearsed, which can lock the application out. In
        // exclusive locking mode SQLite keeps the WAL index in memory, and as the only connection it
        // removes its transient -wal on close; exclusive mode needs a read-write handle, so SQLite's
        // own `query_only` stops every change instead. Writers that start meanwhile wait.
        // (Only with no -wal content either: closing would checkpoint it into live's bytes.)
        let empty_wal = fs_err::metadata(sidecar(&self.path, "-wal")).map(|m| m.len() == 0).unwrap_or(true);
        let quiet_wal =
            self.access == Access::ReadOnly && is_wal(&self.path) && !sidecar(&self.path, "-shm").exists() && empty_wal;
        let flags = match self.access {
            Access::ReadOnly if !quiet_wal => OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            _ => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        };
        let conn = rusqlite::Connection::open_with_flags(&self.path, flags)
            .with_context(|| format!("cannot open SQLite file {}", self.path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        if quiet_wal {
            conn.execute_batch("PRAGMA query_only = ON; PRAGMA locking_mode = EXCLUSIVE;")?;
        }
        // Fail here, clearly, when the file is not a database at all.
        if let Err(e) = conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(())) {
            if matches!(&e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_READONLY_ROLLBACK)
            {
                return Err(crate::exit::Refused(format!(
                    "{} has a hot journal: a write to it was interrupted, and SQLite rolls that back at the next read-write open; run `rehearse recover --config ...` (or start the application once), then run again",
                    self.path.display()
                ))
                .into());
            }
            if matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ) {
                bail!(
                    "SQLite file {} stayed locked by another process for 10 s ({e}): run again when its writer has finished",
                    self.path.display()
                );
            }
            return Err(crate::exit::UsageError(format!(
                "{} is not a readable SQLite database ({e}): check live.url",
                self.path.display()
            ))
            .into());
        }
        Ok(conn)
    }

    /// `<stem>upgradetest.<ext>` in the workdir.
    fn test_copy_path(&self, workdir: &Path) -> PathBuf {
        let stem = self.name();
        let name = match self.path.extension() {
            Some(ext) => format!("{stem}upgradetest.{}", ext.to_string_lossy()),
            None => format!("{stem}upgradetest"),
        };
        workdir.join(name)
    }
}

impl Sqlite {
    /// The hidden file beside a test copy that marks it as rehearse's: `.<file>.rehearse`.
    fn mark_of(copy: &Path) -> PathBuf {
        copy.with_file_name(format!(".{}.rehearse", copy.file_name().unwrap_or_default().to_string_lossy()))
    }

    /// The marker file beside the test copy; refuses when a file of the test copy's name exists
    /// that rehearse did not make (it is someone's: never replace it).
    fn replaceable_test_copy(&self, workdir: &Path) -> anyhow::Result<PathBuf> {
        let copy = self.test_copy_path(workdir);
        let mark = Sqlite::mark_of(&copy);
        if copy.exists() && !mark.exists() {
            return Err(crate::exit::Refused(format!(
                "{} exists but was not made by rehearse: move it away or choose another workdir",
                copy.display()
            ))
            .into());
        }
        Ok(mark)
    }
}

impl Engine for Sqlite {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn describe(&self) -> String {
        format!("SQLite file {}", self.path.display())
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    fn name(&self) -> String {
        self.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "db".into())
    }

    fn connect(&self) -> anyhow::Result<Box<dyn Connection>> {
        Ok(Box::new(SqliteConn { conn: self.open()? }))
    }

    fn clone_to_test_copy(&self, workdir: &Path) -> anyhow::Result<Cloned> {
        let copy = self.test_copy_path(workdir);
        let backup = workdir.join(format!("{}.live-backup.sqlite", self.name()));
        let live_real = fs_err::canonicalize(&self.path)?;
        for target in [&copy, &backup] {
            if target.exists() && fs_err::canonicalize(target)? == live_real {
                bail!("the workdir {} holds the live file itself: choose another workdir", workdir.display());
            }
        }
        let mark = self.replaceable_test_copy(workdir)?;
        let src = self.open()?;
        // Online backup into a temporary file, then rename: a half-written copy never has the
        // final name.
        let tmp = workdir.join(format!(".{}.partial", self.name()));
        let _ = fs_err::remove_file(&tmp);
        {
            let mut dst = rusqlite::Connection::open(&tmp)?;
            let b = rusqlite::backup::Backup::new(&src, &mut dst)?;
            b.run_to_completion(1024, std::time::Duration::from_millis(0), None)
                .map_err(|e| backup_failed(e, &self.path, &tmp))?;
        }
        fsutil::private_file(&tmp)?;
        fs_err::rename(&tmp, &backup)?;
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = fs_err::remove_file(format!("{}{suffix}", copy.display()));
        }
        fsutil::write_private(&mark, format!("rehearse test copy of {}\n", self.path.display()).as_bytes())?;
        fs_err::copy(&backup, &copy)
            .with_context(|| format!("cannot copy {} into the test copy {}", backup.display(), copy.display()))?;
        fsutil::private_file(&copy)?;
        Ok(Cloned { test_copy: Box::new(Sqlite::at(copy, Access::ReadWrite)), backup })
    }

    fn empty_test_copy(&self, workdir: &Path) -> anyhow::Result<Box<dyn Engine>> {
        let copy = self.test_copy_path(workdir);
        let mark = self.replaceable_test_copy(workdir)?;
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = fs_err::remove_file(format!("{}{suffix}", copy.display()));
        }
        fsutil::write_private(&mark, format!("rehearse test copy for {}\n", self.path.display()).as_bytes())?;
        rusqlite::Connection::open(&copy)?;
        fsutil::private_file(&copy)?;
        Ok(Box::new(Sqlite::at(copy, Access::ReadWrite)))
    }

    /// In a folder of its own, emptied on every run: a schema command may leave files beside the
    /// database (pydal's *.table files), which must not make the next run believe tables exist.
    fn scratch(&self, workdir: &Path) -> anyhow::Result<Box<dyn Engine>> {
        let dir = workdir.join("scratch");
        if dir.exists() {
            fs_err::remove_dir_all(&dir).with_context(|| format!("cannot empty {}", dir.display()))?;
        }
        fsutil::private_dir(&dir)?;
        let path = dir.join("scratch-target.sqlite");
        rusqlite::Connection::open(&path)?;
        fsutil::private_file(&path)?;
        Ok(Box::new(Sqlite::at(path, Access::ReadWrite)))
    }

    /// Removes the scratch file (what a schema command left beside it goes at the next run).
    fn drop_scratch(&self) -> anyhow::Result<()> {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = fs_err::remove_file(format!("{}{suffix}", self.path.display()));
        }
        if let Some(dir) = self.path.parent() {
            let _ = fs_err::remove_dir(dir); // only when empty
        }
        Ok(())
    }

    fn promotion(&self, workdir: &Path) -> anyhow::Result<Box<dyn Promotion>> {
        Ok(Box::new(SqlitePromotion::start(&self.path, workdir)?))
    }

    fn made_by_rehearse(&self) -> anyhow::Result<Option<String>> {
        let mark = fs_err::read_to_string(Sqlite::mark_of(&self.path)).unwrap_or_default();
        Ok(mark
            .starts_with("rehearse test copy")
            .then(|| format!("rehearse's {}", mark.trim_end().trim_start_matches("rehearse "))))
    }
}

/// `--live` on SQLite: the script runs on a working copy of live in the workdir, never on live.
/// Once it is verified and committed there, the online backup API writes the copy into live in one
/// SQLite transaction through live's own journal or WAL: a crash at any moment leaves live old or
/// new (SQLite's own recovery rolls an interrupted write back), and processes that keep live open
/// see the new database as they would any commit (a rename would leave them on the old inode, and a
/// WAL-mode live with the old `-wal` beside a new file).
///
/// Live's write lock is held from the first read (the backup) to the final write, and an
/// exhaustive check stands behind it: the pager's data version of the locking connection, read
/// when the lock is taken and again once the final write holds the lock, must not have moved, or
/// nothing is written (another process got a write in; live keeps it and is left as it is).
/// Nothing of rehearse's is left beside live under a name SQLite reads: the working copy runs with
/// its rollback journal in memory, in the workdir.
pub(crate) struct SqlitePromotion {
    live: PathBuf,
    /// Read-write on live, holding `BEGIN IMMEDIATE` until the final write (which it makes).
    lock: SqliteConn,
    /// The pager's data version when the lock was taken.
    version: u32,
    /// The working copy the script runs on.
    next: PathBuf,
    applied: bool,
}

/// The working copy a promotion runs the script on, in `workdir`: `.<file>.rehearse-upgrade`
/// (a bundle's apply works in the database's own folder). Only a promotion makes it; a recovery
/// removes it with its sidecars.
pub fn upgrade_copy_path(workdir: &Path, live: &Path) -> PathBuf {
    let name = live.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    workdir.join(format!(".{name}.rehearse-upgrade"))
}

/// Remove a SQLite file and every sidecar SQLite may read with it, so no stale journal can ever be
/// played back into a later file of the same name.
pub fn remove_with_sidecars(path: &Path) {
    for suffix in ["-journal", "-wal", "-shm", ""] {
        let _ = fs_err::remove_file(sidecar(path, suffix));
    }
}

/// The pager's data version of a connection's main database (SQLITE_FCNTL_DATA_VERSION): it
/// changes whenever a commit by another connection, in any process, becomes visible to it.
fn data_version_of(handle: *mut rusqlite::ffi::sqlite3) -> anyhow::Result<u32> {
    let mut v: u32 = 0;
    // SAFETY: an open handle, a NUL-terminated schema name and a u32 out-pointer, as the file
    // control's contract asks.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_file_control(
            handle,
            c"main".as_ptr(),
            rusqlite::ffi::SQLITE_FCNTL_DATA_VERSION,
            (&mut v as *mut u32).cast(),
        )
    };
    if rc != rusqlite::ffi::SQLITE_OK {
        bail!("cannot read SQLite's data version of live (error {rc})");
    }
    Ok(v)
}

impl SqlitePromotion {
    pub(crate) fn start(live: &Path, workdir: &Path) -> anyhow::Result<SqlitePromotion> {
        if !live.exists() {
            bail!("SQLite file {} does not exist: check live.url", live.display());
        }
        // Opened by SQLite only: a plain open and close of live by this process would drop every
        // POSIX lock it holds on the file (is_wal is never called while the lock is held).
        let lock = rusqlite::Connection::open_with_flags(
            live,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("cannot open {} for writing", live.display()))?;
        lock.busy_timeout(std::time::Duration::from_secs(30))?;
        // Taking the lock also lets SQLite roll back a hot journal an interrupted write left.
        lock.execute_batch("BEGIN IMMEDIATE; SELECT count(*) FROM sqlite_master;").map_err(|e| {
            crate::exit::Refused(format!(
                "{} is locked by another process ({e}): stop the application (or the other rehearse --live) and try again",
                live.display()
            ))
        })?;
        // SAFETY: the connection is open and used by this thread only.
        let version = data_version_of(unsafe { lock.handle() })?;
        Ok(SqlitePromotion {
            live: live.to_path_buf(),
            lock: SqliteConn { conn: lock },
            version,
            next: upgrade_copy_path(workdir, live),
            applied: false,
        })
    }

    /// A copy of live as it is under the lock, at `to` (0600, fsynced): written under a temporary
    /// name and renamed, so a crash never leaves a half copy that looks like a whole one.
    pub(crate) fn keep_copy(&mut self, to: &Path) -> anyhow::Result<()> {
        let partial = sidecar(to, ".partial");
        remove_with_sidecars(&partial);
        {
            // The backup API cannot read through the connection that holds the write lock (it
            // answers SQLITE_LOCKED forever): read through a second one, which the lock allows.
            // SQLite's own connection, never a plain file handle (see `start`).
            let src = rusqlite::Connection::open_with_flags(
                &self.live,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            src.busy_timeout(std::time::Duration::from_secs(30))?;
            let mut dst = rusqlite::Connection::open(&partial)?;
            let b = rusqlite::backup::Backup::new(&src, &mut dst)?;
            b.run_to_completion(1024, std::time::Duration::from_millis(0), None)
                .map_err(|e| backup_failed(e, &self.live, &partial))?;
        }
        fsutil::private_file(&partial)?;
        std::fs::File::open(&partial)?.sync_all()?;
        fs_err::rename(&partial, to)?;
        Ok(())
    }

    /// Write `source` (a SQLite file of ours) into live in one SQLite transaction, through the
    /// lock's own connection, once it is proven that no other connection committed to live since
    /// the lock was taken. Any failure leaves live as it was (SQLite rolls the write back).
    fn write_into_live(&mut self, source: &Path) -> anyhow::Result<()> {
        use rusqlite::backup::{Backup, StepResult};
        // Read-write: a WAL-mode file of ours needs its -shm; it is in the workdir, never beside live.
        let src = rusqlite::Connection::open_with_flags(
            source,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("cannot open {}", source.display()))?;
        let refused = |why: String| -> anyhow::Error {
            crate::exit::Refused(format!(
                "{why}: live {} was not changed; rehearse again, and promote when nothing else writes to it",
                self.live.display()
            ))
            .into()
        };
        // The backup API will not write through a connection with an open transaction: end ours
        // (it wrote nothing); the backup's first, empty step takes the write lock again.
        self.lock.conn.execute_batch("ROLLBACK").context("cannot hand live's lock to the final write")?;
        let expected = self.version;
        // SAFETY: taken before the backup borrows the connection; used only for
        // `data_version_of` below, a plain read under the connection's own mutex that touches
        // nothing the backup uses.
        let handle = unsafe { self.lock.conn.handle() };
        let moved = {
            let backup = Backup::new(&src, &mut self.lock.conn)?;
            match backup.step(0)? {
                StepResult::More => {}
                other => return Err(refused(format!("another process holds live's write lock ({other:?})"))),
            }
            // The lock is held again and nothing is written yet: a commit by anyone else since the
            // lock was first taken shows as a new data version, and then nothing is written.
            let now = data_version_of(handle)?;
            if now != expected {
                true
            } else {
                match backup.step(-1).map_err(|e| backup_failed(e, source, &self.live))? {
                    StepResult::Done => false,
                    other => return Err(refused(format!("the final write into live did not complete ({other:?})"))),
                }
            }
        };
        if moved {
            return Err(refused("another process wrote to live while the promotion held its lock".into()));
        }
        Ok(())
    }
}

impl Promotion for SqlitePromotion {
    fn backup(&mut self, workdir: &Path) -> anyhow::Result<PathBuf> {
        let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string().replace(':', "");
        let stem = self.live.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let backup = workdir.join(format!("{stem}.pre-upgrade-{stamp}.sqlite"));
        self.keep_copy(&backup)?;
        remove_with_sidecars(&self.next);
        fs_err::copy(&backup, &self.next)
            .with_context(|| format!("cannot write the working copy {}", self.next.display()))?;
        fsutil::private_file(&self.next)?;
        Ok(backup)
    }

    fn connection(&mut self) -> anyhow::Result<Box<dyn Connection>> {
        let conn = Sqlite::at(self.next.clone(), Access::ReadWrite).open()?;
        // The working copy is thrown away after any failure, so its journal stays in memory: a
        // crash leaves no journal file that SQLite could later play back into a file of this name.
        let mode: String = conn.query_row("PRAGMA journal_mode = MEMORY", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("memory") {
            bail!("cannot keep the working copy's journal in memory (journal_mode is {mode})");
        }
        Ok(Box::new(SqliteConn { conn }))
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        if !self.applied {
            let next = self.next.clone();
            self.write_into_live(&next)?;
            self.applied = true;
        }
        remove_with_sidecars(&self.next);
        Ok(())
    }

    fn undo(&mut self) -> anyhow::Result<String> {
        if !self.lock.conn.is_autocommit() {
            // Under our write lock no one else has a write under way, and taking the lock let
            // SQLite roll back a hot journal: a `-journal` still there is the empty, inert start of
            // a final write that a kill cut short. It goes, so nothing is left beside live.
            let journal = sidecar(&self.live, "-journal");
            if journal.exists() {
                let _ = fs_err::remove_file(&journal);
            }
            let _ = self.lock.conn.execute_batch("ROLLBACK");
        }
        remove_with_sidecars(&self.next);
        Ok(format!("{} was not touched: it is exactly as before", self.live.display()))
    }

    fn live_fingerprint(&mut self) -> anyhow::Result<Option<String>> {
        // Read through the locking connection itself, inside its transaction.
        Ok(Some(self.lock.introspect()?.fingerprint()))
    }

    fn restore_from(&mut self, backup: &Path) -> anyhow::Result<String> {
        self.write_into_live(backup)?;
        self.applied = true;
        Ok(format!("{} was put back from {}", self.live.display(), backup.display()))
    }
}

/// Let SQLite finish its own recovery of `path`: a read through a read-write connection rolls
/// back a hot journal that an interrupted write left (a read-only connection cannot, and
/// refuses to read). Nothing else is written.
pub fn settle_hot_journal(path: &Path) -> anyhow::Result<()> {
    if !sidecar(path, "-journal").exists() {
        return Ok(());
    }
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {} to let SQLite roll back its interrupted write", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
        .with_context(|| format!("SQLite could not roll back the interrupted write of {}", path.display()))?;
    Ok(())
}

struct SqliteConn {
    conn: rusqlite::Connection,
}

/// A failed online backup, in words. SQLite keeps a backup's error on no connection, so rusqlite's
/// message is often "not an error": then the error code says what happened. A write that failed
/// (a full disk, a file size limit) names the folder that must make room.
fn backup_failed(e: rusqlite::Error, from: &Path, into: &Path) -> anyhow::Error {
    let (cause, write) = match &e {
        rusqlite::Error::SqliteFailure(f, msg) => {
            let write = matches!(f.code, rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure);
            let cause = match msg.as_deref() {
                Some(m) if m != "not an error" => format!("{m} ({f})"),
                _ => f.to_string(),
            };
            (cause, write)
        }
        other => (other.to_string(), false),
    };
    let folder = into.parent().unwrap_or(Path::new("."));
    let room = if write {
        format!(
            ": the disk where {} is (or a file size limit) cannot take the copy: make room there and run again",
            folder.display()
        )
    } else {
        String::new()
    };
    anyhow::anyhow!("cannot copy {} into {}: {cause}{room}", from.display(), into.display())
}

fn text_of(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(t) => Some(match std::str::from_utf8(t) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(t).into_owned(),
        }),
        ValueRef::Blob(b) => Some(format!("x'{}'", b.iter().map(|x| format!("{x:02x}")).collect::<String>())),
    }
}

/// Whether a SQLite file is in WAL mode (header bytes 18 and 19 are 2).
fn is_wal(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 20];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && head[18] == 2 && head[19] == 2
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Lower case, single spaces, no spaces inside parentheses: `VARCHAR( 64 )` is `varchar(64)`.
pub fn normalize_type(declared: &str) -> String {
    let lower = declared.trim().to_ascii_lowercase();
    let collapsed = lower.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.replace("( ", "(").replace(" )", ")").replace(" (", "(").replace(", ", ",")
}

impl SqliteConn {
    fn rows(&self, sql: &str) -> anyhow::Result<Vec<Row>> {
        let mut stmt = self.conn.prepare(sql)?;
        let n = stmt.column_count();
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push((0..n).map(|i| r.get_ref(i).map(text_of).unwrap_or(None)).collect());
        }
        Ok(out)
    }
}

fn s(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

impl Connection for SqliteConn {
    fn introspect(&mut self) -> anyhow::Result<Schema> {
        const USER_TABLES: &str = "SELECT name, sql FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name <> 'rehearse_history' AND name NOT LIKE 'rehearse\\_archive\\_%' ESCAPE '\\'";
        let mut tables: BTreeMap<String, Table> = BTreeMap::new();
        for r in self.rows(&format!("{USER_TABLES} ORDER BY name"))? {
            let name = s(&r[0]);
            let create_sql = r[1].clone();
            let checks = create_sql.as_deref().map(parse_checks).unwrap_or_default();
            tables.insert(name.clone(), Table { name, create_sql, checks, ..Default::default() });
        }
        let autoinc: Vec<String> = tables
            .values()
            .filter(|t| t.create_sql.as_deref().unwrap_or("").to_ascii_uppercase().contains("AUTOINCREMENT"))
            .map(|t| t.name.clone())
            .collect();
        let cols = self.rows(&format!(
            "SELECT m.name, p.name, p.type, p.\"notnull\", p.dflt_value, p.pk, p.hidden \
             FROM ({USER_TABLES}) m JOIN pragma_table_xinfo(m.name) p ORDER BY m.name, p.cid"
        ))?;
        let mut pks: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
        for r in cols {
            let Some(t) = tables.get_mut(&s(&r[0])) else {
                continue;
            };
            let pk: i64 = s(&r[5]).parse().unwrap_or(0);
            let col = s(&r[1]);
            if pk > 0 {
                pks.entry(t.name.clone()).or_default().push((pk, col.clone()));
            }
            t.columns.push(Column {
                name: col,
                data_type: normalize_type(&s(&r[2])),
                nullable: s(&r[3]) == "0",
                default: r[4].clone(),
                auto_increment: pk == 1 && autoinc.contains(&t.name),
                identity: None,
            });
        }
        for (t, mut cols) in pks {
            cols.sort();
            if let Some(t) = tables.get_mut(&t) {
                t.primary_key = cols.into_iter().map(|(_, c)| c).collect();
            }
        }
        let idx = self.rows(&format!(
            "SELECT m.name, il.name, il.\"unique\", il.origin, il.partial, ix.sql, \
               (SELECT group_concat(coalesce(ii.name, '<expr>'), char(31)) FROM \
                  (SELECT name FROM pragma_index_xinfo(il.name) WHERE key = 1 ORDER BY seqno) ii) \
             FROM ({USER_TABLES}) m JOIN pragma_index_list(m.name) il \
             LEFT JOIN sqlite_master ix ON ix.type = 'index' AND ix.name = il.name \
             ORDER BY m.name, il.name"
        ))?;
        for r in idx {
            let Some(t) = tables.get_mut(&s(&r[0])) else {
                continue;
            };
            let columns: Vec<String> = s(&r[6]).split('\u{1f}').map(str::to_string).collect();
            match s(&r[3]).as_str() {
                "pk" => {}
                "u" => t.uniques.push(Unique { name: None, columns }),
                _ => {
                    let sql = r[5].clone();
                    let predicate = if s(&r[4]) == "1" { sql.as_deref().and_then(partial_predicate) } else { None };
                    t.indexes.push(Index { name: s(&r[1]), columns, unique: s(&r[2]) == "1", predicate, sql });
                }
            }
        }
        let fks = self.rows(&format!(
            "SELECT m.name, f.id, f.\"table\", f.\"from\", f.\"to\", f.on_update, f.on_delete \
             FROM ({USER_TABLES}) m JOIN pragma_foreign_key_list(m.name) f ORDER BY m.name, f.id, f.seq"
        ))?;
        let mut grouped: BTreeMap<(String, String), ForeignKey> = BTreeMap::new();
        for r in fks {
            let key = (s(&r[0]), s(&r[1]));
            let fk = grouped.entry(key).or_insert_with(|| ForeignKey {
                name: None,
                columns: vec![],
                ref_table: s(&r[2]),
                ref_columns: vec![],
                on_update: action(&r[5]),
                on_delete: action(&r[6]),
                deferrable: None,
            });
            fk.columns.push(s(&r[3]));
            fk.ref_columns.push(s(&r[4]));
        }
        for ((table, _), mut fk) in grouped {
            // `REFERENCES parent` without columns means the parent's primary key.
            if fk.ref_columns.iter().all(String::is_empty) {
                if let Some(parent) = tables.get(&fk.ref_table) {
                    fk.ref_columns = parent.primary_key.clone();
                }
            }
            if let Some(t) = tables.get_mut(&table) {
                t.foreign_keys.push(fk);
            }
        }
        for r in self
            .rows("SELECT tbl_name, sql FROM sqlite_master WHERE type = 'trigger' AND sql IS NOT NULL ORDER BY name")?
        {
            if let Some(t) = tables.get_mut(&s(&r[0])) {
                t.triggers.push(s(&r[1]));
            }
        }
        Ok(Schema { engine: "sqlite".into(), tables: tables.into_values().collect() })
    }

    fn query(&mut self, sql: &str) -> anyhow::Result<Vec<Row>> {
        self.rows(sql)
    }

    fn execute_batch(&mut self, sql: &str) -> anyhow::Result<()> {
        self.conn.execute_batch(sql)?;
        Ok(())
    }

    fn stream(
        &mut self,
        select: &str,
        batch: usize,
        f: &mut dyn FnMut(Vec<Row>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut stmt = self.conn.prepare(select)?;
        let n = stmt.column_count();
        let mut rows = stmt.query([])?;
        let mut page = Vec::with_capacity(batch);
        while let Some(r) = rows.next()? {
            page.push((0..n).map(|i| r.get_ref(i).map(text_of).unwrap_or(None)).collect());
            if page.len() >= batch {
                f(std::mem::replace(&mut page, Vec::with_capacity(batch)))?;
            }
        }
        if !page.is_empty() {
            f(page)?;
        }
        Ok(())
    }

    fn run_in_transaction(
        &mut self,
        prelude: &[Statement],
        body: &[Statement],
        before_commit: &mut dyn FnMut(&mut dyn Connection) -> anyhow::Result<()>,
    ) -> Result<Vec<StatementTiming>, StatementFailure> {
        let fail =
            |st: &Statement, e: String| StatementFailure { line: st.line, statement: st.sql.clone(), message: e };
        for st in prelude {
            self.conn.execute_batch(&st.sql).map_err(|e| fail(st, e.to_string()))?;
        }
        let begin = Statement::new(0, "BEGIN IMMEDIATE");
        self.conn.execute_batch(&begin.sql).map_err(|e| fail(&begin, e.to_string()))?;
        let mut timings = Vec::new();
        for st in body {
            if let Some(g) = &st.guard {
                match super::run_guard(self, st, g) {
                    Ok(t) => timings.push(t),
                    Err(f) => {
                        let _ = self.conn.execute_batch("ROLLBACK");
                        return Err(f);
                    }
                }
                continue;
            }
            let started = Instant::now();
            match run_one(&self.conn, &st.sql) {
                Ok(rows) => timings.push(StatementTiming {
                    line: st.line,
                    millis: super::millis(started.elapsed()),
                    rows,
                    rewrote: vec![],
                    algorithm: None,
                }),
                Err(e) => {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    return Err(fail(st, e));
                }
            }
        }
        if let Err(e) = before_commit(self) {
            let _ = self.conn.execute_batch("ROLLBACK");
            return Err(StatementFailure {
                line: 0,
                statement: "(verification before commit)".into(),
                message: format!("{e:#}"),
            });
        }
        if let Err(e) = self.conn.execute_batch("COMMIT") {
            let _ = self.conn.execute_batch("ROLLBACK");
            return Err(StatementFailure { line: 0, statement: "COMMIT".into(), message: e.to_string() });
        }
        Ok(timings)
    }

    fn castable(&mut self, expr: &str, from_type: &str, to_type: &str) -> anyhow::Result<Option<String>> {
        use crate::schema::Family::*;
        let (from, to) = (crate::schema::Family::of(from_type), crate::schema::Family::of(to_type));
        if from == to || to == Text {
            return Ok(None);
        }
        // SQLite's CAST never fails: '12abc' becomes 12. A value converts cleanly when the
        // converted value compares equal to the original.
        Ok(match to {
            Integer | Boolean => Some(format!(
                "(typeof({expr}) = 'integer' OR (typeof({expr}) IN ('text', 'real') AND CAST({expr} AS INTEGER) = {expr}))"
            )),
            Float | Decimal => Some(format!(
                "(typeof({expr}) IN ('integer', 'real') OR (typeof({expr}) = 'text' AND CAST({expr} AS REAL) = {expr}))"
            )),
            Json => Some(format!("json_valid({expr})")),
            _ => None,
        })
    }

    fn char_length(&self, expr: &str) -> String {
        format!("length({expr})")
    }

    fn as_text(&self, expr: &str) -> String {
        format!("CAST({expr} AS TEXT)")
    }
}

/// Run one statement; `PRAGMA foreign_key_check` fails when it returns any row.
fn run_one(conn: &rusqlite::Connection, sql: &str) -> Result<u64, String> {
    let mut stmt = conn.prepare(sql).map_err(|e| e.to_string())?;
    let is_fk_check = sql
        .to_ascii_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .starts_with("pragma foreign_key_check");
    let mut rows = stmt.raw_query();
    let mut violations = Vec::new();
    while let Some(r) = rows.next().map_err(|e| e.to_string())? {
        if is_fk_check && violations.len() < 5 {
            let table: String = r.get(0).unwrap_or_default();
            let rowid: Option<i64> = r.get(1).unwrap_or(None);
            let parent: String = r.get(2).unwrap_or_default();
            violations.push(format!("{table} row {} references a missing {parent}", rowid.unwrap_or(0)));
        }
    }
    if !violations.is_empty() {
        return Err(format!("foreign key violations: {}", violations.join("; ")));
    }
    drop(rows);
    Ok(conn.changes())
}

fn action(v: &Option<String>) -> Option<String> {
    match v.as_deref() {
        None | Some("NO ACTION") | Some("") => None,
        Some(a) => Some(a.to_ascii_uppercase()),
    }
}

/// The WHERE clause of a partial index's DDL.
fn partial_predicate(sql: &str) -> Option<String> {
    let upper = sql.to_ascii_uppercase();
    let at = upper.rfind(" WHERE ")?;
    Some(sql[at + 7..].trim().trim_end_matches(';').trim().to_string())
}

/// CHECK constraints from a CREATE TABLE text (SQLite keeps no catalog of them): each
/// `[CONSTRAINT name] CHECK (...)` outside quotes, its expression with balanced parentheses.
pub fn parse_checks(create_sql: &str) -> Vec<Check> {
    let chars: Vec<char> = create_sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut last_words: Vec<String> = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' || c == '"' || c == '`' || c == '[' {
            let close = if c == '[' { ']' } else { c };
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != close {
                i += 1;
            }
            let quoted: String = chars[start.min(chars.len())..i.min(chars.len())].iter().collect();
            last_words.push(quoted);
            i += 1;
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let w: String = chars[start..i].iter().collect();
            if w.eq_ignore_ascii_case("CHECK") {
                let mut j = i;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                if j < chars.len() && chars[j] == '(' {
                    let mut depth = 0;
                    let open = j;
                    while j < chars.len() {
                        match chars[j] {
                            '(' => depth += 1,
                            ')' => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            '\'' => {
                                j += 1;
                                while j < chars.len() && chars[j] != '\'' {
                                    j += 1;
                                }
                            }
                            _ => {}
                        }
                        j += 1;
                    }
                    let expr: String = chars[open + 1..j.min(chars.len())].iter().collect();
                    let n = last_words.len();
                    let name = if n >= 2 && last_words[n - 2].eq_ignore_ascii_case("CONSTRAINT") {
                        Some(last_words[n - 1].clone())
                    } else {
                        None
                    };
                    out.push(Check { name, expr: expr.trim().to_string(), sql: None });
                    i = j + 1;
                    continue;
                }
            }
            last_words.push(w);
            continue;
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_are_read_from_create_table_text() {
        let c = parse_checks(
            "CREATE TABLE t (a INT CHECK (a > 0), b TEXT, CONSTRAINT b_len CHECK (length(b) < 10 AND b <> ')'))",
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].expr, "a > 0");
        assert_eq!(c[1].name.as_deref(), Some("b_len"));
        assert_eq!(c[1].expr, "length(b) < 10 AND b <> ')'");
    }

    #[test]
    fn declared_types_are_normalized() {
        assert_eq!(normalize_type("VARCHAR( 64 )"), "varchar(64)");
        assert_eq!(normalize_type("NUMERIC(10, 2)"), "numeric(10,2)");
        assert_eq!(normalize_type("double   precision"), "double precision");
    }
}
