//! Configuration: `upgrade.yaml` parsed strictly into raw structs, then resolved once into a
//! validated `Resolved`, with precedence flag > REHEARSE_* environment > file > default.
//!
//! Relative paths in the file are relative to the file's folder; `schema.sql`, `schema.command`
//! and `hints` are relative to the checkout of the new code. Never holds a password in a field
//! that is printed: `live_url` is shown only through `redact::url`.

use anyhow::{bail, Context};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub live: Option<RawLive>,
    pub test: Option<RawTest>,
    pub app: Option<RawApp>,
    pub schema: Option<RawSchema>,
    pub hints: Option<String>,
    pub sysadmin_hints: Option<String>,
    pub workdir: Option<String>,
    pub report: Option<RawReport>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLive {
    pub url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTest {
    pub url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApp {
    pub repo: Option<String>,
    pub revision: Option<String>,
    pub checkout_dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchema {
    pub sql: Option<String>,
    pub command: Option<String>,
    pub snapshot: Option<String>,
    /// How long `command` may run, in humantime (`30m`, `1h 30m`).
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReport {
    pub samples: Option<usize>,
}

/// Values given on the command line (each `None` when the flag was not given).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Overrides {
    /// Live database URL (sqlite:///path, postgres://..., mysql://...) [env: REHEARSE_LIVE_URL]
    #[arg(long, value_name = "URL")]
    pub live_url: Option<String>,
    /// A database of another engine (or server) beside which the test copy is made, filled by
    /// `rehearse copy` from live: rehearses an engine switch [env: REHEARSE_TEST_URL]
    #[arg(long, value_name = "URL")]
    pub test_url: Option<String>,
    /// Git repository of the application [env: REHEARSE_APP_REPO]
    #[arg(long, value_name = "DIR")]
    pub repo: Option<String>,
    /// Revision of the new code (tag, branch or commit) [env: REHEARSE_APP_REVISION]
    #[arg(long, value_name = "REV")]
    pub revision: Option<String>,
    /// Where the new code is checked out [env: REHEARSE_APP_CHECKOUT_DIR]
    #[arg(long, value_name = "DIR")]
    pub checkout_dir: Option<String>,
    /// The new code's DDL file, inside the checkout [env: REHEARSE_SCHEMA_SQL]
    #[arg(long, value_name = "PATH")]
    pub schema_sql: Option<String>,
    /// A command run in the checkout that creates the new schema in $DATABASE_URL [env: REHEARSE_SCHEMA_COMMAND]
    #[arg(long, value_name = "CMD")]
    pub schema_command: Option<String>,
    /// How long the schema command may run before it is stopped, e.g. 30m [env: REHEARSE_SCHEMA_TIMEOUT]
    #[arg(long, value_name = "DURATION")]
    pub schema_timeout: Option<String>,
    /// A schema snapshot (YAML or JSON from `rehearse snapshot`) [env: REHEARSE_SCHEMA_SNAPSHOT]
    #[arg(long, value_name = "FILE")]
    pub schema_snapshot: Option<String>,
    /// The developers' hints file, inside the checkout [env: REHEARSE_HINTS]
    #[arg(long, value_name = "PATH")]
    pub hints: Option<String>,
    /// The sysadmin's hints file, which wins over the developers' [env: REHEARSE_SYSADMIN_HINTS]
    #[arg(long, value_name = "FILE")]
    pub sysadmin_hints: Option<String>,
    /// Folder for dumps, reports, scripts and records (made 0700) [env: REHEARSE_WORKDIR]
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// Sample values shown per finding; 0 keeps personal data out of reports [env: REHEARSE_REPORT_SAMPLES]
    #[arg(long, value_name = "N")]
    pub samples: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SchemaSource {
    /// A DDL file, relative to the checkout (or the config folder without `app`).
    Sql(String),
    /// A shell command run in the checkout with DATABASE_URL set to a scratch database.
    Command(String),
    /// A snapshot file.
    Snapshot(PathBuf),
}

impl SchemaSource {
    /// As the config names it: `schema.sql db/schema.sql`.
    pub fn describe(&self) -> String {
        match self {
            SchemaSource::Sql(rel) => format!("schema.sql {rel}"),
            SchemaSource::Command(c) => format!("schema.command {c:?}"),
            SchemaSource::Snapshot(p) => format!("schema.snapshot {}", p.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct App {
    pub repo: PathBuf,
    pub revision: String,
    pub checkout_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Resolved {
    pub config_file: Option<PathBuf>,
    pub live_url: String,
    /// `test.url`: the test copy is made beside this database (another engine or server)
    /// instead of beside live, and filled by `rehearse copy`.
    pub test_url: Option<String>,
    pub app: Option<App>,
    pub schema: SchemaSource,
    /// `schema.timeout`: how long a schema command may run before it is killed.
    pub schema_timeout: std::time::Duration,
    pub hints: Option<String>,
    pub sysadmin_hints: Option<PathBuf>,
    pub workdir: PathBuf,
    pub base_dir: PathBuf,
    pub samples: usize,
}

/// `schema.timeout` when not set: generous, for a framework that migrates a large schema step
/// by step; it only stops a command that hangs.
pub const DEFAULT_SCHEMA_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Every config key, as documented in docs/config.md (a test keeps the two in step).
pub const KEYS: &[(&str, &str, &str)] = &[
    ("live.url", "REHEARSE_LIVE_URL", "--live-url"),
    ("test.url", "REHEARSE_TEST_URL", "--test-url"),
    ("app.repo", "REHEARSE_APP_REPO", "--repo"),
    ("app.revision", "REHEARSE_APP_REVISION", "--revision"),
    ("app.checkout_dir", "REHEARSE_APP_CHECKOUT_DIR", "--checkout-dir"),
    ("schema.sql", "REHEARSE_SCHEMA_SQL", "--schema-sql"),
    ("schema.command", "REHEARSE_SCHEMA_COMMAND", "--schema-command"),
    ("schema.snapshot", "REHEARSE_SCHEMA_SNAPSHOT", "--schema-snapshot"),
    ("schema.timeout", "REHEARSE_SCHEMA_TIMEOUT", "--schema-timeout"),
    ("hints", "REHEARSE_HINTS", "--hints"),
    ("sysadmin_hints", "REHEARSE_SYSADMIN_HINTS", "--sysadmin-hints"),
    ("workdir", "REHEARSE_WORKDIR", "--workdir"),
    ("report.samples", "REHEARSE_REPORT_SAMPLES", "--samples"),
];

pub fn parse_file(path: &Path) -> anyhow::Result<RawConfig> {
    let text = fs_err::read_to_string(path)
        .with_context(|| format!("cannot read config file {}: check the --config path", path.display()))?;
    if text.trim().is_empty() {
        return Ok(RawConfig::default());
    }
    serde_yaml::from_str(&text).map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Build the one validated configuration. Precedence: flag > environment > file > default.
pub fn resolve(config_file: Option<&Path>, flags: &Overrides) -> anyhow::Result<Resolved> {
    let raw = match config_file {
        Some(p) => parse_file(p)?,
        None => RawConfig::default(),
    };
    let base_dir = match config_file {
        Some(p) => p.parent().map(Path::to_path_buf).unwrap_or_default(),
        None => PathBuf::new(),
    };
    let base_dir = if base_dir.as_os_str().is_empty() { std::env::current_dir()? } else { base_dir };
    let base_dir = fs_err::canonicalize(&base_dir).unwrap_or(base_dir);
    let pick = |flag: &Option<String>, var: &str, file: Option<String>| flag.clone().or_else(|| env(var)).or(file);
    let live = raw.live.unwrap_or_default();
    let app = raw.app.unwrap_or_default();
    let schema = raw.schema.unwrap_or_default();
    let where_ = config_file.map(|p| p.display().to_string()).unwrap_or_else(|| "the config".into());

    let live_url = pick(&flags.live_url, "REHEARSE_LIVE_URL", live.url)
        .with_context(|| format!("{where_}: missing live.url (set it in the file, REHEARSE_LIVE_URL or --live-url)"))?;
    // A relative SQLite path is relative to the config file, like every other path in it.
    let sqlite_abs = |url: String| crate::dburl::DbUrl::anchored(url, &base_dir);
    let live_url = sqlite_abs(live_url);
    let test_url = pick(&flags.test_url, "REHEARSE_TEST_URL", raw.test.and_then(|t| t.url)).map(sqlite_abs);
    if test_url.as_ref() == Some(&live_url) {
        bail!("{where_}: test.url is live.url: name another database for the test copy, or remove test.url");
    }
    let abs = |p: String| -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            base_dir.join(p)
        }
    };
    let workdir = abs(pick(&flags.workdir, "REHEARSE_WORKDIR", raw.workdir).unwrap_or_else(|| "rehearse-work".into()));

    let repo = pick(&flags.repo, "REHEARSE_APP_REPO", app.repo);
    let revision = pick(&flags.revision, "REHEARSE_APP_REVISION", app.revision);
    let checkout = pick(&flags.checkout_dir, "REHEARSE_APP_CHECKOUT_DIR", app.checkout_dir);
    let app = match (repo, revision) {
        (Some(repo), Some(revision)) => Some(App {
            repo: abs(repo),
            revision,
            checkout_dir: checkout.map(&abs).unwrap_or_else(|| workdir.join("checkout")),
        }),
        (Some(_), None) => {
            bail!("{where_}: app.repo is set but app.revision is missing (set it, REHEARSE_APP_REVISION or --revision)")
        }
        (None, Some(_)) => {
            bail!("{where_}: app.revision is set but app.repo is missing (set it, REHEARSE_APP_REPO or --repo)")
        }
        (None, None) => None,
    };

    let schema_timeout = match pick(&flags.schema_timeout, "REHEARSE_SCHEMA_TIMEOUT", schema.timeout) {
        None => DEFAULT_SCHEMA_TIMEOUT,
        Some(t) => match humantime::parse_duration(&t) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => bail!("{where_}: schema.timeout is 0: give the schema command time to run, e.g. 30m"),
            Err(e) => bail!("{where_}: schema.timeout {t:?} is not a duration ({e}): write e.g. 30m or 1h 30m"),
        },
    };
    let sql = pick(&flags.schema_sql, "REHEARSE_SCHEMA_SQL", schema.sql);
    let command = pick(&flags.schema_command, "REHEARSE_SCHEMA_COMMAND", schema.command);
    let snapshot = pick(&flags.schema_snapshot, "REHEARSE_SCHEMA_SNAPSHOT", schema.snapshot);
    let schema = match (sql, command, snapshot) {
        (Some(s), None, None) => SchemaSource::Sql(s),
        (None, Some(c), None) => SchemaSource::Command(c),
        (None, None, Some(f)) => SchemaSource::Snapshot(abs(f)),
        (None, None, None) => {
            bail!("{where_}: missing schema: set one of schema.sql, schema.command or schema.snapshot")
        }
        _ => bail!("{where_}: schema has more than one of sql, command and snapshot: keep exactly one"),
    };
    let samples = match flags.samples {
        Some(n) => n,
        None => match env("REHEARSE_REPORT_SAMPLES") {
            Some(v) => v.parse().with_context(|| format!("REHEARSE_REPORT_SAMPLES={v:?} is not a whole number"))?,
            None => raw.report.and_then(|r| r.samples).unwrap_or(5),
        },
    };
    Ok(Resolved {
        config_file: config_file.map(Path::to_path_buf),
        live_url,
        test_url,
        app,
        schema,
        schema_timeout,
        hints: pick(&flags.hints, "REHEARSE_HINTS", raw.hints),
        sysadmin_hints: pick(&flags.sysadmin_hints, "REHEARSE_SYSADMIN_HINTS", raw.sysadmin_hints).map(abs),
        workdir,
        base_dir,
        samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("upgrade.yaml");
        fs_err::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let (_d, p) = write("live: { url: sqlite:///x.db }\nschema: { sql: a.sql }\nworkdri: /tmp/x\n");
        let e = format!("{:#}", resolve(Some(&p), &Overrides::default()).unwrap_err());
        assert!(e.contains("workdri") && e.contains("line 3"), "{e}");
    }

    #[test]
    fn missing_live_url_names_the_key_and_the_ways_to_set_it() {
        let (_d, p) = write("schema: { sql: a.sql }\n");
        let e = format!("{:#}", resolve(Some(&p), &Overrides::default()).unwrap_err());
        assert!(e.contains("live.url") && e.contains("--live-url"), "{e}");
    }

    #[test]
    fn flag_wins_over_file_and_relative_paths_follow_the_config_file() {
        let (d, p) = write("live: { url: sqlite:eden.db }\nschema: { sql: db/schema.sql }\nworkdir: w\n");
        let flags = Overrides { workdir: Some("/tmp/elsewhere".into()), ..Default::default() };
        let r = resolve(Some(&p), &flags).unwrap();
        assert_eq!(r.workdir, PathBuf::from("/tmp/elsewhere"));
        let base = fs_err::canonicalize(d.path()).unwrap();
        assert_eq!(r.live_url, format!("sqlite://{}", base.join("eden.db").display()));
        assert_eq!(r.schema, SchemaSource::Sql("db/schema.sql".into()));
    }

    #[test]
    fn two_schema_sources_are_refused() {
        let (_d, p) = write("live: { url: sqlite:///x.db }\nschema: { sql: a.sql, command: make schema }\n");
        assert!(resolve(Some(&p), &Overrides::default()).is_err());
    }
}
