//! MySQL and MariaDB: introspection from information_schema (one query per object kind for the
//! whole schema), clone with mysqldump into `<db>upgradetest`, scripts run statement by statement
//! in a strict session. DDL commits implicitly in MySQL, so a failed script is rolled back by
//! restoring the test copy from the dump it was cloned from.
//!
//! Live is opened with `SET SESSION TRANSACTION READ ONLY` unless `Access::ReadWrite`, and the
//! dump only reads it. Credentials reach mysqldump and the mysql client only through an option
//! file read from a pipe (`--defaults-extra-file=/dev/fd/N`), never a file on disk, argv, logs or
//! messages. A dump counts only when it is verified (exit status, completion trailer, every
//! table). A database this module did not create and mark is never dropped, nor one named like
//! live.

use super::{Access, Cloned, Connection, Dialect, Engine, Promotion, Row, StatementFailure, StatementTiming};
use crate::exit::Refused;
use crate::schema::{Check, Column, Family, ForeignKey, Index, Schema, Table, Unique};
use crate::sqltext::Statement;
use anyhow::{anyhow, bail, Context};
use mysql_async::prelude::Queryable;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const Q: Dialect = Dialect::Mysql;

/// Where rehearse records the databases it made (see `Marker`).
pub const META_DB: &str = "rehearse_meta";
const TEST_COPY_SUFFIX: &str = "upgradetest";
const SCRATCH_SUFFIX: &str = "_rehearse_scratch";
/// A migration must fail rather than truncate, zero or coerce data.
pub const STRICT_SQL_MODE: &str =
    "STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a promotion, or a rehearsal's clone, waits for the other to release GET_LOCK.
const LOCK_WAIT: Duration = Duration::from_secs(30);
/// MySQL's limit on identifier length.
const MAX_NAME: usize = 64;
const SYSTEM_DATABASES: [&str; 5] = ["mysql", "information_schema", "performance_schema", "sys", META_DB];
/// Where the mysql client looks for the server's socket when `localhost` is asked for.
const DEFAULT_SOCKETS: [&str; 3] = ["/run/mysqld/mysqld.sock", "/var/run/mysqld/mysqld.sock", "/tmp/mysql.sock"];

// ------------------------------------------------------------------------------------ params --

/// How to reach the server and as whom, resolved from a URL and the MySQL option files.
#[derive(Clone, PartialEq, Eq)]
pub struct Params {
    /// `localhost` when `socket` is set, as for the mysql client.
    pub host: String,
    pub port: u16,
    pub socket: Option<PathBuf>,
    pub user: String,
    password: Option<String>,
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Params")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("socket", &self.socket)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Params {
    /// `host:port`, or `localhost via <socket>`: for messages.
    pub fn place(&self) -> String {
        match &self.socket {
            Some(s) => format!("localhost via {}", s.display()),
            None => format!("{}:{}", self.host, self.port),
        }
    }

    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    fn opts(&self, database: Option<&str>) -> mysql_async::Opts {
        let mut b = mysql_async::OptsBuilder::default()
            .user(Some(self.user.clone()))
            .pass(self.password.clone())
            .db_name(database.map(str::to_string))
            .prefer_socket(false)
            // Scripts and probes use the text protocol: no statement cache to grow.
            .stmt_cache_size(0);
        b = match &self.socket {
            Some(s) => b.socket(Some(s.display().to_string())),
            None => b.ip_or_hostname(self.host.clone()).tcp_port(self.port),
        };
        b.into()
    }

    /// Connection options for a client tool, after `--defaults-extra-file`. Not secret: they
    /// go on the command line because it beats `~/.my.cnf`, which the tools read after the
    /// extra file.
    fn tool_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![format!("--user={}", self.user).into()];
        match &self.socket {
            Some(s) => {
                args.push("--protocol=SOCKET".into());
                let mut a = OsString::from("--socket=");
                a.push(s.as_os_str());
                args.push(a);
            }
            None => {
                args.push("--protocol=TCP".into());
                args.push(format!("--host={}", self.host).into());
                args.push(format!("--port={}", self.port).into());
            }
        }
        args
    }

    /// The same connection as a URL (for a schema command's DATABASE_URL): may hold the password.
    fn url(&self, database: &str) -> String {
        use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
        let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
        let auth = match &self.password {
            Some(p) => format!("{}:{}@", enc(&self.user), enc(p)),
            None => format!("{}@", enc(&self.user)),
        };
        match &self.socket {
            Some(s) => format!("mysql://{auth}localhost/{}?socket={}", enc(database), enc(&s.display().to_string())),
            None if self.host.contains(':') => format!("mysql://{auth}[{}]:{}/{}", self.host, self.port, enc(database)),
            None => format!("mysql://{auth}{}:{}/{}", self.host, self.port, enc(database)),
        }
    }
}

/// Read a MySQL option file into its groups: keys lower case with `_` spelled `-`, values
/// unquoted and unescaped as the mysql client does. `!include` directives are not followed.
pub fn parse_option_file(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut groups: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut group: Option<String> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') || line.starts_with('!') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest.split(']').next().unwrap_or("").trim().to_ascii_lowercase();
            group = Some(name);
            continue;
        }
        let Some(g) = &group else { continue };
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), option_value(v)),
            None => (line, String::new()),
        };
        let key = key.to_ascii_lowercase().replace('_', "-");
        groups.entry(g.clone()).or_default().insert(key, value);
    }
    groups
}

/// One option value: quotes removed when it is quoted, else cut at a `#` comment; then the
/// escapes the client knows (`\n \t \r \b \s \\ \" \'`).
fn option_value(v: &str) -> String {
    let v = v.trim();
    let quoted = v.len() >= 2 && (v.starts_with('"') || v.starts_with('\'')) && v.ends_with(&v[..1]);
    let inner = if quoted { &v[1..v.len() - 1] } else { v.split('#').next().unwrap_or("").trim_end() };
    let mut out = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('b') => out.push('\u{8}'),
                Some('s') => out.push(' '),
                Some(e @ ('\\' | '"' | '\'')) => out.push(e),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A value written so that `option_value` (and the mysql client) reads it back unchanged.
fn quote_option_value(v: &str) -> String {
    let mut out = String::from("\"");
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The option groups mysqldump and the mysql client read (MariaDB and MySQL names).
const TOOL_GROUPS: [&str; 8] =
    ["client", "client-server", "client-mariadb", "mysql", "mysqldump", "mariadb", "mariadb-client", "mariadb-dump"];

// ------------------------------------------------------------------------------------- tools --

/// The client programs the clone runs: a dump program and a client that loads the dump.
#[derive(Debug, Clone)]
pub struct Tools {
    pub dump: PathBuf,
    pub client: PathBuf,
}

impl Tools {
    /// The first of `mariadb-dump`/`mysqldump` and `mariadb`/`mysql` found in PATH, MariaDB's
    /// names first for a MariaDB server and MySQL's first for a MySQL one.
    pub fn find(flavor: Flavor) -> anyhow::Result<Tools> {
        let (dumps, clients) = match flavor {
            Flavor::MariaDb => (["mariadb-dump", "mysqldump"], ["mariadb", "mysql"]),
            Flavor::Mysql => (["mysqldump", "mariadb-dump"], ["mysql", "mariadb"]),
        };
        let first = |names: [&str; 2]| names.iter().find_map(|n| which(n));
        match (first(dumps), first(clients)) {
            (Some(dump), Some(client)) => Ok(Tools { dump, client }),
            _ => bail!(
                "cloning a MySQL database needs {} and {} in PATH: install the MariaDB or MySQL client package",
                dumps.join(" or "),
                clients.join(" or ")
            ),
        }
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
        }
        #[cfg(not(unix))]
        {
            p.is_file()
        }
    })
}

// ----------------------------------------------------------------------------------- version --

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    MariaDb,
    Mysql,
}

/// The server's version, compared as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerVersion {
    pub flavor: Flavor,
    pub number: (u16, u16, u16),
}

impl ServerVersion {
    /// From `SELECT VERSION()`: `10.11.6-MariaDB-0+deb12u1`, `8.0.36`, `8.4.0-log`.
    pub fn parse(text: &str) -> ServerVersion {
        let flavor = if text.to_ascii_lowercase().contains("mariadb") { Flavor::MariaDb } else { Flavor::Mysql };
        let digits = text.split(|c: char| !(c.is_ascii_digit() || c == '.')).next().unwrap_or("");
        let mut n = digits.split('.').map(|p| p.parse::<u16>().unwrap_or(0));
        ServerVersion { flavor, number: (n.next().unwrap_or(0), n.next().unwrap_or(0), n.next().unwrap_or(0)) }
    }

    /// information_schema.CHECK_CONSTRAINTS exists (MariaDB 10.2.22, MySQL 8.0.16).
    fn has_check_constraints(&self) -> bool {
        match self.flavor {
            Flavor::MariaDb => self.number >= (10, 2, 22),
            Flavor::Mysql => self.number >= (8, 0, 16),
        }
    }
}

// ------------------------------------------------------------------------------------ engine --

/// What a database is to rehearse: live, or one it made from live (and may drop).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    Live,
    TestCopy { live: String },
    Scratch { live: String },
}

impl Role {
    fn marker(&self) -> &'static str {
        match self {
            Role::Live => "live",
            Role::TestCopy { .. } => "test_copy",
            Role::Scratch { .. } => "scratch",
        }
    }
}

/// A MySQL or MariaDB database, reached through a URL and the MySQL option files:
///
/// `mysql://[user[:password]@][host][:port]/database[?socket=PATH][&defaults_file=PATH]`
/// (`mariadb://` is the same).
///
/// What the URL leaves out comes from the `[client]` section of an option file (`user`,
/// `password`, `host`, `port`, `socket`): the file named by `defaults_file`, or else `~/.my.cnf`
/// when it exists. So `mysql:///eden` with a `~/.my.cnf` keeps the password out of the config
/// and the command line. Precedence: URL, then the option file, then the client's defaults
/// (`localhost`, 3306, the login name). The file's password is used only when the URL names no
/// user or the user the file names. `localhost` means the Unix socket, as for the mysql client
/// (`socket`, or the usual paths), and TCP to 127.0.0.1 when no socket exists.
pub struct Mysql {
    params: Params,
    database: String,
    access: Access,
    role: Role,
    tools: Option<Tools>,
    /// The user option file the client tools read after ours (normally `~/.my.cnf`).
    user_option_file: Option<PathBuf>,
}

impl Mysql {
    pub fn from_url(url: &str, access: Access) -> anyhow::Result<Mysql> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        Mysql::resolve(url, access, home.as_deref())
    }

    /// `from_url` with the home folder given (tests).
    pub fn resolve(url: &str, access: Access, home: Option<&Path>) -> anyhow::Result<Mysql> {
        let shown = crate::redact::url(url);
        let parsed = url::Url::parse(url).map_err(|e| anyhow!("live.url {shown:?} is not a valid URL: {e}"))?;
        if !matches!(parsed.scheme(), "mysql" | "mariadb") {
            bail!("live.url {shown:?} is not a mysql:// URL");
        }
        let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
        let database = decode(parsed.path().trim_start_matches('/'));
        if database.is_empty() || database.contains('/') {
            bail!("live.url {shown:?} names no database: use mysql://user@host:3306/database");
        }
        if database.len() > MAX_NAME {
            bail!("live.url {shown:?}: the database name is longer than MySQL's {MAX_NAME} characters");
        }
        let (mut socket, mut defaults_file) = (None, None);
        for (k, v) in parsed.query_pairs() {
            match k.as_ref() {
                "socket" => socket = Some(PathBuf::from(v.as_ref())),
                "defaults_file" | "defaults-file" => defaults_file = Some(PathBuf::from(v.as_ref())),
                other => bail!(
                    "live.url {shown:?}: unknown parameter {other:?}; a mysql:// URL takes socket= and defaults_file="
                ),
            }
        }
        let user_file = home.map(|h| h.join(".my.cnf")).filter(|p| p.is_file());
        let file = match &defaults_file {
            Some(p) => {
                let text = fs_err::read_to_string(p)
                    .with_context(|| format!("cannot read the MySQL option file {} (defaults_file)", p.display()))?;
                parse_option_file(&text).remove("client").unwrap_or_default()
            }
            None => match &user_file {
                Some(p) => {
                    let text = fs_err::read_to_string(p)
                        .with_context(|| format!("cannot read the MySQL option file {}", p.display()))?;
                    parse_option_file(&text).remove("client").unwrap_or_default()
                }
                None => BTreeMap::new(),
            },
        };
        let url_user = Some(decode(parsed.username())).filter(|u| !u.is_empty());
        let file_user = file.get("user").cloned();
        let user = url_user
            .clone()
            .or(file_user.clone())
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "root".into());
        let password = match parsed.password() {
            Some(p) => Some(decode(p)),
            None if url_user.is_none() || url_user == file_user => {
                file.get("password").or_else(|| file.get("pass")).cloned()
            }
            None => None,
        };
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => Some(d.to_string()),
            Some(url::Host::Ipv4(a)) => Some(a.to_string()),
            Some(url::Host::Ipv6(a)) => Some(a.to_string()),
            _ => None,
        }
        .or_else(|| file.get("host").cloned())
        .unwrap_or_else(|| "localhost".into());
        let port = match parsed.port() {
            Some(p) => p,
            None => match file.get("port") {
                Some(p) => p.parse().map_err(|_| anyhow!("the option file's port {p:?} is not a number"))?,
                None => 3306,
            },
        };
        let socket = if host == "localhost" {
            socket
                .or_else(|| file.get("socket").map(PathBuf::from))
                .or_else(|| DEFAULT_SOCKETS.iter().map(PathBuf::from).find(|p| p.exists()))
        } else {
            None
        };
        let host = if host == "localhost" && socket.is_none() { "127.0.0.1".to_string() } else { host };
        Ok(Mysql {
            params: Params { host, port, socket, user, password },
            database,
            access,
            role: Role::Live,
            tools: None,
            user_option_file: user_file,
        })
    }

    /// Use these client programs instead of the ones found in PATH.
    pub fn with_tools(mut self, tools: Tools) -> Mysql {
        self.tools = Some(tools);
        self
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// A database made from this one, on the same server with the same credentials.
    fn sibling(&self, database: String, role: Role) -> Mysql {
        Mysql {
            params: self.params.clone(),
            database,
            access: Access::ReadWrite,
            role,
            tools: self.tools.clone(),
            user_option_file: self.user_option_file.clone(),
        }
    }

    fn live_name(&self) -> &str {
        match &self.role {
            Role::Live => &self.database,
            Role::TestCopy { live } | Role::Scratch { live } => live,
        }
    }

    fn derived_name(&self, suffix: &str) -> anyhow::Result<String> {
        let name = format!("{}{suffix}", self.database);
        if name.len() > MAX_NAME {
            bail!("the database {name:?} that rehearse needs is longer than MySQL's {MAX_NAME} characters");
        }
        Ok(name)
    }

    /// A read-write connection to the server with no default database, for CREATE/DROP of the
    /// databases rehearse makes and their markers. It never writes to live.
    fn admin(&self) -> anyhow::Result<MysqlConn> {
        MysqlConn::open(&self.params, None, Access::ReadWrite)
    }

    fn tools(&self, admin: &MysqlConn) -> anyhow::Result<Tools> {
        match &self.tools {
            Some(t) => Ok(t.clone()),
            None => Tools::find(admin.version.flavor),
        }
    }

    /// The client tools read `~/.my.cnf` after `--defaults-extra-file`, so a password there
    /// would win over the one rehearse resolved. Say so instead of failing with "access denied".
    fn check_user_option_file(&self) -> anyhow::Result<()> {
        let Some(path) = &self.user_option_file else { return Ok(()) };
        let Ok(text) = fs_err::read_to_string(path) else { return Ok(()) };
        let groups = parse_option_file(&text);
        let theirs = TOOL_GROUPS
            .iter()
            .filter_map(|g| groups.get(*g))
            .filter_map(|g| g.get("password").or(g.get("pass")))
            .next_back();
        if let Some(p) = theirs {
            if Some(p) != self.params.password.as_ref() {
                bail!(
                    "{} sets a password that mysqldump and the mysql client would use instead of the one for user {:?} from live.url: \
                     remove the password from one of them, or put the whole connection in {} and use mysql:///{}",
                    path.display(),
                    self.params.user,
                    path.display(),
                    self.database
                );
            }
        }
        Ok(())
    }

    /// Run a client program with the credentials in an option file it reads from a pipe
    /// (`--defaults-extra-file=/dev/fd/N`, first on its command line): no file on disk ever holds
    /// the password, so not even a kill -9 of rehearse can leave one behind. The program dies
    /// with rehearse (Linux: PR_SET_PDEATHSIG), so no orphaned loader or dump goes on writing
    /// after a crash while `rehearse recover` restores.
    fn run_tool(
        &self,
        program: &Path,
        private_dir: &Path,
        args: Vec<OsString>,
        stdin: Option<&Path>,
        stdout: Option<std::fs::File>,
        what: &str,
    ) -> anyhow::Result<()> {
        self.check_user_option_file()?;
        remove_stale_option_files(private_dir);
        let mut text = String::from("# written by rehearse for one client run\n[client]\n");
        if let Some(p) = &self.params.password {
            text.push_str(&format!("password={}\n", quote_option_value(p)));
        }
        // A few hundred bytes: the pipe's buffer takes them whole, so writing cannot block.
        let (reader, mut writer) = std::io::pipe().context("cannot make a pipe for the client's option file")?;
        std::io::Write::write_all(&mut writer, text.as_bytes())?;
        drop(writer);
        let fd = std::os::fd::AsRawFd::as_raw_fd(&reader);
        let mut argv: Vec<OsString> = vec![format!("--defaults-extra-file=/dev/fd/{fd}").into()];
        argv.extend(self.params.tool_args());
        argv.extend(args);
        let parent = std::process::id();
        let mut expr = duct::cmd(program, argv).before_spawn(move |cmd| {
            // SAFETY: the closure runs in the forked child before exec and only makes
            // async-signal-safe calls (fcntl, prctl, getppid).
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(cmd, move || {
                    // The pipe is close-on-exec in rehearse; the child keeps its copy across exec.
                    if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    #[cfg(target_os = "linux")]
                    {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                        // rehearse died before the line above: do not run at all.
                        if libc::getppid() as u32 != parent {
                            return Err(std::io::Error::other("rehearse has exited"));
                        }
                    }
                    let _ = parent;
                    Ok(())
                });
            }
            Ok(())
        });
        if let Some(p) = stdin {
            expr = expr.stdin_path(p);
        }
        if let Some(f) = stdout {
            expr = expr.stdout_file(f);
        }
        let result = crate::process::run(expr, what);
        drop(reader);
        result.map(|_| ())
    }

    /// `mysqldump` of this database into `path` (0600), through a partial file renamed only once
    /// the dump is verified (`verify_dump`), so a failed or cut-short dump never looks like a
    /// backup; the partial file is removed on any failure.
    fn dump(&self, tools: &Tools, workdir: &Path, path: &Path) -> anyhow::Result<()> {
        let partial = workdir.join(format!(".{}.dump.sql.partial", self.database));
        let _ = fs_err::remove_file(&partial);
        let result = self.dump_verified(tools, workdir, &partial);
        if result.is_err() {
            let _ = fs_err::remove_file(&partial);
        }
        result?;
        fs_err::rename(&partial, path).with_context(|| format!("cannot move the dump to {}", path.display()))?;
        Ok(())
    }

    fn dump_verified(&self, tools: &Tools, workdir: &Path, partial: &Path) -> anyhow::Result<()> {
        // The tables the dump must hold, read before it starts (one made meanwhile is not asked
        // for; one dropped meanwhile fails the check, and running again is then right).
        let tables: Vec<String> = MysqlConn::open(&self.params, Some(&self.database), Access::ReadOnly)?
            .rows(&format!(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = {} AND table_type = 'BASE TABLE'",
                Q.literal(&self.database)
            ))?
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect();
        let out = private_create(partial)?;
        let args: Vec<OsString> = [
            "--single-transaction",
            "--routines",
            "--triggers",
            "--events",
            "--hex-blob",
            "--no-tablespaces",
            "--default-character-set=utf8mb4",
            // The completion trailer tells a whole dump from a cut one: an option file's
            // skip-comments must not remove it.
            "--comments",
            "--",
            &self.database,
        ]
        .iter()
        .map(OsString::from)
        .collect();
        self.run_tool(
            &tools.dump,
            workdir,
            args,
            None,
            Some(out),
            &format!("{} of {}", tool_name(&tools.dump), self.describe()),
        )
        .map_err(|e| anyhow!("{}", name_write_error(&format!("{e:#}"), partial)))?;
        verify_dump(partial, &tables).map(|_| ())
    }

    /// Load a dump into `database` with the mysql client, stdin from the file.
    fn load(&self, tools: &Tools, private_dir: &Path, database: &str, dump: &Path) -> anyhow::Result<()> {
        let args =
            vec![OsString::from("--default-character-set=utf8mb4"), OsString::from(format!("--database={database}"))];
        self.run_tool(
            &tools.client,
            private_dir,
            args,
            Some(dump),
            None,
            &format!("{} loading {} into {database}", tool_name(&tools.client), dump.display()),
        )
    }

    /// Drop (if rehearse made it) and create `name` with live's character set and collation,
    /// marked as made by rehearse.
    fn recreate(
        &self,
        admin: &mut MysqlConn,
        name: &str,
        role: &Role,
        defaults: &(String, String),
    ) -> anyhow::Result<()> {
        let mut marker = Marker { conn: admin, live: self.live_name().to_string() };
        marker.ensure()?;
        if marker.exists(name)? {
            marker.drop_marked(name, role)?;
        }
        // Marked before it exists: a crash in between leaves a marker without a database, which
        // the next run clears, never a database without a marker that it would refuse.
        marker.mark(name, role)?;
        let create = format!(
            "CREATE DATABASE {} CHARACTER SET {} COLLATE {}",
            Q.quote(name),
            Q.quote(&defaults.0),
            Q.quote(&defaults.1)
        );
        if let Err(e) = marker.conn.exec(&create) {
            let _ = marker.unmark(name);
            return Err(anyhow!(
                "cannot create the database {name} on {}: {}",
                self.params.place(),
                server_message(&e)
            ));
        }
        Ok(())
    }
}

/// Earlier builds wrote the password into `.rehearse-mysql-*.cnf` files beside the dump and
/// deleted them when the client ended, so a crash could leave one behind. Nothing writes them now:
/// any such file is stale and goes.
fn remove_stale_option_files(dir: &Path) {
    let Ok(entries) = fs_err::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(".rehearse-mysql-") && name.ends_with(".cnf") {
            let _ = fs_err::remove_file(e.path());
        }
    }
}

fn promotion_lock_name(database: &str) -> String {
    let name = format!("rehearse:{database}");
    if name.len() <= MAX_NAME {
        return name;
    }
    format!("rehearse:{}", &crate::schema::sha256_hex(database.as_bytes())[..32])
}

/// What a mysqldump dump holds, read line by line (a dump can be larger than memory).
#[derive(Debug)]
struct DumpSummary {
    /// The tables it creates, in order (`CREATE TABLE `name` (`).
    tables: Vec<String>,
    /// Whether its last line is mysqldump's `-- Dump completed` trailer.
    completed: bool,
}

fn scan_dump(path: &Path) -> anyhow::Result<DumpSummary> {
    use std::io::BufRead;
    let cannot = || format!("cannot read the dump {}", path.display());
    let mut reader = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path).with_context(cannot)?);
    let (mut tables, mut last, mut line) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).with_context(cannot)? == 0 {
            break;
        }
        if let Some(rest) = line.strip_prefix(b"CREATE TABLE `".as_slice()) {
            if let Some((name, _)) = String::from_utf8_lossy(rest).split_once("` (") {
                tables.push(name.replace("``", "`"));
            }
        }
        if !line.iter().all(u8::is_ascii_whitespace) {
            std::mem::swap(&mut last, &mut line);
        }
    }
    Ok(DumpSummary { tables, completed: last.starts_with(b"-- Dump completed") })
}

/// A dump is a backup only when mysqldump wrote it to the end (its trailer is the last line) and
/// it creates every table in `tables`. Returns what it holds.
fn verify_dump(path: &Path, tables: &[String]) -> anyhow::Result<DumpSummary> {
    let summary = scan_dump(path)?;
    if !summary.completed {
        bail!(
            "the dump {} is cut short (its last line is not \"-- Dump completed\"): it is not a backup",
            path.display()
        );
    }
    let missing: Vec<&str> = tables.iter().filter(|t| !summary.tables.contains(t)).map(|t| t.as_str()).collect();
    if !missing.is_empty() {
        bail!(
            "the dump {} lacks {} table(s) of the database ({}): it is not a backup",
            path.display(),
            missing.len(),
            missing.iter().take(5).copied().collect::<Vec<_>>().join(", ")
        );
    }
    Ok(summary)
}

/// mysqldump says `Got errno 28 on write`: name the cause (no space left on device) and the file.
fn name_write_error(message: &str, file: &Path) -> String {
    let errno = message
        .split("Got errno ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<i32>().ok());
    match errno {
        Some(n) => {
            let cause = std::io::Error::from_raw_os_error(n).to_string();
            let cause = cause.split(" (os error").next().unwrap_or(&cause).to_lowercase();
            format!("{cause} writing {} ({message})", file.display())
        }
        None => message.to_string(),
    }
}

fn tool_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| p.display().to_string())
}

fn private_create(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let f = o.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    crate::fsutil::private_file(path)?;
    Ok(f)
}

/// What a new test copy needs: an admin session, its name, role and live's character set.
type TestCopyPlan = (MysqlConn, String, Role, (String, String));

impl Mysql {
    /// Before the test copy is (re)made beside this database: its name, and a refusal of a
    /// database of that name rehearse did not make (before any slow step). `key` is the config
    /// key naming this database, for the message when it does not exist.
    /// This database's character set and collation, which the databases made beside it take;
    /// an error naming the config `key` when it does not exist.
    fn own_defaults(&self, admin: &mut MysqlConn, key: &str) -> anyhow::Result<(String, String)> {
        admin.database_defaults(&self.database)?.ok_or_else(|| {
            anyhow!("MySQL database {} does not exist on {}: check {key}", self.database, self.params.place())
        })
    }

    /// The GET_LOCK name a promotion of this database holds throughout (any workdir), and a
    /// rehearsal while it copies it. MySQL refuses names over 64 characters: a long database name
    /// is replaced by a hash of it.
    fn promotion_lock(&self) -> String {
        promotion_lock_name(&self.database)
    }

    fn test_copy_plan(&self, key: &str) -> anyhow::Result<TestCopyPlan> {
        if self.role != Role::Live {
            bail!("{} is not a live database: rehearse makes a test copy next to live only", self.describe());
        }
        let copy = self.derived_name(TEST_COPY_SUFFIX)?;
        let mut admin = self.admin()?;
        let defaults = self.own_defaults(&mut admin, key)?;
        let role = Role::TestCopy { live: self.database.clone() };
        {
            let mut marker = Marker { conn: &mut admin, live: self.database.clone() };
            marker.ensure()?;
            marker.check_replaceable(&copy, &role)?;
        }
        Ok((admin, copy, role, defaults))
    }
}

impl Engine for Mysql {
    fn dialect(&self) -> Dialect {
        Dialect::Mysql
    }

    fn describe(&self) -> String {
        format!("MySQL database {} on {}", self.database, self.params.place())
    }

    fn url(&self) -> String {
        self.params.url(&self.database)
    }

    fn name(&self) -> String {
        self.database.clone()
    }

    fn connect(&self) -> anyhow::Result<Box<dyn Connection>> {
        Ok(Box::new(MysqlConn::open(&self.params, Some(&self.database), self.access)?))
    }

    fn clone_to_test_copy(&self, workdir: &Path) -> anyhow::Result<Cloned> {
        let (mut admin, copy, role, defaults) = self.test_copy_plan("live.url")?;
        let tools = self.tools(&admin)?;
        let backup = workdir.join(format!("{}.dump.sql", self.database));
        self.dump(&tools, workdir, &backup)?;
        self.recreate(&mut admin, &copy, &role, &defaults)?;
        drop(admin);
        self.load(&tools, workdir, &copy, &backup)?;
        Ok(Cloned { test_copy: Box::new(self.sibling(copy, role)), backup })
    }

    fn empty_test_copy(&self, _workdir: &Path) -> anyhow::Result<Box<dyn Engine>> {
        let (mut admin, copy, role, defaults) = self.test_copy_plan("test.url")?;
        self.recreate(&mut admin, &copy, &role, &defaults)?;
        Ok(Box::new(self.sibling(copy, role)))
    }

    fn scratch(&self, workdir: &Path) -> anyhow::Result<Box<dyn Engine>> {
        let _ = workdir;
        if self.role != Role::Live {
            bail!("{} is not a live database: rehearse makes a scratch database next to live only", self.describe());
        }
        let name = self.derived_name(SCRATCH_SUFFIX)?;
        let mut admin = self.admin()?;
        // The scratch database is made beside live, or beside test.url's database in an engine switch.
        let defaults = self.own_defaults(&mut admin, "live.url (test.url in an engine switch)")?;
        let role = Role::Scratch { live: self.live_name().to_string() };
        self.recreate(&mut admin, &name, &role, &defaults)?;
        Ok(Box::new(self.sibling(name, role)))
    }

    fn drop_scratch(&self) -> anyhow::Result<()> {
        if !matches!(self.role, Role::Scratch { .. }) {
            return Err(
                Refused(format!("{} is not a scratch database; rehearse does not drop it", self.describe())).into()
            );
        }
        let mut admin = self.admin()?;
        let mut marker = Marker { conn: &mut admin, live: self.live_name().to_string() };
        if marker.exists(&self.database)? {
            marker.drop_marked(&self.database, &self.role)?;
        }
        Ok(())
    }

    fn made_by_rehearse(&self) -> anyhow::Result<Option<String>> {
        let mut conn = MysqlConn::open(&self.params, Some(&self.database), Access::ReadOnly)?;
        // No marker table: rehearse never made a database on this server.
        let Ok(rows) = conn.rows(&format!(
            "SELECT `role`, `live_db` FROM {}.`copies` WHERE `db_name` = {}",
            Q.quote(META_DB),
            Q.literal(&self.database)
        )) else {
            return Ok(None);
        };
        let Some(r) = rows.into_iter().next() else { return Ok(None) };
        let (role, of) = (r[0].clone().unwrap_or_default(), r[1].clone().unwrap_or_default());
        Ok(match role.as_str() {
            "test_copy" => Some(format!("the test copy rehearse made of {of} (marked in {META_DB}.copies)")),
            "scratch" => Some(format!("the scratch database rehearse made for {of} (marked in {META_DB}.copies)")),
            _ => None,
        })
    }

    fn promotion(&self, _workdir: &Path) -> anyhow::Result<Box<dyn Promotion>> {
        if self.role != Role::Live {
            bail!("{} is not a live database", self.describe());
        }
        let mut lock = MysqlConn::open(&self.params, Some(&self.database), Access::ReadWrite)?;
        if !lock.get_lock(&self.promotion_lock(), LOCK_WAIT)? {
            return Err(Refused(format!(
                "another rehearse holds the lock {} on {} (a --live promoting it, or a rehearsal copying it): wait for it to finish",
                self.promotion_lock(),
                self.describe()
            ))
            .into());
        }
        Ok(Box::new(MysqlPromotion { live: self.sibling(self.database.clone(), Role::Live), lock, backup: None }))
    }

    /// Take the promotion's own lock (GET_LOCK on a read-only session) for the clone, so that no
    /// `--live` changes live while it is copied and no copy is made of a half-promoted live.
    fn hold_off_promotions(&self) -> anyhow::Result<Box<dyn std::any::Any>> {
        if self.role != Role::Live {
            return Ok(Box::new(()));
        }
        let mut lock = MysqlConn::open(&self.params, Some(&self.database), Access::ReadOnly)?;
        if !lock.get_lock(&self.promotion_lock(), LOCK_WAIT)? {
            return Err(Refused(format!(
                "a rehearse --live is promoting {} (it has held the lock {} for more than {} s): a copy now would be of a half-migrated live; \
                 rehearse again once it has finished (after a crash: rehearse recover); nothing was done",
                self.describe(),
                self.promotion_lock(),
                LOCK_WAIT.as_secs()
            ))
            .into());
        }
        // Dropping the session releases the lock.
        Ok(Box::new(lock))
    }

    fn restore_test_copy(&self, backup: &Path) -> anyhow::Result<()> {
        if !matches!(self.role, Role::TestCopy { .. }) {
            return Err(Refused(format!(
                "{} is not a test copy; rehearse restores only its test copies",
                self.describe()
            ))
            .into());
        }
        if !backup.is_file() {
            bail!("the backup {} is missing: the test copy {} cannot be restored", backup.display(), self.database);
        }
        let dir = backup.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut admin = self.admin()?;
        let defaults = match admin.database_defaults(&self.database)? {
            Some(d) => d,
            None => admin.database_defaults(self.live_name())?.ok_or_else(|| {
                anyhow!("neither {} nor live {} exists on {}", self.database, self.live_name(), self.params.place())
            })?,
        };
        let tools = self.tools(&admin)?;
        self.recreate(&mut admin, &self.database, &self.role, &defaults)?;
        drop(admin);
        self.load(&tools, dir, &self.database, backup)
    }
}

// --------------------------------------------------------------------------------- promotion --

/// `--live` on MySQL: DDL commits statement by statement, so the script runs on live itself and a
/// failure is undone by restoring live from the dump taken just before, holding GET_LOCK throughout.
/// The live database is never dropped: tables the script created are dropped, then the dump (its
/// `DROP TABLE IF EXISTS` + `CREATE TABLE` + rows per table) is loaded back into it.
struct MysqlPromotion {
    live: Mysql,
    lock: MysqlConn,
    backup: Option<PathBuf>,
}

impl Promotion for MysqlPromotion {
    fn backup(&mut self, workdir: &Path) -> anyhow::Result<PathBuf> {
        let stamp = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string().replace(':', "");
        let path = workdir.join(format!("{}.pre-upgrade-{stamp}.sql", self.live.database));
        let tools = self.live.tools(&self.lock)?;
        // Nothing has written to live yet: a backup that fails or does not verify stops here.
        self.live.dump(&tools, workdir, &path).map_err(|e| {
            Refused(format!(
                "cannot take a verified backup of live before the script: {e:#}; live {} is unchanged (nothing was written to it)",
                self.live.describe()
            ))
        })?;
        self.backup = Some(path.clone());
        Ok(path)
    }

    fn connection(&mut self) -> anyhow::Result<Box<dyn Connection>> {
        self.live.connect()
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        let name = Q.literal(&self.live.promotion_lock());
        let _ = self.lock.exec(&format!("DO RELEASE_LOCK({name})"));
        Ok(())
    }

    fn undo(&mut self) -> anyhow::Result<String> {
        let Some(backup) = self.backup.clone() else {
            return Ok(format!("{} was not touched: the failure came before the backup", self.live.describe()));
        };
        self.restore_from(&backup)
    }

    fn restore_from(&mut self, backup: &Path) -> anyhow::Result<String> {
        // Only a whole dump is loaded: a cut one would leave live between two states.
        let in_dump = verify_dump(backup, &[])
            .map_err(|e| Refused(format!("{e:#}; {} was not touched by the restore", self.live.describe())))?
            .tables;
        let db = Q.literal(&self.live.database);
        let now: Vec<String> = self
            .lock
            .rows(&format!("SELECT table_name FROM information_schema.tables WHERE table_schema = {db} AND table_type = 'BASE TABLE'"))?
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect();
        let created: Vec<&String> = now.iter().filter(|t| !in_dump.contains(t)).collect();
        if !created.is_empty() {
            let list: Vec<String> =
                created.iter().map(|t| format!("{}.{}", Q.quote(&self.live.database), Q.quote(t))).collect();
            let drop = format!("DROP TABLE IF EXISTS {}", list.join(", "));
            for sql in ["SET FOREIGN_KEY_CHECKS = 0", drop.as_str(), "SET FOREIGN_KEY_CHECKS = 1"] {
                self.lock
                    .exec(sql)
                    .map_err(|e| anyhow!("cannot drop the tables the script created: {}", server_message(&e)))?;
            }
        }
        let tools = self.live.tools(&self.lock)?;
        let dir = backup.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        self.live.load(&tools, dir, &self.live.database.clone(), backup)?;
        Ok(format!(
            "{} was restored from {}: it is as it was before the promotion",
            self.live.describe(),
            backup.display()
        ))
    }
}

// ------------------------------------------------------------------------------------ marker --

/// Which databases rehearse made, so that it drops nothing else.
///
/// A row per database in `rehearse_meta.copies`, written before the database is created and
/// deleted after it is dropped. Why a separate database: a marker table inside the copy would
/// pollute the schema being compared and the dumps; MariaDB has no database comments before
/// 11.x; a file in the workdir would not stop another workdir (or another config) from dropping
/// a database by the same name. The row lives on the server next to the databases it vouches
/// for, and a marker whose database is gone is cleared before the name is used again.
struct Marker<'a> {
    conn: &'a mut MysqlConn,
    live: String,
}

impl Marker<'_> {
    fn ensure(&mut self) -> anyhow::Result<()> {
        let meta = Q.quote(META_DB);
        for sql in [
            format!("CREATE DATABASE IF NOT EXISTS {meta} CHARACTER SET utf8mb4"),
            format!(
                "CREATE TABLE IF NOT EXISTS {meta}.`copies` (\
                   `db_name` varchar(64) COLLATE utf8mb4_bin NOT NULL PRIMARY KEY, \
                   `role` varchar(16) NOT NULL, \
                   `live_db` varchar(64) COLLATE utf8mb4_bin NOT NULL, \
                   `created_at` datetime NOT NULL, \
                   `created_by` varchar(64) NOT NULL) \
                 COMMENT 'databases made by rehearse: only these may be dropped by it'"
            ),
        ] {
            self.conn.exec(&sql).map_err(|e| {
                anyhow!(
                    "cannot prepare {META_DB} (where rehearse marks the databases it makes) on {}: {}; grant the user CREATE on {META_DB}.*",
                    self.conn.place,
                    server_message(&e)
                )
            })?;
        }
        Ok(())
    }

    fn exists(&mut self, name: &str) -> anyhow::Result<bool> {
        let rows = self
            .conn
            .rows(&format!("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {}", Q.literal(name)))?;
        Ok(!rows.is_empty())
    }

    fn role_of(&mut self, name: &str) -> anyhow::Result<Option<(String, String)>> {
        let rows = self.conn.rows(&format!(
            "SELECT `role`, `live_db` FROM {}.`copies` WHERE `db_name` = {}",
            Q.quote(META_DB),
            Q.literal(name)
        ))?;
        Ok(rows.into_iter().next().map(|r| (r[0].clone().unwrap_or_default(), r[1].clone().unwrap_or_default())))
    }

    /// Fine when `name` does not exist or rehearse made it for this live database and role.
    fn check_replaceable(&mut self, name: &str, role: &Role) -> anyhow::Result<()> {
        if !self.exists(name)? {
            // A marker left by a database dropped by hand vouches for nothing now.
            self.unmark(name)?;
            return Ok(());
        }
        self.guard(name, role)
    }

    /// Every reason never to drop `name`, checked whatever the caller believes.
    fn guard(&mut self, name: &str, role: &Role) -> anyhow::Result<()> {
        let refuse = |why: String| -> anyhow::Result<()> { Err(Refused(why).into()) };
        if name == self.live || name.eq_ignore_ascii_case(&self.live) {
            return refuse(format!("the database {name} is named like live: rehearse never drops it"));
        }
        if SYSTEM_DATABASES.contains(&name.to_ascii_lowercase().as_str()) {
            return refuse(format!("{name} is a system database: rehearse never drops it"));
        }
        let suffix = match role {
            Role::TestCopy { .. } => TEST_COPY_SUFFIX,
            Role::Scratch { .. } => SCRATCH_SUFFIX,
            Role::Live => return refuse(format!("{name} is a live database: rehearse never drops it")),
        };
        if name != format!("{}{suffix}", self.live) {
            return refuse(format!("{name} is not the {} of {}: rehearse does not drop it", role.marker(), self.live));
        }
        match self.role_of(name)? {
            Some((r, live)) if r == role.marker() && live == self.live => Ok(()),
            _ => refuse(format!(
                "the database {name} on {} exists but was not made by rehearse (no marker in {META_DB}.copies): \
                 rehearse will not replace it; drop or rename it yourself if it is disposable",
                self.conn.place
            )),
        }
    }

    fn drop_marked(&mut self, name: &str, role: &Role) -> anyhow::Result<()> {
        self.guard(name, role)?;
        self.conn
            .exec(&format!("DROP DATABASE IF EXISTS {}", Q.quote(name)))
            .map_err(|e| anyhow!("cannot drop {name} on {}: {}", self.conn.place, server_message(&e)))?;
        self.unmark(name)
    }

    fn mark(&mut self, name: &str, role: &Role) -> anyhow::Result<()> {
        let sql = format!(
            "REPLACE INTO {}.`copies` (`db_name`, `role`, `live_db`, `created_at`, `created_by`) \
             VALUES ({}, {}, {}, NOW(), {})",
            Q.quote(META_DB),
            Q.literal(name),
            Q.literal(role.marker()),
            Q.literal(&self.live),
            Q.literal(&format!("rehearse {}", env!("CARGO_PKG_VERSION")))
        );
        self.conn.exec(&sql).map_err(|e| anyhow!("cannot mark {name} in {META_DB}: {}", server_message(&e)))?;
        Ok(())
    }

    fn unmark(&mut self, name: &str) -> anyhow::Result<()> {
        self.conn
            .exec(&format!("DELETE FROM {}.`copies` WHERE `db_name` = {}", Q.quote(META_DB), Q.literal(name)))
            .map_err(|e| anyhow!("cannot clear the marker of {name} in {META_DB}: {}", server_message(&e)))?;
        Ok(())
    }
}

// -------------------------------------------------------------------------------- connection --

/// An open connection, driven by its own current-thread tokio runtime so the traits stay
/// synchronous.
pub struct MysqlConn {
    rt: tokio::runtime::Runtime,
    conn: Option<mysql_async::Conn>,
    version: ServerVersion,
    place: String,
}

/// The server's own message and code, without the driver's wrapping.
fn server_message(e: &mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Server(s) => format!("{} (error {})", s.message, s.code),
        other => other.to_string(),
    }
}

impl MysqlConn {
    fn open(params: &Params, database: Option<&str>, access: Access) -> anyhow::Result<MysqlConn> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .context("cannot start the runtime for the MySQL driver")?;
        let place = params.place();
        let opts = params.opts(database);
        // The timer must be made inside the runtime.
        let connected =
            rt.block_on(async { tokio::time::timeout(CONNECT_TIMEOUT, mysql_async::Conn::new(opts)).await });
        let conn = match connected {
            Err(_) => bail!(
                "cannot reach the MySQL server at {place}: no answer in {}s (is it running, and are host and port right?)",
                CONNECT_TIMEOUT.as_secs()
            ),
            Ok(Err(e)) => return Err(connect_error(&e, params, database)),
            Ok(Ok(c)) => c,
        };
        let mut me = MysqlConn { rt, conn: Some(conn), version: ServerVersion::parse(""), place };
        let v = me.rows("SELECT VERSION()")?;
        me.version = ServerVersion::parse(v.first().and_then(|r| r[0].as_deref()).unwrap_or(""));
        if access == Access::ReadOnly {
            me.exec("SET SESSION TRANSACTION READ ONLY")
                .map_err(|e| anyhow!("cannot make the session read-only on {}: {}", me.place, server_message(&e)))?;
        }
        Ok(me)
    }

    /// Run one statement (text protocol), discarding results; the affected row count.
    fn exec(&mut self, sql: &str) -> Result<u64, mysql_async::Error> {
        let conn = self.conn.as_mut().expect("the connection is open until drop");
        self.rt.block_on(conn.query_drop(sql))?;
        Ok(conn.affected_rows())
    }

    fn rows(&mut self, sql: &str) -> anyhow::Result<Vec<Row>> {
        let conn = self.conn.as_mut().expect("the connection is open until drop");
        let rows: Vec<mysql_async::Row> =
            self.rt.block_on(conn.query(sql)).map_err(|e| anyhow!("{} in: {sql}", server_message(&e)))?;
        Ok(rows.into_iter().map(row_text).collect())
    }

    /// InnoDB's id of each table of this database: a table rebuilt by ALTER (COPY or INPLACE)
    /// gets a new one. None when the list cannot be read (it needs the PROCESS privilege).
    fn table_ids(&mut self) -> Option<Vec<(String, String)>> {
        let view = match self.version.flavor {
            Flavor::MariaDb => "INNODB_SYS_TABLES",
            Flavor::Mysql => "INNODB_TABLES",
        };
        let rows = self
            .rows(&format!(
                "SELECT NAME, CAST(TABLE_ID AS CHAR) FROM information_schema.{view} WHERE NAME LIKE CONCAT(DATABASE(), '/%')"
            ))
            .ok()?;
        Some(
            rows.into_iter()
                .filter_map(|r| {
                    let name = r.first()?.clone()?;
                    let table = decode_file_name(name.split_once('/')?.1);
                    Some((table, r.get(1)?.clone()?))
                })
                .collect(),
        )
    }

    /// GET_LOCK(`name`), waiting at most `wait`: whether this session now holds it.
    fn get_lock(&mut self, name: &str, wait: Duration) -> anyhow::Result<bool> {
        let got = self.rows(&format!("SELECT GET_LOCK({}, {})", Q.literal(name), wait.as_secs()))?;
        Ok(got.first().and_then(|r| r.first()).cloned().flatten().as_deref() == Some("1"))
    }

    /// Default character set and collation of a database, None when it does not exist.
    fn database_defaults(&mut self, name: &str) -> anyhow::Result<Option<(String, String)>> {
        let rows = self.rows(&format!(
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {}",
            Q.literal(name)
        ))?;
        Ok(rows.into_iter().next().map(|r| (s(&r[0]), s(&r[1]))))
    }
}

impl Drop for MysqlConn {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            let _ = self.rt.block_on(c.disconnect());
        }
    }
}

/// One clear line for the usual reasons a connection fails.
fn connect_error(e: &mysql_async::Error, params: &Params, database: Option<&str>) -> anyhow::Error {
    let place = params.place();
    match e {
        mysql_async::Error::Server(s) if s.code == 1045 => anyhow!(
            "the MySQL server at {place} denied access to user {:?} ({}): check the user and password in live.url or the option file",
            params.user,
            if params.has_password() { "with a password" } else { "without a password" }
        ),
        mysql_async::Error::Server(s) if s.code == 1044 => anyhow!(
            "the MySQL server at {place} denied user {:?} access to database {}: grant it, or use another user",
            params.user,
            database.unwrap_or("?")
        ),
        mysql_async::Error::Server(s) if s.code == 1049 => {
            anyhow!("MySQL database {} does not exist on {place}: check live.url", database.unwrap_or("?"))
        }
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => {
            anyhow!("cannot reach the MySQL server at {place}: {e} (is it running, and are host and port right?)")
        }
        other => anyhow!("cannot connect to the MySQL server at {place}: {}", server_message(other)),
    }
}

/// A row as text. Binary strings (charset 63) become `x'..'` so samples stay printable.
fn row_text(row: mysql_async::Row) -> Row {
    use mysql_async::consts::ColumnType::*;
    let binary: Vec<bool> = row
        .columns_ref()
        .iter()
        .map(|c| {
            c.character_set() == 63
                && matches!(
                    c.column_type(),
                    MYSQL_TYPE_STRING
                        | MYSQL_TYPE_VAR_STRING
                        | MYSQL_TYPE_VARCHAR
                        | MYSQL_TYPE_BLOB
                        | MYSQL_TYPE_TINY_BLOB
                        | MYSQL_TYPE_MEDIUM_BLOB
                        | MYSQL_TYPE_LONG_BLOB
                )
        })
        .collect();
    row.unwrap()
        .into_iter()
        .zip(binary)
        .map(|(v, bin)| match v {
            mysql_async::Value::NULL => None,
            mysql_async::Value::Bytes(b) => match (bin, String::from_utf8(b)) {
                (false, Ok(text)) => Some(text),
                (_, Ok(text)) => Some(hex(text.as_bytes())),
                (_, Err(e)) => Some(hex(e.as_bytes())),
            },
            other => Some(other.as_sql(true).trim_matches('\'').to_string()),
        })
        .collect()
}

fn hex(b: &[u8]) -> String {
    format!("x'{}'", b.iter().map(|x| format!("{x:02x}")).collect::<String>())
}

fn s(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

/// Statements that would leave the database rehearse works on: it refuses them in scripts and
/// in the new code's schema, so they cannot reach live through a test copy or scratch session.
fn switches_database(sql: &str) -> bool {
    let words: Vec<String> = sql.split_whitespace().take(2).map(|w| w.to_ascii_uppercase()).collect();
    match words.first().map(String::as_str) {
        Some("USE") => true,
        Some("CREATE" | "DROP" | "ALTER") => {
            matches!(words.get(1).map(String::as_str), Some("DATABASE" | "SCHEMA"))
        }
        _ => false,
    }
}

impl Connection for MysqlConn {
    fn introspect(&mut self) -> anyhow::Result<Schema> {
        let defaults = self.rows(
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA \
             WHERE SCHEMA_NAME = DATABASE()",
        )?;
        let Some(d) = defaults.into_iter().next() else {
            bail!("no database is selected on {}: introspection needs one", self.place);
        };
        let (db_charset, db_collation) = (s(&d[0]), s(&d[1]));
        let mut tables: BTreeMap<String, Table> = BTreeMap::new();
        for r in self.rows(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME <> 'rehearse_history' \
             AND TABLE_NAME NOT LIKE 'rehearse\\\\_archive\\\\_%'",
        )? {
            let name = s(&r[0]);
            tables.insert(name.clone(), Table { name, ..Default::default() });
        }

        // Checks first: MariaDB stores JSON as longtext with a json_valid check.
        let checks_sql = match (self.version.has_check_constraints(), self.version.flavor) {
            (false, _) => None,
            (true, Flavor::MariaDb) => Some(
                "SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
                 WHERE CONSTRAINT_SCHEMA = DATABASE() ORDER BY TABLE_NAME, CONSTRAINT_NAME",
            ),
            (true, Flavor::Mysql) => Some(
                "SELECT tc.TABLE_NAME, cc.CONSTRAINT_NAME, cc.CHECK_CLAUSE FROM information_schema.TABLE_CONSTRAINTS tc \
                 JOIN information_schema.CHECK_CONSTRAINTS cc ON cc.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA \
                   AND cc.CONSTRAINT_NAME = tc.CONSTRAINT_NAME \
                 WHERE tc.TABLE_SCHEMA = DATABASE() AND cc.CONSTRAINT_SCHEMA = DATABASE() AND tc.CONSTRAINT_TYPE = 'CHECK' \
                 ORDER BY tc.TABLE_NAME, cc.CONSTRAINT_NAME",
            ),
        };
        let mut checks: BTreeMap<String, Vec<Check>> = BTreeMap::new();
        if let Some(sql) = checks_sql {
            for r in self.rows(sql)? {
                checks.entry(s(&r[0])).or_default().push(Check { name: r[1].clone(), expr: s(&r[2]), sql: None });
            }
        }

        let cols = self.rows(
            "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, \
               CHARACTER_SET_NAME, COLLATION_NAME \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, ORDINAL_POSITION",
        )?;
        for r in cols {
            let Some(t) = tables.get_mut(&s(&r[0])) else { continue };
            let name = s(&r[1]);
            let extra = s(&r[5]).to_ascii_lowercase();
            let table_checks = checks.entry(t.name.clone()).or_default();
            let json_check =
                table_checks.iter().position(|c| is_json_check(&c.expr, &name) && c.name.as_deref() == Some(&name));
            let is_json = s(&r[2]).eq_ignore_ascii_case("longtext") && json_check.is_some();
            let data_type = if is_json {
                table_checks.remove(json_check.unwrap_or_default());
                "json".to_string()
            } else {
                let base = normalize_type(&s(&r[2]));
                base + &charset_suffix(r[6].as_deref(), r[7].as_deref(), &db_charset, &db_collation)
            };
            let default = normalize_default(r[4].as_deref(), &data_type, &extra, self.version.flavor);
            t.columns.push(Column {
                name,
                nullable: s(&r[3]) == "YES",
                default,
                auto_increment: extra.contains("auto_increment"),
                data_type,
                // Identity columns are PostgreSQL's; MySQL has AUTO_INCREMENT only.
                ..Default::default()
            });
        }
        for (table, list) in checks {
            if let Some(t) = tables.get_mut(&table) {
                t.checks = list;
            }
        }

        let stats = self.rows(
            "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART \
             FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
             ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
        )?;
        let mut indexes: BTreeMap<(String, String), (bool, Vec<String>)> = BTreeMap::new();
        for r in stats {
            let column = match (&r[3], &r[4]) {
                (Some(c), Some(prefix)) => format!("{c}({prefix})"),
                (Some(c), None) => c.clone(),
                (None, _) => "<expr>".to_string(),
            };
            let e = indexes.entry((s(&r[0]), s(&r[1]))).or_insert((s(&r[2]) == "0", vec![]));
            e.1.push(column);
        }
        for ((table, name), (unique, columns)) in indexes {
            let Some(t) = tables.get_mut(&table) else { continue };
            if name == "PRIMARY" {
                t.primary_key = columns;
            } else if unique {
                t.uniques.push(Unique { name: Some(name), columns });
            } else {
                t.indexes.push(Index { name, columns, unique: false, predicate: None, sql: None });
            }
        }

        let fks = self.rows(
            "SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, \
               r.UPDATE_RULE, r.DELETE_RULE \
             FROM information_schema.KEY_COLUMN_USAGE k \
             JOIN information_schema.REFERENTIAL_CONSTRAINTS r ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA \
               AND r.TABLE_NAME = k.TABLE_NAME AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME \
             WHERE k.TABLE_SCHEMA = DATABASE() AND r.CONSTRAINT_SCHEMA = DATABASE() \
               AND k.REFERENCED_TABLE_NAME IS NOT NULL \
             ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION",
        )?;
        let mut grouped: BTreeMap<(String, String), ForeignKey> = BTreeMap::new();
        for r in fks {
            let fk = grouped.entry((s(&r[0]), s(&r[1]))).or_insert_with(|| ForeignKey {
                name: r[1].clone(),
                columns: vec![],
                ref_table: s(&r[3]),
                ref_columns: vec![],
                on_update: fk_action(r[5].as_deref()),
                on_delete: fk_action(r[6].as_deref()),
                deferrable: None,
            });
            fk.columns.push(s(&r[2]));
            fk.ref_columns.push(s(&r[4]));
        }
        for ((table, _), fk) in grouped {
            if let Some(t) = tables.get_mut(&table) {
                t.foreign_keys.push(fk);
            }
        }
        // Triggers as DDL (not part of the fingerprint), in the order they fire.
        for r in self.rows(
            "SELECT EVENT_OBJECT_TABLE, TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION, ACTION_STATEMENT \
             FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() \
             ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER, TRIGGER_NAME",
        )? {
            if let Some(t) = tables.get_mut(&s(&r[0])) {
                t.triggers.push(format!(
                    "CREATE TRIGGER {} {} {} ON {} FOR EACH ROW {}",
                    Q.quote(&s(&r[1])),
                    s(&r[2]),
                    s(&r[3]),
                    Q.quote(&t.name),
                    s(&r[4])
                ));
            }
        }
        Ok(Schema { engine: "mysql".into(), tables: tables.into_values().collect() })
    }

    fn query(&mut self, sql: &str) -> anyhow::Result<Vec<Row>> {
        self.rows(sql)
    }

    fn stream(
        &mut self,
        select: &str,
        batch: usize,
        f: &mut dyn FnMut(Vec<Row>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let conn = self.conn.as_mut().expect("the connection is open until drop");
        let failed = |e: mysql_async::Error| anyhow!("{} in: {select}", server_message(&e));
        self.rt.block_on(async {
            let mut result = conn.query_iter(select).await.map_err(failed)?;
            let mut page = Vec::with_capacity(batch);
            while let Some(row) = result.next().await.map_err(failed)? {
                page.push(row_text(row));
                if page.len() >= batch {
                    f(std::mem::replace(&mut page, Vec::with_capacity(batch)))?;
                }
            }
            if !page.is_empty() {
                f(page)?;
            }
            Ok(())
        })
    }

    fn execute_batch(&mut self, sql: &str) -> anyhow::Result<()> {
        for st in crate::sqltext::split(sql, Dialect::Mysql) {
            if switches_database(&st.sql) {
                bail!(
                    "line {}: {:?} would leave the database rehearse works on; remove it (rehearse chooses the database)",
                    st.line,
                    st.sql.lines().next().unwrap_or("")
                );
            }
            self.exec(&st.sql).map_err(|e| anyhow!("statement at line {} failed: {}", st.line, server_message(&e)))?;
        }
        Ok(())
    }

    /// MySQL commits DDL implicitly: statements run one by one (DML between DDL in a
    /// transaction that a failure rolls back), and rollback of the rest is the caller's restore
    /// from the dump. The session is strict first, so a statement fails rather than truncate,
    /// zero or coerce data; the script's own settings (its prelude) come after and win, because
    /// the script is what the sysadmin reviewed.
    fn run_in_transaction(
        &mut self,
        prelude: &[Statement],
        body: &[Statement],
        before_commit: &mut dyn FnMut(&mut dyn Connection) -> anyhow::Result<()>,
    ) -> Result<Vec<StatementTiming>, StatementFailure> {
        let fail =
            |st: &Statement, message: String| StatementFailure { line: st.line, statement: st.sql.clone(), message };
        let strict = Statement::new(0, format!("SET SESSION sql_mode = {}", Q.literal(STRICT_SQL_MODE)));
        self.exec(&strict.sql).map_err(|e| fail(&strict, server_message(&e)))?;
        for st in prelude.iter().chain(body) {
            if switches_database(&st.sql) {
                return Err(fail(st, "the script may not switch or create databases (USE, CREATE/DROP DATABASE): rehearse runs it on the database it was made for".into()));
            }
        }
        for st in prelude {
            self.exec(&st.sql).map_err(|e| fail(st, server_message(&e)))?;
        }
        let begin = Statement::new(0, "START TRANSACTION");
        self.exec(&begin.sql).map_err(|e| fail(&begin, server_message(&e)))?;
        let mut timings = Vec::new();
        let mut ids = self.table_ids();
        for st in body {
            if let Some(g) = &st.guard {
                match super::run_guard(self, st, g) {
                    Ok(t) => timings.push(t),
                    Err(f) => {
                        let _ = self.exec("ROLLBACK");
                        return Err(f);
                    }
                }
                continue;
            }
            let started = Instant::now();
            match self.exec(&st.sql) {
                Ok(rows) => {
                    let millis = super::millis(started.elapsed());
                    let (rewrote, algorithm) = match (&ids, is_ddl(&st.sql)) {
                        (Some(before), true) => {
                            let after = self.table_ids().unwrap_or_default();
                            let rebuilt: Vec<String> = after
                                .iter()
                                .filter(|(t, id)| before.iter().any(|(bt, bid)| bt == t && bid != id))
                                .map(|(t, _)| t.clone())
                                .collect();
                            let algorithm = match (rebuilt.is_empty(), rows > 0) {
                                (true, _) if builds_index(&st.sql) => "inplace",
                                (true, _) => "instant",
                                (false, true) => "copy",
                                (false, false) => "inplace, rebuilt",
                            };
                            ids = Some(after);
                            (rebuilt, Some(algorithm.to_string()))
                        }
                        _ => (vec![], None),
                    };
                    timings.push(StatementTiming { line: st.line, millis, rows, rewrote, algorithm })
                }
                Err(e) => {
                    let _ = self.exec("ROLLBACK");
                    return Err(fail(st, server_message(&e)));
                }
            }
        }
        // The DDL is already committed; verification runs last, and a failure is restored by the
        // caller like any other.
        if let Err(e) = before_commit(self) {
            let _ = self.exec("ROLLBACK");
            return Err(StatementFailure { line: 0, statement: "(verification)".into(), message: format!("{e:#}") });
        }
        let commit = Statement::new(0, "COMMIT");
        self.exec(&commit.sql).map_err(|e| {
            let _ = self.exec("ROLLBACK");
            fail(&commit, server_message(&e))
        })?;
        Ok(timings)
    }

    fn castable(&mut self, expr: &str, from_type: &str, to_type: &str) -> anyhow::Result<Option<String>> {
        Ok(cast_check(expr, from_type, to_type))
    }

    fn char_length(&self, expr: &str) -> String {
        format!("CHAR_LENGTH({expr})")
    }

    fn as_text(&self, expr: &str) -> String {
        format!("CAST({expr} AS CHAR)")
    }
}

/// Statements that may rebuild a table.
fn is_ddl(sql: &str) -> bool {
    let first = sql.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
    matches!(first.as_str(), "ALTER" | "CREATE" | "DROP" | "RENAME" | "OPTIMIZE" | "TRUNCATE")
}

/// Whether a DDL statement builds an index: InnoDB reads the whole table for it (in place,
/// writes allowed) even though the table keeps its id.
fn builds_index(sql: &str) -> bool {
    let up = sql.to_ascii_uppercase();
    let words: Vec<&str> = up.split(|c: char| !c.is_ascii_alphanumeric() && c != '_').collect();
    words.windows(2).any(|w| {
        matches!(
            (w[0], w[1]),
            ("ADD", "INDEX" | "KEY" | "UNIQUE" | "CONSTRAINT" | "PRIMARY" | "FOREIGN") | ("CREATE", "INDEX" | "UNIQUE")
        )
    })
}

/// A table name as InnoDB files it: characters outside [A-Za-z0-9_] are written `@XXXX` (hex
/// code point).
fn decode_file_name(name: &str) -> String {
    let mut out = String::new();
    let mut rest = name;
    while let Some(i) = rest.find('@') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 5).and_then(|h| u32::from_str_radix(h, 16).ok()).and_then(char::from_u32);
        match code {
            Some(c) => {
                out.push(c);
                rest = &rest[i + 5..];
            }
            None => {
                out.push('@');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

// ----------------------------------------------------------------------------- normalization --

/// A MySQL `COLUMN_TYPE` in the neutral spelling: `int(11)` is `integer`, `tinyint(1)` is
/// `boolean`, `decimal(10,2)` is `numeric(10,2)`, `double` is `double precision`, `float` is
/// `real`; `unsigned` and `zerofill` are kept; enum and set values are kept as written.
pub fn normalize_type(column_type: &str) -> String {
    let t = column_type.trim();
    let lower = t.to_ascii_lowercase();
    for kw in ["enum", "set"] {
        if lower.starts_with(&format!("{kw}(")) {
            return format!("{kw}{}", &t[kw.len()..]);
        }
    }
    let (head, mods) = match lower.find(')') {
        Some(i) => (&lower[..=i], lower[i + 1..].trim()),
        None => match lower.find(' ') {
            Some(i) => (&lower[..i], lower[i + 1..].trim()),
            None => (lower.as_str(), ""),
        },
    };
    let (base, args) = match head.split_once('(') {
        Some((b, a)) => (b.trim(), Some(a.trim_end_matches(')').replace(' ', ""))),
        None => (head.trim(), None),
    };
    let unsigned = mods.split_whitespace().any(|m| m == "unsigned");
    let zerofill = mods.split_whitespace().any(|m| m == "zerofill");
    let with_args = |name: &str| match &args {
        Some(a) => format!("{name}({a})"),
        None => name.to_string(),
    };
    let mut out = match base {
        "tinyint" if args.as_deref() == Some("1") && !unsigned && !zerofill => return "boolean".into(),
        "bool" | "boolean" => return "boolean".into(),
        "tinyint" | "smallint" | "mediumint" | "bigint" => base.to_string(),
        "int" | "integer" => "integer".to_string(),
        "decimal" | "numeric" | "dec" | "fixed" => with_args("numeric"),
        "double" | "double precision" => with_args("double precision"),
        "float" | "real" => with_args("real"),
        "year" => "year".to_string(),
        _ => with_args(base),
    };
    if unsigned || zerofill {
        out.push_str(" unsigned");
    }
    if zerofill {
        out.push_str(" zerofill");
    }
    out
}

/// ` character set X collate Y` (or ` collate Y`) when a column's differs from the database's
/// default; empty otherwise, so equal schemas on databases with equal defaults compare equal.
/// Written as DDL so a script can use the type as it is.
fn charset_suffix(charset: Option<&str>, collation: Option<&str>, db_charset: &str, db_collation: &str) -> String {
    match (charset, collation) {
        (Some(cs), Some(co)) if cs != db_charset => format!(" character set {cs} collate {co}"),
        (_, Some(co)) if co != db_collation => format!(" collate {co}"),
        _ => String::new(),
    }
}

/// `json_valid(`col`)`, the check MariaDB adds for a JSON column.
fn is_json_check(expr: &str, column: &str) -> bool {
    let e: String = expr.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
    e == format!("json_valid(`{}`)", column.to_ascii_lowercase().replace('`', "``"))
}

/// A column default as SQL text: None for no default or a NULL default (MariaDB reports the
/// latter as the text `NULL`), `CURRENT_TIMESTAMP` for `current_timestamp()`, string literals
/// quoted (MariaDB quotes them already; MySQL does not).
pub fn normalize_default(raw: Option<&str>, data_type: &str, extra: &str, flavor: Flavor) -> Option<String> {
    let raw = raw?;
    if raw.eq_ignore_ascii_case("null") {
        return None;
    }
    let lower = raw.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("current_timestamp") {
        let precision = rest.trim_start_matches('(').trim_end_matches(')');
        return Some(if precision.is_empty() {
            "CURRENT_TIMESTAMP".into()
        } else {
            format!("CURRENT_TIMESTAMP({precision})")
        });
    }
    match flavor {
        Flavor::MariaDb => Some(raw.to_string()),
        Flavor::Mysql => {
            if extra.contains("default_generated") {
                return Some(format!("({raw})"));
            }
            match Family::of(data_type) {
                Family::Integer | Family::Decimal | Family::Float | Family::Boolean => Some(raw.to_string()),
                _ if lower.starts_with("b'") || lower.starts_with("0x") => Some(raw.to_string()),
                _ => Some(Q.literal(raw)),
            }
        }
    }
}

fn fk_action(rule: Option<&str>) -> Option<String> {
    match rule.map(str::to_ascii_uppercase).as_deref() {
        None | Some("") | Some("NO ACTION") | Some("RESTRICT") => None,
        Some(a) => Some(a.to_string()),
    }
}

// --------------------------------------------------------------------------------- castable --

const INTEGER_TEXT: &str = "'^[[:space:]]*[-+]?[0-9]+[[:space:]]*$'";
const NUMBER_TEXT: &str = "'^[[:space:]]*[-+]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][-+]?[0-9]+)?[[:space:]]*$'";
const DATE_TEXT: &str = "'^[0-9]{4}-(0?[1-9]|1[0-2])-(0?[1-9]|[12][0-9]|3[01])$'";
const DATETIME_TEXT: &str = "'^[0-9]{4}-(0?[1-9]|1[0-2])-(0?[1-9]|[12][0-9]|3[01])([ T]([01]?[0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.][0-9]{1,6})?)?)?$'";
const TIME_TEXT: &str = "'^-?[0-9]{1,3}:[0-5][0-9](:[0-5][0-9]([.][0-9]{1,6})?)?$'";

/// The range of an integer type (`boolean` is MySQL's tinyint(1)).
fn int_range(data_type: &str) -> Option<(i128, i128)> {
    let t = data_type.to_ascii_lowercase();
    let base = t.split(['(', ' ']).next().unwrap_or("");
    let bits = match base {
        "boolean" | "bool" | "tinyint" => 8,
        "smallint" => 16,
        "mediumint" => 24,
        "integer" | "int" => 32,
        "bigint" => 64,
        _ => return None,
    };
    Some(if t.contains("unsigned") {
        (0, (1i128 << bits) - 1)
    } else {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    })
}

fn base_of(data_type: &str) -> String {
    data_type
        .to_ascii_lowercase()
        .split('(')
        .next()
        .unwrap_or("")
        .split(" unsigned")
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

/// The values of `enum('a','b')` / `set(...)`, unquoted.
fn enum_values(data_type: &str) -> Vec<String> {
    let Some(open) = data_type.find('(') else { return vec![] };
    let close = data_type.rfind(')').unwrap_or(data_type.len());
    let inner: Vec<char> = data_type[open + 1..close].chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < inner.len() {
        if inner[i] == '\'' {
            let mut v = String::new();
            i += 1;
            while i < inner.len() {
                if inner[i] == '\'' && inner.get(i + 1) == Some(&'\'') {
                    v.push('\'');
                    i += 2;
                } else if inner[i] == '\'' {
                    break;
                } else if inner[i] == '\\' && i + 1 < inner.len() {
                    v.push(inner[i + 1]);
                    i += 2;
                } else {
                    v.push(inner[i]);
                    i += 1;
                }
            }
            out.push(v);
        }
        i += 1;
    }
    out
}

fn charset_of(data_type: &str) -> Option<String> {
    let t = data_type.to_ascii_lowercase();
    let at = t.find(" character set ")?;
    t[at + 15..].split_whitespace().next().map(str::to_string)
}

/// A condition true when a non-NULL `expr` of `from_type` converts to `to_type` with nothing
/// coerced, truncated, rounded or zeroed; None when every value does. MySQL converts silently
/// (`CAST('12abc' AS SIGNED)` is 12, with a warning), so the checks look at the text and range.
pub fn cast_check(expr: &str, from_type: &str, to_type: &str) -> Option<String> {
    use Family::*;
    if from_type.eq_ignore_ascii_case(to_type) {
        return None;
    }
    let (from, to) = (Family::of(from_type), Family::of(to_type));
    let txt = format!("CAST({expr} AS CHAR)");
    let to_base = base_of(to_type);
    match to {
        Integer | Boolean => {
            let (lo, hi) = int_range(to_type).unwrap_or((i64::MIN as i128, u64::MAX as i128));
            let range = format!("BETWEEN {lo} AND {hi}");
            match from {
                Integer | Boolean => match int_range(from_type) {
                    Some((flo, fhi)) if flo >= lo && fhi <= hi => None,
                    _ => Some(format!("{expr} {range}")),
                },
                Decimal | Float => Some(format!("({expr} = FLOOR({expr}) AND {expr} {range})")),
                // A signed type holds every number with fewer characters than its largest one:
                // those skip the (costly) decimal conversion.
                _ if lo < 0 => Some(format!(
                    "({txt} REGEXP {INTEGER_TEXT} AND (CHAR_LENGTH({txt}) < {} OR CAST({txt} AS DECIMAL(65,0)) {range}))",
                    hi.to_string().len()
                )),
                _ => Some(format!("({txt} REGEXP {INTEGER_TEXT} AND CAST({txt} AS DECIMAL(65,0)) {range})")),
            }
        }
        Decimal => {
            let (p, sc) = crate::schema::numeric_precision(to_type).unwrap_or((10, 0));
            let bound = format!("1{}", "0".repeat(p.saturating_sub(sc) as usize));
            let fits = |x: &str| format!("(ABS({x}) < {bound} AND {x} = ROUND({x}, {sc}))");
            match from {
                Integer | Boolean => {
                    let (lo, hi) = int_range(from_type).unwrap_or((i64::MIN as i128, u64::MAX as i128));
                    let need = lo.unsigned_abs().max(hi.unsigned_abs()).to_string().len() as u32;
                    if need <= p.saturating_sub(sc) {
                        None
                    } else {
                        Some(format!("ABS({expr}) < {bound}"))
                    }
                }
                Decimal => match crate::schema::numeric_precision(from_type) {
                    Some((fp, fs)) if fs <= sc && fp - fs <= p.saturating_sub(sc) => None,
                    _ => Some(fits(expr)),
                },
                Float => Some(fits(expr)),
                _ => {
                    let num = format!("CAST({txt} AS DECIMAL(65,30))");
                    Some(format!("({txt} REGEXP {NUMBER_TEXT} AND {})", fits(&num)))
                }
            }
        }
        Float => match from {
            Integer | Boolean | Decimal | Float => None,
            _ => Some(format!("{txt} REGEXP {NUMBER_TEXT}")),
        },
        Json => Some(format!("JSON_VALID({expr})")),
        Temporal => {
            let from_base = base_of(from_type);
            let from_dated = from == Temporal && matches!(from_base.as_str(), "date" | "datetime" | "timestamp");
            let ts_range = |x: &str| format!("{x} BETWEEN '1970-01-01 00:00:01' AND '2038-01-19 03:14:07'");
            match to_base.as_str() {
                "date" if from_dated => match from_base.as_str() {
                    "date" => None,
                    _ => Some(format!("TIME({expr}) = '00:00:00'")),
                },
                "date" => Some(format!("({txt} REGEXP {DATE_TEXT} AND CAST({txt} AS DATE) IS NOT NULL)")),
                "datetime" if from_dated => None,
                "datetime" => {
                    Some(format!("({txt} REGEXP {DATETIME_TEXT} AND CAST({txt} AS DATETIME(6)) IS NOT NULL)"))
                }
                "timestamp" if from_base == "timestamp" => None,
                "timestamp" if from_dated => Some(ts_range(expr)),
                "timestamp" => Some(format!(
                    "({txt} REGEXP {DATETIME_TEXT} AND CAST({txt} AS DATETIME(6)) IS NOT NULL AND {})",
                    ts_range(&format!("CAST({txt} AS DATETIME(6))"))
                )),
                "time" if from == Temporal => Some("FALSE".into()),
                "time" => Some(format!("({txt} REGEXP {TIME_TEXT} AND CAST({txt} AS TIME) IS NOT NULL)")),
                "year" => {
                    Some(format!("({txt} REGEXP '^[0-9]{{4}}$' AND CAST({txt} AS UNSIGNED) BETWEEN 1901 AND 2155)"))
                }
                _ => None,
            }
        }
        Text => {
            let mut conds = Vec::new();
            if to_base == "enum" {
                let values: Vec<String> = enum_values(to_type).iter().map(|v| Q.literal(v)).collect();
                conds.push(format!("{txt} IN ({})", values.join(", ")));
            } else if to_base == "set" {
                let alts: Vec<String> = enum_values(to_type).iter().map(|v| regex_escape(v)).collect();
                let one = format!("({})", alts.join("|"));
                conds.push(format!("({txt} = '' OR {txt} REGEXP {})", Q.literal(&format!("^{one}(,{one})*$"))));
            }
            if let Some(cs) = charset_of(to_type) {
                if charset_of(from_type).as_deref() != Some(cs.as_str()) {
                    // Characters the new character set lacks become '?' or fail.
                    conds.push(format!(
                        "CONVERT(CONVERT({txt} USING {cs}) USING utf8mb4) = CONVERT({txt} USING utf8mb4)"
                    ));
                }
            }
            if conds.is_empty() {
                None
            } else {
                Some(format!("({})", conds.join(" AND ")))
            }
        }
        // Binary keeps the bytes; other types (bit, geometry) are not probed.
        Binary | Other => None,
    }
}

fn regex_escape(v: &str) -> String {
    let mut out = String::new();
    for c in v.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_dump_counts_only_with_its_trailer_last_and_every_table_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sql");
        let whole = "-- MariaDB dump\nDROP TABLE IF EXISTS `a``b`;\nCREATE TABLE `a``b` (\n  `id` int\n);\n\
                     INSERT INTO `a``b` VALUES (1);\nCREATE TABLE `c` (\n  `id` int\n);\n-- Dump completed on 2026-01-01\n\n";
        fs_err::write(&path, whole).unwrap();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        verify_dump(&path, &names(&["a`b", "c"])).unwrap();
        assert_eq!(scan_dump(&path).unwrap().tables, names(&["a`b", "c"]));
        let missing = verify_dump(&path, &names(&["a`b", "c", "d"])).unwrap_err().to_string();
        assert!(missing.contains("lacks 1 table(s)") && missing.contains("(d)"), "{missing}");
        // Cut anywhere before the trailer: refused, even when every table was already created.
        fs_err::write(&path, &whole[..whole.find("-- Dump").unwrap()]).unwrap();
        let cut = verify_dump(&path, &names(&["a`b", "c"])).unwrap_err().to_string();
        assert!(cut.contains("cut short"), "{cut}");
        fs_err::write(&path, "").unwrap();
        assert!(verify_dump(&path, &[]).is_err(), "an empty file is no dump");
    }

    #[test]
    fn the_promotion_lock_name_fits_mysqls_64_characters() {
        assert_eq!(promotion_lock_name("eden"), "rehearse:eden");
        let long = "d".repeat(64);
        let name = promotion_lock_name(&long);
        assert!(name.len() <= 64 && name.starts_with("rehearse:"), "{name}");
        assert_ne!(name, promotion_lock_name(&"e".repeat(64)), "different databases, different locks");
    }

    #[test]
    fn a_dump_write_error_names_its_cause_and_file() {
        let m = name_write_error(
            "mariadb-dump failed (exit status 5): mariadb-dump: Got errno 28 on write",
            Path::new("/w/x"),
        );
        assert!(m.starts_with("no space left on device writing /w/x ("), "{m}");
        assert_eq!(name_write_error("failed: access denied", Path::new("/w/x")), "failed: access denied");
    }

    #[test]
    fn innodb_file_names_decode_to_table_names() {
        assert_eq!(decode_file_name("order@0020lines"), "order lines");
        assert_eq!(decode_file_name("plain_name"), "plain_name");
        assert_eq!(decode_file_name("odd@zz"), "odd@zz");
    }

    use super::*;

    #[test]
    fn mysql_types_get_the_neutral_spelling() {
        assert_eq!(normalize_type("tinyint(1)"), "boolean");
        assert_eq!(normalize_type("tinyint(4)"), "tinyint");
        assert_eq!(normalize_type("tinyint(3) unsigned"), "tinyint unsigned");
        assert_eq!(normalize_type("int(11)"), "integer");
        assert_eq!(normalize_type("int"), "integer");
        assert_eq!(normalize_type("int(10) unsigned"), "integer unsigned");
        assert_eq!(normalize_type("int unsigned"), "integer unsigned");
        assert_eq!(normalize_type("int(10) unsigned zerofill"), "integer unsigned zerofill");
        assert_eq!(normalize_type("bigint(20)"), "bigint");
        assert_eq!(normalize_type("mediumint(9)"), "mediumint");
        assert_eq!(normalize_type("decimal(10,2)"), "numeric(10,2)");
        assert_eq!(normalize_type("double"), "double precision");
        assert_eq!(normalize_type("float"), "real");
        assert_eq!(normalize_type("varchar(64)"), "varchar(64)");
        assert_eq!(normalize_type("char(2)"), "char(2)");
        assert_eq!(normalize_type("datetime(6)"), "datetime(6)");
        assert_eq!(normalize_type("year(4)"), "year");
        assert_eq!(normalize_type("enum('a','B''x')"), "enum('a','B''x')");
        assert_eq!(normalize_type("SET('Red','green')"), "set('Red','green')");
        assert_eq!(normalize_type("longblob"), "longblob");
    }

    #[test]
    fn defaults_drop_the_null_text_and_spell_current_timestamp_once() {
        let m = Flavor::MariaDb;
        assert_eq!(normalize_default(Some("NULL"), "integer", "", m), None);
        assert_eq!(normalize_default(None, "integer", "", m), None);
        assert_eq!(normalize_default(Some("'it''s'"), "varchar(9)", "", m).as_deref(), Some("'it''s'"));
        assert_eq!(
            normalize_default(Some("current_timestamp()"), "timestamp", "", m).as_deref(),
            Some("CURRENT_TIMESTAMP")
        );
        assert_eq!(
            normalize_default(Some("current_timestamp(6)"), "datetime(6)", "", m).as_deref(),
            Some("CURRENT_TIMESTAMP(6)")
        );
        let my = Flavor::Mysql;
        assert_eq!(normalize_default(Some("x"), "varchar(9)", "", my).as_deref(), Some("'x'"));
        assert_eq!(
            normalize_default(Some("CURRENT_TIMESTAMP"), "timestamp", "DEFAULT_GENERATED", my).as_deref(),
            Some("CURRENT_TIMESTAMP")
        );
        assert_eq!(normalize_default(Some("12"), "integer", "", my).as_deref(), Some("12"));
    }

    #[test]
    fn charset_is_recorded_only_when_it_differs_from_the_database() {
        let d = ("utf8mb4", "utf8mb4_general_ci");
        assert_eq!(charset_suffix(Some("utf8mb4"), Some("utf8mb4_general_ci"), d.0, d.1), "");
        assert_eq!(charset_suffix(Some("utf8mb4"), Some("utf8mb4_bin"), d.0, d.1), " collate utf8mb4_bin");
        assert_eq!(
            charset_suffix(Some("latin1"), Some("latin1_swedish_ci"), d.0, d.1),
            " character set latin1 collate latin1_swedish_ci"
        );
        assert_eq!(charset_suffix(None, None, d.0, d.1), "");
    }

    #[test]
    fn option_files_are_read_as_the_mysql_client_reads_them() {
        let g = parse_option_file(
            "# comment\n[client]\nuser = app\npassword = \"p#a\\\"s s\\\\\"\nport=3307 # local\nsocket_path\n\n[mysqld]\nuser=mysql\n!includedir /etc/x\n",
        );
        let c = &g["client"];
        assert_eq!(c["user"], "app");
        assert_eq!(c["password"], "p#a\"s s\\");
        assert_eq!(c["port"], "3307");
        assert_eq!(c["socket-path"], "");
        assert_eq!(g["mysqld"]["user"], "mysql");
    }

    #[test]
    fn a_quoted_option_value_reads_back_unchanged() {
        for v in ["plain", "with space ", "q\"uote", "back\\slash\\", "hash#tag", "it's", "new\nline"] {
            assert_eq!(option_value(&quote_option_value(v)), v, "{v:?}");
        }
    }

    #[test]
    fn url_wins_over_the_option_file_and_the_file_fills_the_rest() {
        let home = tempfile::tempdir().unwrap();
        fs_err::write(
            home.path().join(".my.cnf"),
            "[client]\nuser=app\npassword=fromfile\nhost=db.example\nport=3310\n",
        )
        .unwrap();
        let m = Mysql::resolve("mysql:///eden", Access::ReadOnly, Some(home.path())).unwrap();
        assert_eq!(m.params.user, "app");
        assert_eq!(m.params.password.as_deref(), Some("fromfile"));
        assert_eq!(m.params.place(), "db.example:3310");
        assert_eq!(m.describe(), "MySQL database eden on db.example:3310");

        let m =
            Mysql::resolve("mysql://other:p%40ss@127.0.0.1:53306/eden", Access::ReadOnly, Some(home.path())).unwrap();
        assert_eq!(m.params.user, "other");
        assert_eq!(m.params.password.as_deref(), Some("p@ss"));
        assert_eq!(m.params.place(), "127.0.0.1:53306");

        // Another user than the file's does not get the file's password.
        let m = Mysql::resolve("mysql://other@127.0.0.1/eden", Access::ReadOnly, Some(home.path())).unwrap();
        assert_eq!(m.params.password, None);
        assert!(!format!("{:?}", Mysql::resolve("mysql:///eden", Access::ReadOnly, Some(home.path())).unwrap().params)
            .contains("fromfile"));
    }

    #[test]
    fn defaults_file_parameter_replaces_my_cnf() {
        let home = tempfile::tempdir().unwrap();
        fs_err::write(home.path().join(".my.cnf"), "[client]\nuser=app\n").unwrap();
        let other = home.path().join("eden.cnf");
        fs_err::write(&other, "[client]\nuser=eden\nhost=10.0.0.5\n").unwrap();
        let url = format!("mysql:///eden?defaults_file={}", other.display());
        let m = Mysql::resolve(&url, Access::ReadOnly, Some(home.path())).unwrap();
        assert_eq!(m.params.user, "eden");
        assert_eq!(m.params.host, "10.0.0.5");
        assert!(Mysql::resolve("mysql://h/eden?sslmode=x", Access::ReadOnly, None).is_err());
        assert!(Mysql::resolve("mysql://h/", Access::ReadOnly, None).is_err());
    }

    #[test]
    fn url_for_child_processes_round_trips_special_characters() {
        let home = tempfile::tempdir().unwrap();
        let m = Mysql::resolve("mysql://u:p%2Fw%40d@10.1.2.3:3307/eden", Access::ReadOnly, Some(home.path())).unwrap();
        let again = Mysql::resolve(&m.url(), Access::ReadOnly, Some(home.path())).unwrap();
        assert_eq!(again.params, m.params);
        assert_eq!(again.database, "eden");
    }

    #[test]
    fn server_versions_compare_as_numbers() {
        let v = ServerVersion::parse("10.11.19-MariaDB-0+deb12u1");
        assert_eq!(v.flavor, Flavor::MariaDb);
        assert_eq!(v.number, (10, 11, 19));
        assert!(v.has_check_constraints());
        assert!(!ServerVersion::parse("8.0.9").has_check_constraints());
        assert!(ServerVersion::parse("8.0.36").has_check_constraints());
    }

    #[test]
    fn casts_that_cannot_lose_need_no_probe() {
        assert_eq!(cast_check("c", "smallint", "integer"), None);
        assert_eq!(cast_check("c", "integer", "numeric(12,2)"), None);
        assert_eq!(cast_check("c", "numeric(8,2)", "numeric(10,2)"), None);
        assert_eq!(cast_check("c", "integer", "double precision"), None);
        assert_eq!(cast_check("c", "varchar(10)", "text"), None);
        assert_eq!(cast_check("c", "date", "datetime"), None);
        assert!(cast_check("c", "integer", "smallint").unwrap().contains("BETWEEN -32768 AND 32767"));
        assert!(cast_check("c", "integer", "integer unsigned").unwrap().contains("BETWEEN 0 AND 4294967295"));
        assert!(cast_check("c", "varchar(10)", "integer").unwrap().contains("REGEXP"));
        assert!(cast_check("c", "varchar(10)", "enum('a','b')").unwrap().contains("IN ('a', 'b')"));
        assert_eq!(enum_values("enum('a','B''x','c\\'d')"), ["a", "B'x", "c'd"]);
    }

    #[test]
    fn database_switches_are_recognised() {
        assert!(switches_database("USE eden"));
        assert!(switches_database("create  database x"));
        assert!(switches_database("DROP SCHEMA IF EXISTS x"));
        assert!(!switches_database("CREATE TABLE database_log (id int)"));
        assert!(!switches_database("UPDATE users SET x = 1"));
    }
}
