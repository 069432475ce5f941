//! The engines as the tests see them: make a live database, load it, fingerprint it, query the
//! test copy rehearse made, and drop what the test made. SQLite through rusqlite; PostgreSQL and
//! MariaDB through their own CLI clients (`psql`/`pg_dump`, `mariadb`/`mariadb-dump`), so the
//! harness shares no code with the engines it judges.
//!
//! It only ever creates and drops databases whose names it made up (`rh_<pid>_<n>_<random>`).

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
    Mysql,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
        }
    }

    /// The variable that names the test server (None: SQLite needs no server).
    pub fn url_var(self) -> Option<&'static str> {
        match self {
            Engine::Sqlite => None,
            Engine::Postgres => Some("REHEARSE_TEST_PG_URL"),
            Engine::Mysql => Some("REHEARSE_TEST_MYSQL_URL"),
        }
    }
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

/// The test server for `engine`, from its URL variable. Unset: in CI that is a failure (the suite
/// would silently test nothing); elsewhere the test is skipped with a note nobody can miss.
/// Returns None when the caller should skip.
pub fn server_for(engine: Engine) -> Option<Server> {
    let var = engine.url_var()?;
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => {
            Some(Server::parse(engine, url.trim()).unwrap_or_else(|e| panic!("{var}={url:?}: {e}")))
        }
        _ if in_ci() => panic!(
            "{var} is unset, so the {} tests cannot run, and CI=true does not allow skipping them: \
             start the test servers first with: eval \"$(scripts/services.sh up)\"",
            engine.name()
        ),
        _ => {
            // Once per test binary: every test of the engine skips for the same reason.
            static NOTE: std::sync::Once = std::sync::Once::new();
            NOTE.call_once(|| {
                crate::common::loud(&format!(
                    "SKIPPED: the {} tests did not run because {var} is unset.\n\
                 Start the test servers and rerun:  eval \"$(scripts/services.sh up)\" && cargo test",
                    engine.name()
                ))
            });
            None
        }
    }
}

/// A PostgreSQL or MariaDB server reachable from the tests: `scheme://user[:password]@host:port/db`.
#[derive(Debug, Clone)]
pub struct Server {
    pub engine: Engine,
    pub scheme: String,
    pub user: String,
    pub password: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The maintenance database named in the URL (postgres, mysql).
    pub db: String,
}

impl Server {
    pub fn parse(engine: Engine, url: &str) -> Result<Server, String> {
        let (scheme, rest) = url.split_once("://").ok_or("not a URL (scheme://user@host:port/db)")?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = authority.rsplit_once('@').unwrap_or(("", authority));
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u.to_string(), Some(p.to_string())),
            None => (userinfo.to_string(), None),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p.parse().map_err(|_| format!("bad port {p:?}"))?)),
            None => (hostport.to_string(), None),
        };
        let db = path.split('?').next().unwrap_or("").to_string();
        let default_user = if engine == Engine::Postgres { "postgres" } else { "root" };
        Ok(Server {
            engine,
            scheme: scheme.to_string(),
            user: if user.is_empty() { default_user.into() } else { user },
            password,
            host: if host.is_empty() { "127.0.0.1".into() } else { host },
            port,
            db: if db.is_empty() { default_user.into() } else { db },
        })
    }

    /// The URL of database `db` on this server, as given to rehearse.
    pub fn url_of(&self, db: &str) -> String {
        let auth = match &self.password {
            Some(p) => format!("{}:{p}@", self.user),
            None => format!("{}@", self.user),
        };
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("{}://{auth}{}{port}/{db}", self.scheme, self.host)
    }

    /// A client command (`psql`, `pg_dump`, `mariadb`, `mariadb-dump`) aimed at database `db`.
    /// Passwords go through the environment, never the argument list.
    fn client(&self, program: &str, db: Option<&str>) -> Command {
        let mut cmd = Command::new(program);
        match self.engine {
            Engine::Postgres => {
                cmd.args(["-h", &self.host, "-U", &self.user, "-w"]);
                if let Some(p) = self.port {
                    cmd.args(["-p", &p.to_string()]);
                }
                cmd.args(["-d", db.unwrap_or(&self.db)]);
                if let Some(pw) = &self.password {
                    cmd.env("PGPASSWORD", pw);
                }
                cmd.env("PGCONNECT_TIMEOUT", "10");
            }
            Engine::Mysql => {
                cmd.args(["--no-defaults", "-h", &self.host, "-u", &self.user]);
                if let Some(p) = self.port {
                    cmd.args(["-P", &p.to_string()]);
                }
                cmd.arg("--default-character-set=utf8mb4");
                if let Some(pw) = &self.password {
                    cmd.env("MYSQL_PWD", pw);
                }
                if let Some(db) = db {
                    cmd.arg(db);
                }
            }
            Engine::Sqlite => unreachable!("SQLite has no server"),
        }
        cmd
    }

    fn check(out: crate::common::Output, what: &str) -> Result<String, String> {
        if out.code == Some(0) {
            Ok(out.stdout)
        } else {
            Err(format!("{what}: exit {:?}: {}", out.code, out.stderr.trim()))
        }
    }

    /// Run a SQL script (several statements) on database `db`, stopping at the first error.
    pub fn execute(&self, db: Option<&str>, sql: &str) -> Result<(), String> {
        let out = match self.engine {
            Engine::Postgres => {
                let mut c = self.client("psql", db);
                c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"]);
                crate::common::run_command(c, Some(sql.as_bytes()), Duration::from_secs(120))
            }
            _ => {
                let c = self.client("mariadb", db);
                crate::common::run_command(c, Some(sql.as_bytes()), Duration::from_secs(120))
            }
        };
        Self::check(out, &format!("{} on {}", self.engine.name(), db.unwrap_or(&self.db))).map(|_| ())
    }

    /// One query's rows, every value as text and NULL as "NULL".
    pub fn query(&self, db: &str, sql: &str) -> Result<Vec<Vec<String>>, String> {
        // Unit and record separators: values may hold tabs and newlines.
        let (fs, rs) = ('\u{1f}', '\u{1e}');
        let out = match self.engine {
            Engine::Postgres => {
                let mut c = self.client("psql", Some(db));
                c.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-P", "null=NULL"])
                    .arg(format!("--field-separator={fs}"))
                    .arg(format!("--record-separator={rs}"))
                    .args(["-c", sql]);
                let text = Self::check(crate::common::run_command(c, None, Duration::from_secs(60)), "psql query")?;
                return Ok(text
                    .trim_end_matches('\n')
                    .split(rs)
                    .filter(|r| !r.is_empty())
                    .map(|r| r.split(fs).map(str::to_string).collect())
                    .collect());
            }
            _ => {
                // --raw: no escaping of backslashes and tabs in values; NULL prints as NULL.
                let mut c = self.client("mariadb", Some(db));
                c.args(["--batch", "--raw", "--skip-column-names", "-e", sql]);
                crate::common::run_command(c, None, Duration::from_secs(60))
            }
        };
        let text = Self::check(out, "mariadb query")?;
        Ok(text.lines().map(|l| l.split('\t').map(str::to_string).collect()).collect())
    }

    /// A text dump of schema and data that changes only when the database does.
    pub fn dump(&self, db: &str) -> Result<String, String> {
        match self.engine {
            Engine::Postgres => {
                let mut c = self.client("pg_dump", Some(db));
                c.args(["--no-comments"]);
                let text = Self::check(crate::common::run_command(c, None, Duration::from_secs(120)), "pg_dump")?;
                // pg_dump's \restrict lines carry a random key per run: not part of the database.
                Ok(text
                    .lines()
                    .filter(|l| !l.starts_with("--") && !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
                    .collect::<Vec<_>>()
                    .join("\n"))
            }
            _ => {
                let mut c = self.client("mariadb-dump", None);
                c.args(["--skip-dump-date", "--skip-comments", "--routines", "--triggers", "--events", db]);
                Self::check(crate::common::run_command(c, None, Duration::from_secs(120)), "mariadb-dump")
            }
        }
    }

    pub fn create_database(&self, name: &str) -> Result<(), String> {
        match self.engine {
            Engine::Postgres => self.execute(None, &format!("CREATE DATABASE \"{name}\" ENCODING 'UTF8'")),
            _ => self.execute(None, &format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4")),
        }
    }

    pub fn drop_database(&self, name: &str) -> Result<(), String> {
        match self.engine {
            Engine::Postgres => self.execute(None, &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")),
            _ => self.execute(None, &format!("DROP DATABASE IF EXISTS `{name}`")),
        }
    }
}

/// What must not change during a rehearsal: the file's bytes (SQLite), or a dump (servers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fingerprint {
    File { bytes: Vec<u8>, sha256: String, sidecars: Vec<(String, Option<Vec<u8>>)> },
    Dump { text: String, sha256: String },
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

impl Fingerprint {
    /// None when equal; else what changed, in a line.
    pub fn changed_from(&self, before: &Fingerprint) -> Option<String> {
        match (before, self) {
            (
                Fingerprint::File { bytes: b, sha256: hb, sidecars: sb },
                Fingerprint::File { bytes: a, sha256: ha, sidecars: sa },
            ) => {
                if hb != ha || b != a {
                    let at = b.iter().zip(a.iter()).position(|(x, y)| x != y).unwrap_or(b.len().min(a.len()));
                    return Some(format!(
                        "file bytes changed (sha256 {hb} -> {ha}, {} -> {} bytes, first difference at byte {at})",
                        b.len(),
                        a.len()
                    ));
                }
                if sb != sa {
                    let names = |s: &[(String, Option<Vec<u8>>)]| {
                        s.iter().filter(|(_, c)| c.is_some()).map(|(n, _)| n.clone()).collect::<Vec<_>>()
                    };
                    return Some(format!("journal/WAL files changed: before {:?}, after {:?}", names(sb), names(sa)));
                }
                None
            }
            (Fingerprint::Dump { text: b, sha256: hb }, Fingerprint::Dump { text: a, sha256: ha }) => {
                if hb == ha && b == a {
                    return None;
                }
                let (bl, al): (Vec<&str>, Vec<&str>) = (b.lines().collect(), a.lines().collect());
                let i = bl.iter().zip(&al).position(|(x, y)| x != y).unwrap_or(bl.len().min(al.len()));
                Some(format!(
                    "dump changed at line {}: before {:?}, after {:?}",
                    i + 1,
                    bl.get(i).copied().unwrap_or("<end>"),
                    al.get(i).copied().unwrap_or("<end>")
                ))
            }
            _ => Some("fingerprints of different kinds".into()),
        }
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh database name: lowercase, unquoted-safe in every engine, unique across parallel tests
/// and concurrent test processes.
pub fn fresh_name() -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("rh_{}_{n}_{:x}", std::process::id(), nanos % 0xfffff)
}

/// A live database made for one test. Server databases (and the test copy rehearse made from
/// them) are dropped when this is dropped, unless REHEARSE_TEST_KEEP=1.
pub struct LiveDb {
    pub engine: Engine,
    pub name: String,
    /// What goes into `live.url`.
    pub url: String,
    /// SQLite: the live file.
    pub path: Option<PathBuf>,
    pub server: Option<Server>,
}

impl LiveDb {
    /// An empty live database. SQLite: `<dir>/<name>.db`.
    pub fn create(engine: Engine, server: Option<&Server>, dir: &Path) -> Result<LiveDb, String> {
        let name = fresh_name();
        match engine {
            Engine::Sqlite => {
                let path = dir.join(format!("{name}.db"));
                rusqlite::Connection::open(&path).map_err(|e| e.to_string())?;
                Ok(LiveDb { engine, url: format!("sqlite://{}", path.display()), name, path: Some(path), server: None })
            }
            _ => {
                let server = server.ok_or("a server engine needs a server")?.clone();
                server.create_database(&name)?;
                Ok(LiveDb { engine, url: server.url_of(&name), name, path: None, server: Some(server) })
            }
        }
    }

    pub fn load(&self, sql: &str) -> Result<(), String> {
        match (&self.path, &self.server) {
            (Some(p), _) => {
                let c = rusqlite::Connection::open(p).map_err(|e| e.to_string())?;
                c.execute_batch(sql).map_err(|e| format!("loading the live SQLite database: {e}"))
            }
            (None, Some(s)) => s.execute(Some(&self.name), sql),
            _ => unreachable!(),
        }
    }

    pub fn fingerprint(&self) -> Result<Fingerprint, String> {
        match (&self.path, &self.server) {
            (Some(p), _) => {
                let bytes = std::fs::read(p).map_err(|e| format!("cannot read live {}: {e}", p.display()))?;
                let sidecars = ["-journal", "-wal", "-shm"]
                    .iter()
                    .map(|s| {
                        let side = PathBuf::from(format!("{}{s}", p.display()));
                        (s.to_string(), std::fs::read(&side).ok())
                    })
                    .collect();
                Ok(Fingerprint::File { sha256: sha256_hex(&bytes), bytes, sidecars })
            }
            (None, Some(s)) => {
                let text = s.dump(&self.name)?;
                Ok(Fingerprint::Dump { sha256: sha256_hex(text.as_bytes()), text })
            }
            _ => unreachable!(),
        }
    }

    /// The test copy's database name (servers).
    pub fn test_copy_name(&self) -> String {
        format!("{}upgradetest", self.name)
    }

    /// SQLite: `<workdir>/<stem>upgradetest.<ext>`.
    pub fn sqlite_test_copy(&self, workdir: &Path) -> PathBuf {
        let p = self.path.as_ref().expect("a SQLite live database");
        let stem = p.file_stem().unwrap_or_default().to_string_lossy();
        match p.extension() {
            Some(ext) => workdir.join(format!("{stem}upgradetest.{}", ext.to_string_lossy())),
            None => workdir.join(format!("{stem}upgradetest")),
        }
    }

    /// Rows of a query on the test copy, values as text, NULL as "NULL".
    pub fn query_test_copy(&self, workdir: &Path, sql: &str) -> Result<Vec<Vec<String>>, String> {
        match &self.server {
            None => sqlite_query(&self.sqlite_test_copy(workdir), sql),
            Some(s) => s.query(&self.test_copy_name(), sql),
        }
    }

    /// A text dump of the test copy (to prove a failed script left it as it was).
    pub fn dump_test_copy(&self, workdir: &Path) -> Result<String, String> {
        match &self.server {
            None => sqlite_dump(&self.sqlite_test_copy(workdir)),
            Some(s) => s.dump(&self.test_copy_name()),
        }
    }

    /// A text dump of live itself, comparable with `dump_test_copy`.
    pub fn dump(&self) -> Result<String, String> {
        match (&self.path, &self.server) {
            (Some(p), _) => sqlite_dump(p),
            (None, Some(s)) => s.dump(&self.name),
            _ => unreachable!(),
        }
    }
}

impl Drop for LiveDb {
    fn drop(&mut self) {
        if crate::common::keep_temp() {
            return;
        }
        if let Some(s) = &self.server {
            let _ = s.drop_database(&self.name);
            let _ = s.drop_database(&self.test_copy_name());
        }
    }
}

/// A SQLite value as text: the way Python's str() shows it, so figures compare like the company's
/// acceptance tool compares them (REAL 165.0 stays "165.0").
fn sqlite_text(v: rusqlite::types::ValueRef<'_>) -> String {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => format!("{f:?}"),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Blob(b) => format!("x'{}'", b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
    }
}

fn open_read_only(path: &Path) -> Result<rusqlite::Connection, String> {
    if !path.exists() {
        return Err(format!("no SQLite file at {}", path.display()));
    }
    rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

pub fn sqlite_query(path: &Path, sql: &str) -> Result<Vec<Vec<String>>, String> {
    let c = open_read_only(path)?;
    let mut st = c.prepare(sql).map_err(|e| format!("{sql}: {e}"))?;
    let n = st.column_count();
    let mut rows = st.query([]).map_err(|e| format!("{sql}: {e}"))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(|e| format!("{sql}: {e}"))? {
        out.push((0..n).map(|i| r.get_ref(i).map(sqlite_text).unwrap_or_default()).collect());
    }
    Ok(out)
}

/// Schema (every sqlite_master row) and data (every row of every table, sorted), as text.
pub fn sqlite_dump(path: &Path) -> Result<String, String> {
    let mut out = Vec::new();
    let master = sqlite_query(path, "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")?;
    for row in &master {
        out.push(format!("schema {}", row.join(" | ")));
    }
    for row in master.iter().filter(|r| r[0] == "table" && !r[1].starts_with("sqlite_")) {
        let q = format!("\"{}\"", row[1].replace('"', "\"\""));
        let mut data = sqlite_query(path, &format!("SELECT * FROM {q}"))?;
        data.sort();
        for d in data {
            out.push(format!("row {q} {}", d.join(" | ")));
        }
    }
    Ok(out.join("\n"))
}
