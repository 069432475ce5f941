//! Where a PostgreSQL server is and who we are on it: a `postgres://` URL completed by libpq's
//! conventions (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, the password file), so rehearse
//! connects exactly where psql and pg_dump would.
//!
//! A password never leaves this module except in `Params::url` (for a child's environment) and
//! `Params::child_env` (PGPASSWORD for pg_dump/pg_restore). `Params` has no Display, and its Debug
//! hides the password.

use std::path::{Path, PathBuf};

#[derive(Clone, PartialEq, Eq)]
pub enum Host {
    Tcp(String),
    /// A Unix-socket directory (`/var/run/postgresql`).
    Socket(PathBuf),
}

impl Host {
    /// As libpq spells it in PGHOST and `host=`.
    pub fn as_param(&self) -> String {
        match self {
            Host::Tcp(h) => h.clone(),
            Host::Socket(p) => p.display().to_string(),
        }
    }
}

#[derive(Clone)]
pub struct Params {
    pub host: Host,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub dbname: String,
    /// Server options (`-c search_path=app`): the URL's `options`, or PGOPTIONS. The search_path
    /// decides which schema is read.
    pub options: Option<String>,
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Params")
            .field("host", &self.host.as_param())
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("dbname", &self.dbname)
            .field("options", &self.options)
            .finish()
    }
}

/// The environment as a function, so tests can supply their own.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// libpq's compiled-in socket directories: Debian's, then upstream's.
const SOCKET_DIRS: &[&str] = &["/var/run/postgresql", "/tmp"];

impl Params {
    /// Parse a `postgres://` / `postgresql://` URL and fill what it leaves out the way libpq does:
    /// URL, then PG* variables, then defaults (local socket, the OS user, a database named after
    /// the user); the password from the URL, PGPASSWORD, or the password file.
    pub fn from_url(url: &str, env: Env<'_>) -> anyhow::Result<Params> {
        let cfg: tokio_postgres::Config = url.parse().map_err(|e| {
            anyhow::anyhow!("live.url {:?} is not a valid PostgreSQL URL: {e}", crate::redact::url(url))
        })?;
        if cfg.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            anyhow::bail!(
                "live.url asks for sslmode=require, but this build of rehearse speaks PostgreSQL without TLS: \
                 connect over a local socket or loopback with sslmode=prefer or disable"
            );
        }
        let port = match cfg.get_ports().first() {
            Some(p) => *p,
            None => match env("PGPORT") {
                Some(p) => p.trim().parse().map_err(|_| anyhow::anyhow!("PGPORT={p:?} is not a port number"))?,
                None => 5432,
            },
        };
        let host = match cfg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => Host::Tcp(h.clone()),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(p)) => Host::Socket(p.clone()),
            None => match env("PGHOST") {
                // PGHOST may list several hosts; the first is the one libpq tries first.
                Some(h) => host_of(h.split(',').next().unwrap_or("").trim()),
                None => default_host(port),
            },
        };
        let user = match cfg.get_user() {
            Some(u) => u.to_string(),
            None => {
                env("PGUSER").or_else(|| env("USER")).or_else(|| env("LOGNAME")).unwrap_or_else(|| "postgres".into())
            }
        };
        let dbname = match cfg.get_dbname() {
            Some(d) => d.to_string(),
            None => env("PGDATABASE").unwrap_or_else(|| user.clone()),
        };
        let password = match cfg.get_password() {
            Some(p) => Some(String::from_utf8_lossy(p).into_owned()),
            None => env("PGPASSWORD").or_else(|| {
                let file = pgpass_path(env)?;
                let text = read_pgpass(&file)?;
                pgpass_lookup(&text, &host, port, &dbname, &user)
            }),
        };
        let options = cfg.get_options().map(str::to_string).or_else(|| env("PGOPTIONS"));
        Ok(Params { host, port, user, password, dbname, options })
    }

    /// The same server and user, another database (the test copy, the scratch database).
    pub fn with_dbname(&self, dbname: &str) -> Params {
        Params { dbname: dbname.to_string(), ..self.clone() }
    }

    /// `127.0.0.1:5432`, or `/var/run/postgresql:5432` for a socket: for messages.
    pub fn host_port(&self) -> String {
        format!("{}:{}", self.host.as_param(), self.port)
    }

    pub fn tokio_config(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        match &self.host {
            Host::Tcp(h) => c.host(h),
            Host::Socket(p) => c.host_path(p),
        };
        c.port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name("rehearse")
            .connect_timeout(std::time::Duration::from_secs(10));
        if let Some(p) = &self.password {
            c.password(p.as_bytes());
        }
        if let Some(o) = &self.options {
            c.options(o);
        }
        c
    }

    /// A libpq URL holding everything needed to connect, password included: only for a child's
    /// environment (a schema command's DATABASE_URL), never for a message.
    pub fn url(&self) -> String {
        let auth = match &self.password {
            Some(p) => format!("{}:{}@", encode(&self.user), encode(p)),
            None => format!("{}@", encode(&self.user)),
        };
        let options = |sep: char| match &self.options {
            Some(o) => format!("{sep}options={}", encode(o)),
            None => String::new(),
        };
        match &self.host {
            Host::Tcp(h) if h.contains(':') => {
                format!("postgresql://{auth}[{h}]:{}/{}{}", self.port, encode(&self.dbname), options('?'))
            }
            Host::Tcp(h) => {
                format!("postgresql://{auth}{}:{}/{}{}", encode(h), self.port, encode(&self.dbname), options('?'))
            }
            Host::Socket(p) => format!(
                "postgresql://{auth}/{}?host={}&port={}{}",
                encode(&self.dbname),
                encode(&p.display().to_string()),
                self.port,
                options('&')
            ),
        }
    }

    /// The environment that points a libpq tool (pg_dump, pg_restore) at this database. The
    /// password travels only here, never in argv.
    pub fn child_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("PGHOST", self.host.as_param()),
            ("PGPORT", self.port.to_string()),
            ("PGUSER", self.user.clone()),
            ("PGDATABASE", self.dbname.clone()),
            ("PGAPPNAME", "rehearse".to_string()),
        ];
        if let Some(p) = &self.password {
            env.push(("PGPASSWORD", p.clone()));
        }
        if let Some(o) = &self.options {
            env.push(("PGOPTIONS", o.clone()));
        }
        env
    }
}

fn host_of(h: &str) -> Host {
    if h.starts_with('/') {
        Host::Socket(PathBuf::from(h))
    } else if h.is_empty() {
        Host::Tcp("localhost".into())
    } else {
        Host::Tcp(h.to_string())
    }
}

/// libpq without a host: its socket directory when a server listens there, else localhost.
fn default_host(port: u16) -> Host {
    for dir in SOCKET_DIRS {
        if Path::new(dir).join(format!(".s.PGSQL.{port}")).exists() {
            return Host::Socket(PathBuf::from(dir));
        }
    }
    Host::Tcp("localhost".into())
}

fn pgpass_path(env: Env<'_>) -> Option<PathBuf> {
    match env("PGPASSFILE") {
        Some(p) => Some(PathBuf::from(p)),
        None => env("HOME").map(|h| Path::new(&h).join(".pgpass")),
    }
}

/// The password file's text, or None when it is missing or, like libpq, when it is readable by
/// group or others (then with a warning).
fn read_pgpass(path: &Path) -> Option<String> {
    let meta = fs_err::metadata(path).ok()?;
    if !meta.is_file() {
        eprintln!("rehearse: warning: password file {} is not a plain file; ignoring it", path.display());
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            eprintln!(
                "rehearse: warning: password file {} has group or world access; permissions should be u=rw (0600) or less; ignoring it",
                path.display()
            );
            return None;
        }
    }
    fs_err::read_to_string(path).ok()
}

/// The first line of a `.pgpass` text that matches, libpq's rules: `host:port:db:user:password`,
/// `*` matches anything, `\:` and `\\` are escapes, and a socket connection matches `localhost`.
pub fn pgpass_lookup(text: &str, host: &Host, port: u16, dbname: &str, user: &str) -> Option<String> {
    let host = match host {
        Host::Tcp(h) => h.as_str(),
        Host::Socket(_) => "localhost",
    };
    let port = port.to_string();
    let wanted = [host, port.as_str(), dbname, user];
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_pgpass_line(line);
        if fields.len() < 5 {
            continue;
        }
        if fields[..4].iter().zip(wanted).all(|(f, w)| f == "*" || f == w) {
            return Some(fields[4].clone());
        }
    }
    None
}

/// Split on unescaped colons; the fifth field (the password) takes the rest of the line.
fn split_pgpass_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    fields.last_mut().expect("one field").push(n);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            _ => fields.last_mut().expect("one field").push(c),
        }
    }
    fields
}

/// Percent-encode everything but RFC 3986 unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn url_values_win_over_the_environment() {
        let env = |k: &str| match k {
            "PGHOST" => Some("elsewhere".to_string()),
            "PGUSER" => Some("bob".to_string()),
            "PGPASSWORD" => Some("envpw".to_string()),
            _ => None,
        };
        let p = Params::from_url("postgres://eden:s%40cret@db.example:6543/edendb", &env).unwrap();
        assert_eq!(p.host_port(), "db.example:6543");
        assert_eq!(p.user, "eden");
        assert_eq!(p.password.as_deref(), Some("s@cret"));
        assert_eq!(p.dbname, "edendb");
    }

    #[test]
    fn missing_parts_come_from_pg_variables() {
        let env = |k: &str| match k {
            "PGHOST" => Some("/run/pg".to_string()),
            "PGPORT" => Some("5444".to_string()),
            "PGUSER" => Some("bob".to_string()),
            "PGPASSWORD" => Some("envpw".to_string()),
            "PGDATABASE" => Some("shop".to_string()),
            _ => None,
        };
        let p = Params::from_url("postgres://", &env).unwrap();
        assert!(p.host == Host::Socket("/run/pg".into()));
        assert_eq!(p.port, 5444);
        assert_eq!((p.user.as_str(), p.dbname.as_str()), ("bob", "shop"));
        assert_eq!(p.password.as_deref(), Some("envpw"));
    }

    #[test]
    fn socket_host_in_the_query_string_is_a_socket() {
        let p = Params::from_url("postgresql://eden@/eden?host=/var/run/postgresql&port=5433", &no_env).unwrap();
        assert!(p.host == Host::Socket("/var/run/postgresql".into()));
        assert_eq!(p.port, 5433);
        let back = Params::from_url(&p.url(), &no_env).unwrap();
        assert!(back.host == p.host && back.port == 5433 && back.dbname == "eden");
    }

    #[test]
    fn url_round_trips_odd_characters() {
        let p = Params {
            host: Host::Tcp("127.0.0.1".into()),
            port: 5432,
            user: "ed en".into(),
            password: Some("p@ss:w/rd?".into()),
            dbname: "my db".into(),
            options: Some("-c search_path=app".into()),
        };
        let back = Params::from_url(&p.url(), &no_env).unwrap();
        assert_eq!(back.user, "ed en");
        assert_eq!(back.password.as_deref(), Some("p@ss:w/rd?"));
        assert_eq!(back.dbname, "my db");
        assert_eq!(back.options.as_deref(), Some("-c search_path=app"));
    }

    #[test]
    fn pgpass_follows_libpq_matching_and_escapes() {
        let text = "# comment\nother:*:*:*:nope\nlocalhost:5432:eden:eden:sock\\:pw\n*:*:*:eden:any\n";
        let sock = Host::Socket("/var/run/postgresql".into());
        assert_eq!(pgpass_lookup(text, &sock, 5432, "eden", "eden").as_deref(), Some("sock:pw"));
        let tcp = Host::Tcp("db1".into());
        assert_eq!(pgpass_lookup(text, &tcp, 5432, "eden", "eden").as_deref(), Some("any"));
        assert_eq!(pgpass_lookup(text, &tcp, 5432, "eden", "bob"), None);
    }

    #[cfg(unix)]
    #[test]
    fn group_readable_pgpass_is_ignored_like_libpq() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("pgpass");
        fs_err::write(&f, "*:*:*:*:filepw\n").unwrap();
        let path = f.display().to_string();
        let env = move |k: &str| if k == "PGPASSFILE" { Some(path.clone()) } else { None };
        fs_err::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        let p = Params::from_url("postgres://eden@h/eden", &env).unwrap();
        assert_eq!(p.password, None);
        fs_err::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let p = Params::from_url("postgres://eden@h/eden", &env).unwrap();
        assert_eq!(p.password.as_deref(), Some("filepw"));
    }

    #[test]
    fn password_reaches_children_only_through_the_environment() {
        let p = Params::from_url("postgres://eden:hunter2@h/eden", &no_env).unwrap();
        assert!(p.child_env().contains(&("PGPASSWORD", "hunter2".to_string())));
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
