//! The integration-test harness: it drives the real `rehearse` binary exactly as a sysadmin would
//! (a live database, a git repository with the new code, an `upgrade.yaml`, `rehearse run`), then
//! judges only what comes out: the exit code, stdout/stderr, the JSON report, the test copy, and
//! the live database, which must be byte-for-byte unchanged.
//!
//! It must never take a shortcut through the library, never depend on anything outside this
//! repository (not /work/shared), and never touch a database it did not create.
//!
//! `db` holds the engines (SQLite through rusqlite, PostgreSQL and MariaDB through their CLI
//! clients), `scenario` the upgrade stories of `tests/scenarios/*.yaml` and their checks.
//!
//! Environment: REHEARSE_TEST_PG_URL / REHEARSE_TEST_MYSQL_URL (servers, from
//! `eval "$(scripts/services.sh up)"`), REHEARSE_SCENARIO (run only scenarios whose name contains
//! it), REHEARSE_TEST_JOBS (parallel runs), REHEARSE_TEST_TIMEOUT (seconds per run, default 120),
//! REHEARSE_TEST_KEEP=1 (keep temp folders and databases for inspection), REHEARSE_RUN_PENDING=1
//! (also run pending scenarios and say which now pass).

// Each test binary uses a different part of the harness.
#![allow(dead_code)]

pub mod db;
pub mod scenario;

use serde_json::Value as Json;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The binary under test, built by cargo for this test run.
pub const BIN: &str = env!("CARGO_BIN_EXE_rehearse");

/// Our own scenario files (copies of the company's acceptance stories plus our own).
pub fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("scenarios")
}

/// Seconds one rehearse run may take before it counts as hung.
pub fn timeout() -> Duration {
    let secs = std::env::var("REHEARSE_TEST_TIMEOUT").ok().and_then(|v| v.parse().ok()).unwrap_or(120);
    Duration::from_secs(secs)
}

pub fn keep_temp() -> bool {
    std::env::var("REHEARSE_TEST_KEEP").is_ok_and(|v| v == "1" || v == "true")
}

/// A note that must be seen even when the test passes: written to the real stderr, which the test
/// harness does not capture (it only captures the print macros).
pub fn loud(msg: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "\n{}\n{msg}\n{}", "*".repeat(78), "*".repeat(78));
}

/// A temp folder, kept (and named on stderr) with REHEARSE_TEST_KEEP=1.
pub struct Temp {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl Temp {
    pub fn new(prefix: &str) -> Temp {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir().expect("cannot make a temp folder");
        // Canonical, so that paths compared with what rehearse prints (it canonicalizes) agree.
        let path = std::fs::canonicalize(dir.path()).expect("temp folder has a canonical path");
        Temp { dir: Some(dir), path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if keep_temp() {
            if let Some(d) = self.dir.take() {
                let p = d.keep();
                let _ = writeln!(std::io::stderr(), "kept {}", p.display());
            }
        }
    }
}

/// What a child process did.
#[derive(Debug, Clone)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Output {
    /// The whole of stdout as JSON (`--format json` prints nothing else there).
    pub fn json(&self) -> Result<Json, String> {
        serde_json::from_str(&self.stdout).map_err(|e| {
            format!(
                "stdout is not one JSON document ({e}); exit {:?}; stdout starts {:?}; stderr ends {:?}",
                self.code,
                head(&self.stdout, 200),
                tail(&self.stderr, 300)
            )
        })
    }

    /// A short account for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "exit {:?}{}\n--- stdout (start) ---\n{}\n--- stderr (end) ---\n{}",
            self.code,
            if self.timed_out { " (timed out, killed)" } else { "" },
            head(&self.stdout, 1500),
            tail(&self.stderr, 1500)
        )
    }

    /// A panic or a backtrace on stderr: never acceptable, whatever the input.
    pub fn panicked(&self) -> bool {
        self.stderr.contains("panicked") || self.stderr.contains("stack backtrace") || self.code == Some(101)
    }
}

pub fn head(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

pub fn tail(s: &str, n: usize) -> String {
    let count = s.chars().count();
    s.chars().skip(count.saturating_sub(n)).collect()
}

/// Run a command with a deadline, feeding `stdin` if given, capturing both outputs.
pub fn run_command(mut cmd: Command, stdin: Option<&[u8]>, limit: Duration) -> Output {
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let shown = format!("{cmd:?}");
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        let data = input.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("stdout is piped")));
    let err = reader(Box::new(child.stderr.take().expect("stderr is piped")));
    let deadline = Instant::now() + limit;
    let mut timed_out = false;
    let status: ExitStatus = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() > deadline => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().expect("wait for a killed child");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("waiting for {shown}: {e}"),
        }
    };
    Output {
        code: status.code(),
        stdout: String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned(),
        timed_out,
    }
}

/// The binary as a Command with a clean environment: no REHEARSE_* variable of the caller may
/// change what a test means, and no colour codes.
pub fn rehearse_command<I, S>(args: I, cwd: &Path) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(cwd).env("NO_COLOR", "1");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("REHEARSE_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Run `rehearse ARGS` in `cwd`.
pub fn rehearse<I, S>(args: I, cwd: &Path) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_command(rehearse_command(args, cwd), None, timeout())
}

/// git with a configuration of its own: the tests must not depend on the user's git settings
/// (signing, hooks, default branch).
pub fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let mut cmd = Command::new("git");
    cmd.arg("-C")
        .arg(dir)
        .args(["-c", "user.name=rehearse tests", "-c", "user.email=tests@example.invalid"])
        .args(["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", "-c", "core.hooksPath=/dev/null"])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0");
    let out = run_command(cmd, None, Duration::from_secs(60));
    if out.code != Some(0) {
        return Err(format!("git {} failed: {}", args.join(" "), out.stderr.trim()));
    }
    Ok(out.stdout)
}

/// The new code: a git repository at `dir` with `db/schema.sql` (and `db/upgrade-hints.yaml`)
/// committed and tagged `v2`.
pub fn make_app_repo(dir: &Path, schema_sql: &str, hints_yaml: Option<&str>) -> Result<(), String> {
    let db = dir.join("db");
    std::fs::create_dir_all(&db).map_err(|e| format!("cannot create {}: {e}", db.display()))?;
    git(dir, &["init", "-q", "-b", "main"])?;
    std::fs::write(db.join("schema.sql"), schema_sql).map_err(|e| e.to_string())?;
    if let Some(h) = hints_yaml {
        std::fs::write(db.join("upgrade-hints.yaml"), h).map_err(|e| e.to_string())?;
    }
    git(dir, &["add", "-A"])?;
    git(dir, &["commit", "-q", "-m", "v2"])?;
    git(dir, &["tag", "v2"])?;
    Ok(())
}

/// The usual test config for a fixture folder `dir`: live, the app at `dir/app` revision v2 checked
/// out into `dir/checkout`, its db/schema.sql, its db/upgrade-hints.yaml when it has one, and the
/// workdir `dir/work`.
pub fn app_config(live_url: &str, dir: &Path, has_hints: bool) -> Json {
    let mut v = serde_json::json!({
        "live": { "url": live_url },
        "app": { "repo": dir.join("app"), "revision": "v2", "checkout_dir": dir.join("checkout") },
        "schema": { "sql": "db/schema.sql" },
        "workdir": dir.join("work"),
    });
    if has_hints {
        v["hints"] = "db/upgrade-hints.yaml".into();
    }
    v
}

/// Write a config (or any) value as YAML.
pub fn write_yaml(path: &Path, value: &Json) {
    let text = serde_yaml::to_string(value).expect("a JSON value serializes as YAML");
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// Mode bits of a file or folder (permissions only).
#[cfg(unix)]
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// A complete SQLite story on disk: live file, app repository, config, workdir, all in one temp
/// folder. The config is the one `scenario.rs` writes, so the CLI tests start from a good run and
/// change one thing at a time.
pub struct Fixture {
    pub tmp: Temp,
    pub live: db::LiveDb,
    pub repo: PathBuf,
    pub config: PathBuf,
    pub workdir: PathBuf,
    /// Whether the app's v2 has db/upgrade-hints.yaml.
    pub has_hints: bool,
}

impl Fixture {
    pub fn sqlite(live_sql: &str, target_sql: &str, hints_yaml: Option<&str>) -> Fixture {
        let tmp = Temp::new("rehearse-fx-");
        let live = db::LiveDb::create(db::Engine::Sqlite, None, tmp.path()).expect("make the live database");
        live.load(live_sql).expect("load the live database");
        let repo = tmp.path().join("app");
        make_app_repo(&repo, target_sql, hints_yaml).expect("make the app repository");
        let fx = Fixture {
            config: tmp.path().join("upgrade.yaml"),
            workdir: tmp.path().join("work"),
            has_hints: hints_yaml.is_some(),
            repo,
            live,
            tmp,
        };
        fx.write_config(&fx.config_value());
        fx
    }

    /// A story of `tests/scenarios/` (its base, not a variant), on SQLite.
    pub fn story(name: &str) -> Fixture {
        let all = scenario::load_all(&scenarios_dir());
        let s = all.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no scenario named {name}"));
        let case = scenario::Case { scenario: s, variant: 0 };
        let hints = case.hints().map(|h| serde_yaml::to_string(h).expect("hints serialize"));
        Fixture::sqlite(
            &case.sql("live", db::Engine::Sqlite).expect("live SQL"),
            &case.sql("target", db::Engine::Sqlite).expect("target SQL"),
            hints.as_deref(),
        )
    }

    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// The default config: live, app at v2, schema.sql, hints when the repo has them, workdir.
    pub fn config_value(&self) -> Json {
        app_config(&self.live.url, self.dir(), self.has_hints)
    }

    pub fn write_config(&self, v: &Json) {
        write_yaml(&self.config, v);
    }

    pub fn write_config_text(&self, text: &str) {
        std::fs::write(&self.config, text).expect("write the config");
    }

    /// `rehearse run --config <config> --format json EXTRA...`
    pub fn run_json(&self, extra: &[&str]) -> Output {
        let mut args: Vec<&OsStr> = vec![OsStr::new("run"), OsStr::new("--config")];
        args.push(self.config.as_os_str());
        args.extend([OsStr::new("--format"), OsStr::new("json")]);
        args.extend(extra.iter().map(OsStr::new));
        rehearse(args, self.dir())
    }

    /// The SQLite test copy: `<workdir>/<stem>upgradetest.<ext>`.
    pub fn test_copy(&self) -> PathBuf {
        self.live.sqlite_test_copy(&self.workdir)
    }
}
