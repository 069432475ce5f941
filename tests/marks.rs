//! Rehearse's marks on what it makes, through the real binary on all three engines:
//! - kill -9 of a rehearsal at any moment (in the middle of the checkout, of making the scratch
//!   database, of making the test copy, or at a random time) never wedges the next run: the
//!   half-made objects are known as rehearse's own (marked first, or named in the workdir's
//!   intent ledger), so the next rehearsal replaces them and passes, and live is unchanged;
//! - a live.url naming rehearse's own test copy (it carries rehearse's mark) is refused by every
//!   command that uses live, with one line and exit 2; a database merely named `<x>upgradetest`
//!   without the mark is someone's and is rehearsed like any live.

mod common;

use common::db::{server_for, Engine, LiveDb, Server};
use common::{app_config, make_app_repo, rehearse, write_yaml, Temp};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const LIVE_SQL: &str = "CREATE TABLE office (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL);
INSERT INTO office VALUES (1, 'HQ'), (2, 'Field'), (3, 'Depot');";
const TARGET_SQL: &str = "CREATE TABLE office (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL, code VARCHAR(16));\n";

/// A live database of `engine` with the app repository and config in `tmp`.
struct Story {
    tmp: Temp,
    live: LiveDb,
    config: PathBuf,
}

fn story(engine: Engine) -> Option<Story> {
    let server = match engine {
        Engine::Sqlite => None,
        _ => Some(server_for(engine)?),
    };
    let tmp = Temp::new("rehearse-marks-");
    let live = LiveDb::create(engine, server.as_ref(), tmp.path()).expect("make the live database");
    live.load(LIVE_SQL).expect("load live");
    make_app_repo(&tmp.path().join("app"), TARGET_SQL, None).expect("make the app repository");
    let config = tmp.path().join("upgrade.yaml");
    write_yaml(&config, &app_config(&live.url, tmp.path(), false));
    Some(Story { tmp, live, config })
}

impl Story {
    fn rehearse_passes(&self, what: &str) {
        let out = rehearse(["run", "--config", self.config.to_str().unwrap(), "--format", "json"], self.tmp.path());
        assert_eq!(out.code, Some(0), "{what}: the rehearsal does not pass\n{}", out.describe());
        let status = out.json().unwrap().pointer("/rehearsal/status").cloned();
        assert_eq!(status, Some("passed".into()), "{what}\n{}", out.describe());
    }

    /// The scratch database rehearse makes beside a server live, dropped after the test.
    fn drop_scratch(&self) {
        if let Some(s) = &self.live.server {
            let _ = s.drop_database(&format!("{}_rehearse_scratch", self.live.name));
        }
    }
}

/// Start `rehearse run`, in a process group of its own, with stderr read line by line.
fn spawn_run(dir: &Path, config: &Path) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::os::unix::process::CommandExt;
    let mut cmd = common::rehearse_command(["run", "--config", config.to_str().unwrap(), "--format", "json"], dir);
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().expect("start rehearse");
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// kill -9 of the rehearsal and every process it started (git, pg_dump, pg_restore, mysqldump,
/// mysql): what a crash, the OOM killer of a cgroup or `systemctl kill -s KILL` does.
fn kill_9(child: &mut std::process::Child) {
    // SAFETY: kill(2) on the process group the child leads; no memory is involved.
    unsafe {
        libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
    }
    let _ = child.wait();
}

/// Rounds of: a rehearsal killed with -9 at a moment `triggers` picks (after a stderr line
/// containing the trigger, plus a pseudo-random delay; "" is a random moment of the whole run),
/// then a normal rehearsal that must pass, with live unchanged throughout.
fn kill_9_rounds(engine: Engine, triggers: &[&str], rounds: usize) {
    let Some(st) = story(engine) else { return };
    let before = st.live.fingerprint().unwrap();
    let t = Instant::now();
    st.rehearse_passes("the first rehearsal");
    let full = t.elapsed().as_micros() as u64;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ (engine as u64);
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut outcomes = Vec::new();
    for round in 0..rounds {
        let trigger = triggers[round % triggers.len()];
        let delay = if trigger.is_empty() { next() % full } else { next() % 60_000 };
        let (mut child, lines) = spawn_run(st.tmp.path(), &st.config);
        let started = Instant::now();
        let mut seen = trigger.is_empty();
        let mut finished = false;
        while !seen {
            match lines.recv_timeout(Duration::from_millis(20)) {
                Ok(l) => seen = l.contains(trigger),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    finished = true;
                    break;
                }
            }
            assert!(started.elapsed() < Duration::from_secs(120), "round {round}: {trigger:?} never came");
        }
        assert!(!finished, "round {round}: the run ended before saying {trigger:?}");
        std::thread::sleep(Duration::from_micros(delay));
        let ended_by_itself = matches!(child.try_wait(), Ok(Some(_)));
        kill_9(&mut child);
        // The server ends the killed sessions when it notices their closed sockets.
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            st.live.fingerprint().unwrap().changed_from(&before),
            None,
            "round {round}: live changed after a kill -9 of a rehearsal ({trigger:?} + {delay} us)"
        );
        st.rehearse_passes(&format!("round {round}, after kill -9 at {trigger:?} + {delay} us"));
        assert_eq!(
            st.live.fingerprint().unwrap().changed_from(&before),
            None,
            "round {round}: live changed after the rehearsal that followed the kill"
        );
        outcomes.push(format!("{trigger:?}+{}ms{}", delay / 1000, if ended_by_itself { " (had ended)" } else { "" }));
    }
    eprintln!("{} kill -9 rounds, each followed by a passing rehearsal: {}", engine.name(), outcomes.join(", "));
    st.drop_scratch();
}

#[test]
fn kill_9_during_a_sqlite_rehearsal_never_wedges_the_next_one() {
    kill_9_rounds(Engine::Sqlite, &["checking out", "reading the schema", "cloning", ""], 12);
}

#[test]
fn kill_9_during_a_postgres_rehearsal_never_wedges_the_next_one() {
    kill_9_rounds(
        Engine::Postgres,
        &["checking out", "reading the schema", "creating the test copy", "creating the test copy", ""],
        12,
    );
}

#[test]
fn kill_9_during_a_mysql_rehearsal_never_wedges_the_next_one() {
    kill_9_rounds(Engine::Mysql, &["checking out", "reading the schema", "cloning", ""], 12);
}

/// A second config beside the story's, with live.url `url` and a workdir of its own.
fn config_naming(st: &Story, url: &str) -> PathBuf {
    let dir = st.tmp.path().join("other");
    std::fs::create_dir_all(&dir).unwrap();
    let mut v = app_config(url, &dir, false);
    v["app"]["repo"] = st.tmp.path().join("app").to_str().unwrap().into();
    let config = dir.join("upgrade.yaml");
    write_yaml(&config, &v);
    config
}

/// Every command that uses live refuses `config` with exit 2 and one line naming the test copy.
fn every_live_command_refuses(st: &Story, config: &Path) {
    let backup = st.tmp.path().join("backup.db");
    let backup_s = backup.to_str().unwrap().to_string();
    for args in [
        &["run"][..],
        &["run", "--live", "--yes"],
        &["rollback", "--live", "--yes"],
        &["recover"],
        &["history"],
        &["backup", "--sqlite", &backup_s],
        &["bundle"],
    ] {
        if args[0] == "bundle" && st.live.engine != Engine::Sqlite {
            continue; // bundles are for SQLite clients only
        }
        let mut full = vec![args[0], "--config", config.to_str().unwrap()];
        full.extend(&args[1..]);
        let out = rehearse(full, st.tmp.path());
        assert_eq!(out.code, Some(2), "{args:?} on rehearse's own test copy\n{}", out.describe());
        let last = out.stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default().to_string();
        assert!(
            last.starts_with("rehearse: live.url names")
                && last.contains("test copy")
                && last.contains("point live.url"),
            "{args:?}: {last}"
        );
        assert!(!out.panicked(), "{}", out.describe());
    }
    assert!(!backup.exists(), "backup wrote a file");
    assert!(!config.parent().unwrap().join("work").exists(), "a refused command made a workdir");
}

/// What the test copy holds, to prove the refused commands left it alone.
fn test_copy_state(st: &Story) -> String {
    st.live.dump_test_copy(&st.tmp.path().join("work")).unwrap()
}

fn own_test_copy_as_live_is_refused(engine: Engine) {
    let Some(st) = story(engine) else { return };
    st.rehearse_passes("the rehearsal that makes the test copy");
    let copy_url = match engine {
        Engine::Sqlite => format!("sqlite://{}", st.live.sqlite_test_copy(&st.tmp.path().join("work")).display()),
        _ => st.live.server.as_ref().unwrap().url_of(&st.live.test_copy_name()),
    };
    let before = test_copy_state(&st);
    let config = config_naming(&st, &copy_url);
    every_live_command_refuses(&st, &config);
    assert_eq!(test_copy_state(&st), before, "the test copy changed");
    st.drop_scratch();
}

/// Regression: `live.url` naming rehearse's own test copy was accepted, and `--live` promoted it.
#[test]
fn sqlite_live_url_naming_rehearses_own_test_copy_is_refused_by_every_command_that_uses_live() {
    own_test_copy_as_live_is_refused(Engine::Sqlite);
}

#[test]
fn postgres_live_url_naming_rehearses_own_test_copy_is_refused_by_every_command_that_uses_live() {
    own_test_copy_as_live_is_refused(Engine::Postgres);
}

#[test]
fn mysql_live_url_naming_rehearses_own_test_copy_is_refused_by_every_command_that_uses_live() {
    own_test_copy_as_live_is_refused(Engine::Mysql);
}

/// The mark decides, not the name: a live database someone named `<x>upgradetest` is rehearsed.
fn a_database_merely_named_like_a_test_copy_is_live_like_any_other(engine: Engine, server: Option<Server>) {
    let tmp = Temp::new("rehearse-marks-");
    let name = format!("{}upgradetest", common::db::fresh_name());
    let live = match &server {
        None => {
            let path = tmp.path().join(format!("{name}.db"));
            rusqlite::Connection::open(&path).unwrap();
            LiveDb { engine, url: format!("sqlite://{}", path.display()), name, path: Some(path), server: None }
        }
        Some(s) => {
            s.create_database(&name).unwrap();
            LiveDb { engine, url: s.url_of(&name), name, path: None, server: server.clone() }
        }
    };
    live.load(LIVE_SQL).unwrap();
    make_app_repo(&tmp.path().join("app"), TARGET_SQL, None).unwrap();
    let config = tmp.path().join("upgrade.yaml");
    write_yaml(&config, &app_config(&live.url, tmp.path(), false));
    let out = rehearse(["run", "--config", config.to_str().unwrap(), "--format", "json"], tmp.path());
    assert_eq!(out.code, Some(0), "{}", out.describe());
    if let Some(s) = &server {
        let _ = s.drop_database(&format!("{}_rehearse_scratch", live.name));
    }
}

#[test]
fn a_database_merely_named_like_a_test_copy_is_rehearsed_on_every_engine() {
    a_database_merely_named_like_a_test_copy_is_live_like_any_other(Engine::Sqlite, None);
    for engine in [Engine::Postgres, Engine::Mysql] {
        if let Some(s) = server_for(engine) {
            a_database_merely_named_like_a_test_copy_is_live_like_any_other(engine, Some(s));
        }
    }
}
