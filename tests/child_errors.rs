//! What a failing child process (the schema command, psql, SQLite's own writes) leaves the
//! sysadmin, through the binary: a short error naming the real cause and the log that holds the
//! child's whole output, never 50 MB on the terminal; a full disk named as such, never "fix the
//! new code's DDL" or "not an error"; a schema command stopped, with its children, when it runs
//! past `schema.timeout`; a schema command's long stdout streamed to a file.

mod common;

use common::db::{server_for, Engine, LiveDb};
use common::{make_app_repo, rehearse, write_yaml, Fixture, Output, Temp};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

fn with_command(fx: &Fixture, command: &str, timeout: Option<&str>) {
    let mut cfg = fx.config_value();
    cfg["schema"] = serde_json::json!({ "command": command });
    if let Some(t) = timeout {
        cfg["schema"]["timeout"] = t.into();
    }
    fx.write_config(&cfg);
}

/// The last stderr line: rehearse's one error line.
fn last_line(out: &Output) -> String {
    out.stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default().to_string()
}

/// The `(full output: PATH)` an error names.
fn named_log(line: &str) -> PathBuf {
    let at = line.rfind("(full output: ").unwrap_or_else(|| panic!("no log named: {line}"));
    PathBuf::from(line[at + "(full output: ".len()..].trim_end_matches(')'))
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    common::mode(p)
}

#[test]
fn a_schema_command_printing_50_mb_on_stderr_fails_in_a_short_line_with_its_error_line_and_log() {
    let fx = Fixture::story("add-nullable-column");
    let before = fx.live.fingerprint().unwrap();
    // 25 MB of noise, the real error in the middle, 25 MB more, then a failing exit.
    let noise = "yes 'migrating: step applied, nothing to see here' | head -c 25000000 >&2";
    with_command(
        &fx,
        &format!(
            "{noise}; echo 'ERROR: relation \"staff\" does not exist' >&2; {noise}; echo 'rolling back' >&2; exit 3"
        ),
        None,
    );
    let out = fx.run_json(&[]);
    assert!(!out.panicked(), "{}", out.describe());
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(out.stderr.len() < 4096, "the message is short: {} bytes of stderr", out.stderr.len());
    let last = last_line(&out);
    assert!(last.starts_with("rehearse: schema.command"), "{last}");
    assert!(last.contains("exit status 3"), "{last}");
    assert!(last.contains("ERROR: relation \"staff\" does not exist"), "the cause in the middle is kept: {last}");
    assert!(last.contains("rolling back"), "and the last lines: {last}");
    let log = named_log(&last);
    assert!(log.starts_with(&fx.workdir), "the log is in the workdir: {}", log.display());
    let kept = std::fs::metadata(&log).unwrap().len();
    assert!(kept > 50_000_000, "the log holds the whole stderr ({kept} bytes)");
    #[cfg(unix)]
    assert_eq!(mode(&log), 0o600, "the log is private");
    assert!(fx.live.fingerprint().unwrap().changed_from(&before).is_none(), "live unchanged");
}

#[test]
fn a_schema_command_past_its_timeout_is_stopped_with_its_children_and_the_key_is_named() {
    let fx = Fixture::story("add-nullable-column");
    let pid_file = fx.dir().join("grandchild.pid");
    // A grandchild in the background, then a wait that never ends on its own.
    with_command(&fx, &format!("sleep 600 & echo $! > {}; sleep 600", pid_file.display()), Some("2s"));
    let out = fx.run_json(&[]);
    assert!(!out.timed_out, "rehearse stopped the command itself\n{}", out.describe());
    assert_eq!(out.code, Some(1), "{}", out.describe());
    let last = last_line(&out);
    assert!(
        last.contains("schema.command") && last.contains("did not finish within 2s") && last.contains("schema.timeout"),
        "{last}"
    );
    let pid = std::fs::read_to_string(&pid_file).expect("the command started its grandchild");
    let alive = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
            .map(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
            .unwrap_or(false)
    };
    // A killed process disappears once its new parent reaps it: wait for that, boundedly.
    let mut gone = false;
    for _ in 0..100 {
        if !alive(&pid) {
            gone = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(gone, "the grandchild {} was killed with the command", pid.trim());
}

#[test]
fn a_bad_schema_timeout_is_a_usage_error_naming_the_key() {
    let fx = Fixture::story("add-nullable-column");
    with_command(&fx, "true", Some("soon"));
    let out = fx.run_json(&[]);
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert!(last_line(&out).contains("schema.timeout \"soon\""), "{}", last_line(&out));
}

#[test]
fn a_schema_command_printing_100_mb_on_stdout_works_and_its_output_is_kept_in_a_file() {
    let fx = Fixture::story("add-nullable-column");
    with_command(
        &fx,
        "yes 'applying migration' | head -c 100000000; sqlite3 \"${DATABASE_URL#sqlite://}\" < db/schema.sql",
        None,
    );
    let out = fx.run_json(&[]);
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert_eq!(out.json().unwrap()["rehearsal"]["status"], "passed");
    let kept = fx.workdir.join("schema-command.out");
    assert_eq!(std::fs::metadata(&kept).unwrap().len(), 100_000_000, "the whole stdout, in the file");
    #[cfg(unix)]
    assert_eq!(mode(&kept), 0o600);
    assert!(!out.stderr.contains("applying migration"), "stdout is not shown");
}

/// `rehearse run` under a file size limit, as a full disk meets it: writes past `kib` KiB fail
/// (SIGXFSZ ignored, so the write returns an error instead of killing the process).
fn run_with_file_limit(fx: &Fixture, kib: u32) -> Output {
    run_with_file_limit_args(fx, kib, &["--format", "json"])
}

fn run_with_file_limit_args(fx: &Fixture, kib: u32, extra: &[&str]) -> Output {
    let mut cmd = std::process::Command::new("bash");
    cmd.args(["-c", &format!("trap '' XFSZ; ulimit -f {kib}; exec \"$@\""), "_", common::BIN, "run", "--config"])
        .arg(&fx.config)
        .args(extra)
        .current_dir(fx.dir())
        .env("NO_COLOR", "1");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("REHEARSE_") {
            cmd.env_remove(k);
        }
    }
    common::run_command(cmd, None, common::timeout())
}

#[test]
fn a_full_disk_under_the_scratch_database_is_named_and_not_blamed_on_the_ddl() {
    let live = "CREATE TABLE org_office (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL);";
    let mut target = String::from("CREATE TABLE org_office (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL);\n");
    for i in 0..12 {
        target.push_str(&format!("CREATE TABLE t{i} (id INTEGER PRIMARY KEY, v TEXT);\n"));
    }
    let fx = Fixture::sqlite(live, &target, None);
    let before = fx.live.fingerprint().unwrap();
    let out = run_with_file_limit(&fx, 24);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    let last = last_line(&out);
    assert!(last.contains("schema.sql") && last.contains("the disk"), "names the disk: {last}");
    assert!(last.contains("no fault of the new code's DDL"), "{last}");
    assert!(!last.contains("fix the new code's DDL"), "{last}");
    assert!(fx.live.fingerprint().unwrap().changed_from(&before).is_none());
}

#[test]
fn a_full_disk_during_the_sqlite_clone_says_so_and_names_the_file_not_not_an_error() {
    let fill = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) \
                INSERT INTO org_office SELECT i, hex(randomblob(300)) FROM n;";
    let live = format!("CREATE TABLE org_office (id INTEGER PRIMARY KEY, name VARCHAR(640) NOT NULL); {fill}");
    let target = "CREATE TABLE org_office (id INTEGER PRIMARY KEY, name VARCHAR(640) NOT NULL, note TEXT);";
    let fx = Fixture::sqlite(&live, target, None);
    let before = fx.live.fingerprint().unwrap();
    let out = run_with_file_limit(&fx, 1024);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    let last = last_line(&out);
    assert!(!last.contains("not an error"), "{last}");
    assert!(last.contains("cannot copy") && last.contains(&fx.workdir.display().to_string()), "{last}");
    assert!(last.contains("make room"), "{last}");
    assert!(fx.live.fingerprint().unwrap().changed_from(&before).is_none());
}

/// A full disk while `--live` takes its backup of live: the message names the disk and the file,
/// and says what state live is in (as before, settle it with `recover`); then recover and a
/// promotion with room both work.
#[test]
fn a_full_disk_during_a_sqlite_promotion_says_so_and_what_state_live_is_in() {
    let fill = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) \
                INSERT INTO org_office SELECT i, hex(randomblob(300)) FROM n;";
    let live = format!("CREATE TABLE org_office (id INTEGER PRIMARY KEY, name VARCHAR(640) NOT NULL); {fill}");
    let target = "CREATE TABLE org_office (id INTEGER PRIMARY KEY, name VARCHAR(640) NOT NULL, note TEXT);";
    let fx = Fixture::sqlite(&live, target, None);
    let good = fx.run_json(&[]);
    assert_eq!(good.code, Some(0), "{}", good.describe());
    let before = fx.live.fingerprint().unwrap();
    let out = run_with_file_limit_args(&fx, 1024, &["--live", "--yes"]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    let last = last_line(&out);
    assert!(last.contains("cannot copy") && last.contains("make room"), "the cause: {last}");
    assert!(
        last.contains("is exactly as before the promotion") && last.contains("rehearse recover"),
        "the state: {last}"
    );
    assert!(fx.live.fingerprint().unwrap().changed_from(&before).is_none(), "live unchanged");
    let config = fx.config.to_str().unwrap();
    let recovered = rehearse(["recover", "--config", config], fx.dir());
    assert_eq!(recovered.code, Some(0), "{}", recovered.describe());
    let promoted = rehearse(["run", "--config", config, "--live", "--yes"], fx.dir());
    assert_eq!(promoted.code, Some(0), "with room, the promotion works\n{}", promoted.describe());
}

/// psql's error is followed by DETAIL, HINT and CONTEXT lines: the last three lines alone lose it.
#[test]
fn psql_in_a_schema_command_keeps_its_error_line_before_detail_hint_and_context() {
    let Some(server) = server_for(Engine::Postgres) else { return };
    let tmp = Temp::new("rehearse-psql-");
    let live = LiveDb::create(Engine::Postgres, Some(&server), tmp.path()).unwrap();
    live.load("CREATE TABLE org_office (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL);").unwrap();
    let schema = "CREATE TABLE org_office (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL);\n\
        DO $$ BEGIN RAISE EXCEPTION 'migration 0042 needs table staff' USING DETAIL = 'no table staff in this database', HINT = 'run migration 0041 first'; END $$;\n";
    make_app_repo(&tmp.path().join("app"), schema, None).unwrap();
    let config = tmp.path().join("upgrade.yaml");
    let mut cfg = common::app_config(&live.url, tmp.path(), false);
    cfg["schema"] =
        serde_json::json!({ "command": "psql -X -q -v ON_ERROR_STOP=1 -f db/schema.sql \"$DATABASE_URL\"" });
    write_yaml(&config, &cfg);
    let before = live.fingerprint().unwrap();
    let out = rehearse(
        [OsStr::new("run"), OsStr::new("--config"), config.as_os_str(), OsStr::new("--format"), OsStr::new("json")],
        tmp.path(),
    );
    assert_eq!(out.code, Some(1), "{}", out.describe());
    let last = last_line(&out);
    assert!(last.contains("ERROR:  migration 0042 needs table staff"), "psql's ERROR line: {last}");
    assert!(last.contains("CONTEXT:"), "and its last lines: {last}");
    let log = named_log(&last);
    assert!(std::fs::read_to_string(&log).unwrap().contains("HINT:  run migration 0041 first"), "the full log");
    assert!(live.fingerprint().unwrap().changed_from(&before).is_none());
}
