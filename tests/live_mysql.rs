//! `--live` on MariaDB through the real binary: a promotion upgrades live and records history; a
//! failure on live (a trigger that arrived after the rehearsal) restores live from the fresh
//! backup; kill -9 at random moments, then `recover`, leaves live exactly old or exactly new.

mod common;

use common::make_app_repo;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_rehearse");

fn server() -> Option<String> {
    match std::env::var("REHEARSE_TEST_MYSQL_URL") {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("REHEARSE_TEST_MYSQL_URL is not set: start MariaDB with: eval \"$(scripts/services.sh up)\"")
        }
        _ => {
            eprintln!(
                "SKIPPED: REHEARSE_TEST_MYSQL_URL is not set; start MariaDB with: eval \"$(scripts/services.sh up)\""
            );
            None
        }
    }
}

fn port() -> String {
    std::env::var("MY_PORT").unwrap_or_else(|_| "53306".into())
}

fn sql(db: &str, text: &str) -> String {
    let out = Command::new("mariadb")
        .args(["--no-defaults", "-h", "127.0.0.1", "-P", &port(), "-u", "root", "-N", "-B"])
        .args(if db.is_empty() { vec![] } else { vec![db] })
        .args(["-e", text])
        .output()
        .unwrap();
    assert!(out.status.success(), "mariadb: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Schema and data of a database, for "exactly old or exactly new" comparisons.
fn dump(db: &str) -> String {
    let out = Command::new("mariadb-dump")
        .args(["--no-defaults", "-h", "127.0.0.1", "-P", &port(), "-u", "root", "--skip-dump-date", "--skip-comments"])
        .arg(format!("--ignore-table={db}.rehearse_history"))
        .arg(db)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn setup(dir: &Path, db: &str) -> std::path::PathBuf {
    sql("", &format!("DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db} CHARACTER SET utf8mb4"));
    sql(
        db,
        "CREATE TABLE office (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL);
         CREATE TABLE staff (id INTEGER PRIMARY KEY, office_id INTEGER, name VARCHAR(64),
           FOREIGN KEY (office_id) REFERENCES office (id));
         INSERT INTO office VALUES (1, 'HQ'), (2, 'Field'), (3, 'Depot');
         INSERT INTO staff VALUES (1, 1, 'Ada'), (2, 2, 'Alan'), (3, 3, 'Grace');",
    );
    make_app_repo(
        &dir.join("repo"),
        "CREATE TABLE office (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL, code VARCHAR(16) NOT NULL);
         CREATE TABLE staff (id INTEGER PRIMARY KEY, office_id INTEGER, name VARCHAR(64),
           FOREIGN KEY (office_id) REFERENCES office (id));
         CREATE TABLE office_note (id INTEGER PRIMARY KEY, office_id INTEGER NOT NULL, note TEXT);",
        Some("defaults: { office.code: \"CONCAT('O-', id)\" }\n"),
    )
    .unwrap();
    let cfg = dir.join("upgrade.yaml");
    std::fs::write(
        &cfg,
        format!(
            "live: {{ url: \"mysql://root@127.0.0.1:{}/{db}\" }}\napp: {{ repo: repo, revision: v2 }}\nschema: {{ sql: db/schema.sql }}\nhints: db/upgrade-hints.yaml\nworkdir: work\n",
            port()
        ),
    )
    .unwrap();
    cfg
}

fn run(cfg: &Path, args: &[&str]) -> Output {
    Command::new(BIN).arg(args[0]).arg("--config").arg(cfg).args(&args[1..]).output().unwrap()
}

fn cleanup(db: &str) {
    sql("", &format!("DROP DATABASE IF EXISTS {db}; DROP DATABASE IF EXISTS {db}upgradetest"));
}

#[test]
fn promotion_on_mysql_upgrades_live_and_a_failure_on_live_restores_it() {
    let Some(_) = server() else { return };
    let db = format!("livemy_{}", std::process::id());
    let d = tempfile::tempdir().unwrap();
    let cfg = setup(d.path(), &db);
    let o = run(&cfg, &["run"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
    let before = dump(&db);

    // A trigger arrives on live after the rehearsal: the schema fingerprint does not see it, but it
    // makes the backfill fail on live. Live must come back exactly as it was.
    sql(&db, "CREATE TRIGGER no_updates BEFORE UPDATE ON office FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'frozen'");
    let with_trigger = dump(&db);
    let o = run(&cfg, &["run", "--live", "--yes"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(err.contains("restored from"), "{err}");
    assert_eq!(dump(&db), with_trigger, "live must be exactly as before the failed promotion");
    sql(&db, "DROP TRIGGER no_updates");
    assert_eq!(dump(&db), before);

    let o = run(&cfg, &["run", "--live", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(sql(&db, "SELECT count(*) FROM office WHERE code = CONCAT('O-', id)"), "3");
    assert_eq!(sql(&db, "SELECT count(*) FROM staff"), "3");
    let h = run(&cfg, &["history"]);
    assert_eq!(String::from_utf8_lossy(&h.stdout).lines().count(), 1);

    // Rolled back to the backup the promotion took: exactly the state before it.
    let o = run(&cfg, &["rollback", "--live", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(dump(&db), before, "live is back to its state before the promotion");
    cleanup(&db);
}

#[test]
fn kill_9_during_a_mysql_promotion_then_recover_leaves_live_old_or_new() {
    let Some(_) = server() else { return };
    let db = format!("killmy_{}", std::process::id());
    let d = tempfile::tempdir().unwrap();
    let cfg = setup(d.path(), &db);
    assert_eq!(run(&cfg, &["run"]).status.code(), Some(0));
    let old = dump(&db);
    let backup = d.path().join("old.sql");
    let t = std::time::Instant::now();
    assert_eq!(run(&cfg, &["run", "--live", "--yes"]).status.code(), Some(0));
    let full = t.elapsed().as_micros() as u64;
    let new = dump(&db);
    let dump_out = Command::new("mariadb-dump")
        .args(["--no-defaults", "-h", "127.0.0.1", "-P", &port(), "-u", "root", &db])
        .output()
        .unwrap();
    std::fs::write(&backup, dump_out.stdout).unwrap();
    let mut seen = std::collections::BTreeMap::new();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for round in 0..20 {
        // Back to the old state, then promote and kill.
        sql(&db, "SET FOREIGN_KEY_CHECKS = 0; DROP TABLE IF EXISTS office_note, rehearse_history; SET FOREIGN_KEY_CHECKS = 1");
        sql(&db, "ALTER TABLE office DROP COLUMN IF EXISTS code");
        assert_eq!(dump(&db), old, "round {round}: could not put live back to the old state");
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let delay = if round % 2 == 0 { x % (full + 1) } else { full / 2 + x % (full / 2 + 1) };
        let mut child = Command::new(BIN)
            .args(["run", "--live", "--yes", "--config"])
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(delay));
        let _ = child.kill();
        let _ = child.wait();
        let o = run(&cfg, &["recover"]);
        assert_eq!(o.status.code(), Some(0), "round {round}: {}", String::from_utf8_lossy(&o.stderr));
        let now = dump(&db);
        if now != old && now != new {
            let diff: Vec<String> = now
                .lines()
                .zip(old.lines())
                .filter(|(a, b)| a != b)
                .take(3)
                .map(|(a, b)| format!("now {a:?} / old {b:?}"))
                .collect();
            panic!(
                "round {round}: after kill at {delay} us and recover ({}), live is neither old nor new: {diff:?}",
                String::from_utf8_lossy(&o.stdout).trim()
            );
        }
        *seen.entry(if now == old { "old" } else { "new" }).or_insert(0) += 1;
    }
    eprintln!("mysql kill -9 outcomes over 20 rounds: {seen:?}");
    cleanup(&db);
}

/// A tmpfs of `kib` KiB mounted at `dir` for the life of the value (the test runs as root, as
/// CI does); unmounted when dropped. Outside CI, without root, the test is skipped with a note.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, kib: u64) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k,mode=0700"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap();
        if o.status.success() {
            return Some(SmallDisk(dir.to_path_buf()));
        }
        let why = format!(
            "cannot mount a small tmpfs at {} to fill the disk for real (needs root): {}",
            dir.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        );
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{why}");
        }
        eprintln!("SKIPPED: {why}");
        None
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Regression: a backup cut short by a full disk was taken for a backup; the script ran on live and
/// restore/recover then failed for good. `--live` must refuse before anything writes to live.
#[test]
fn a_backup_cut_short_by_a_full_disk_refuses_live_before_anything_writes() {
    let Some(_) = server() else { return };
    let db = format!("fullmy_{}", std::process::id());
    let d = tempfile::tempdir().unwrap();
    let cfg = setup(d.path(), &db);
    // Enough rows that their dump (about 2 MB) cannot fit on the small disk below.
    sql(&db, "INSERT INTO staff SELECT seq, 1, REPEAT('x', 60) FROM seq_4_to_30000");
    assert_eq!(run(&cfg, &["run"]).status.code(), Some(0));
    let before = dump(&db);
    // The workdir moves onto a 512 KiB disk: its records fit, a fresh dump of live does not.
    let work = d.path().join("work");
    let saved = d.path().join("work.saved");
    std::fs::rename(&work, &saved).unwrap();
    let Some(_disk) = SmallDisk::mount(&work, 512) else { return cleanup(&db) };
    for e in std::fs::read_dir(&saved).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().unwrap().is_file() && !name.ends_with(".dump.sql") {
            std::fs::copy(e.path(), work.join(&name)).unwrap();
        }
    }
    let o = run(&cfg, &["run", "--live", "--yes"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(5), "{err}");
    assert!(err.contains("No space left on device") || err.contains("no space left"), "names the cause: {err}");
    assert!(err.contains("unchanged"), "says what state live is in: {err}");
    assert_eq!(dump(&db), before, "live is exactly as before");
    assert_eq!(sql("", &format!("SELECT count(*) FROM information_schema.tables WHERE table_schema = '{db}' AND table_name = 'rehearse_history'")), "0");
    let left: Vec<String> = std::fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("pre-upgrade") || n.ends_with(".partial"))
        .collect();
    assert!(left.is_empty(), "the partial backup is removed: {left:?}");
    let o = run(&cfg, &["recover"]);
    let said = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(said.contains("live was not changed"), "{said}");

    // The rehearsal's clone dump is verified by the same code: it fails on the full disk too,
    // names the cause, keeps no partial dump and leaves live as it was.
    let o = run(&cfg, &["run"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("no space left on device writing"), "names the cause: {err}");
    assert!(!work.join(format!(".{db}.dump.sql.partial")).exists(), "the partial dump is removed");
    assert!(!work.join(format!("{db}.dump.sql")).exists(), "no cut dump is kept as the backup");
    assert_eq!(dump(&db), before, "live is exactly as before");
    drop(_disk);
    cleanup(&db);
}

/// The pids of the children of `pid` whose program is `name` (from /proc).
fn children_named(pid: u32, name: &str) -> Vec<u32> {
    let mut out = vec![];
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for t in tasks.flatten() {
        let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        for k in kids.split_whitespace().filter_map(|k| k.parse::<u32>().ok()) {
            if std::fs::read_to_string(format!("/proc/{k}/comm")).is_ok_and(|c| c.trim() == name) {
                out.push(k);
            }
        }
    }
    out
}

/// Whether process `pid` is gone (or a zombie), waiting at most 10 s for it.
fn gone(pid: u32) -> bool {
    for _ in 0..100 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(s) if s.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')) => return true,
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    }
    false
}

fn journal_step(cfg: &Path) -> String {
    let text = std::fs::read_to_string(cfg.parent().unwrap().join("work/live-journal.json")).unwrap_or_default();
    let j: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    j["step"].as_str().unwrap_or("none").to_string()
}

/// Regression: kill -9 while `rollback --live` reloaded the backup left live half-restored, the
/// journal still said "done" and `recover` said "nothing to do". Rollback is journalled now.
#[test]
fn kill_9_during_a_mysql_rollback_then_recover_leaves_live_old_or_new() {
    let Some(_) = server() else { return };
    let db = format!("killrbmy_{}", std::process::id());
    let d = tempfile::tempdir().unwrap();
    let cfg = setup(d.path(), &db);
    // Rows enough that reloading them takes a while to kill into.
    sql(&db, "INSERT INTO staff SELECT seq, 1 + seq % 3, REPEAT('x', 60) FROM seq_4_to_40000");
    assert_eq!(run(&cfg, &["run"]).status.code(), Some(0));
    let old = dump(&db);
    let promote = |round: usize| {
        let o = run(&cfg, &["run", "--live", "--yes"]);
        assert_eq!(o.status.code(), Some(0), "round {round}: {}", String::from_utf8_lossy(&o.stderr));
    };
    promote(0);
    let new = dump(&db);
    assert_ne!(old, new);
    let t = std::time::Instant::now();
    let o = run(&cfg, &["rollback", "--live", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let full = t.elapsed();
    assert_eq!(dump(&db), old);
    assert_eq!(journal_step(&cfg), "rolled_back");

    let (mut killed_while_loading, mut killed_recover, mut refusals_checked) = (0, 0, false);
    let mut seen = std::collections::BTreeMap::new();
    // Rounds 0-3 kill at a share of a whole rollback's time; rounds 4-7 once the loader runs.
    for round in 0..8usize {
        if dump(&db) == old {
            promote(round);
        }
        assert_eq!(dump(&db), new, "round {round}: live is not in its promoted state");
        let mut child = Command::new(BIN)
            .args(["rollback", "--live", "--yes", "--config"])
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut loader = None;
        if round < 4 {
            std::thread::sleep(full.mul_f64([0.05, 0.3, 0.6, 0.9][round]));
        } else {
            for _ in 0..2000 {
                if let Some(p) = children_named(child.id(), "mariadb").first() {
                    loader = Some(*p);
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            assert!(loader.is_some(), "round {round}: the loader never started");
            std::thread::sleep(std::time::Duration::from_millis(20 * (round as u64 - 4)));
            if children_named(child.id(), "mariadb").is_empty() {
                loader = None; // it finished before the kill
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        if let Some(p) = loader {
            assert!(gone(p), "round {round}: the loader {p} outlived the killed rehearse");
            killed_while_loading += 1;
        }
        let before = journal_step(&cfg);
        // Once: until recover has run, another rollback or --live refuses and touches nothing.
        if before == "rolling_back" && !refusals_checked {
            refusals_checked = true;
            let half = dump(&db);
            for args in [&["rollback", "--live", "--yes"][..], &["run", "--live", "--yes"][..]] {
                let o = run(&cfg, args);
                let err = String::from_utf8_lossy(&o.stderr);
                assert_eq!(o.status.code(), Some(5), "round {round}: {args:?}: {err}");
                assert!(err.contains("recover"), "round {round}: {args:?} must point to recover: {err}");
            }
            assert_eq!(dump(&db), half, "round {round}: the refusals touched live");
        }
        // Rounds 5 and 7: recover itself is killed while it reloads; the next recover finishes.
        if before == "rolling_back" && (round == 5 || round == 7) {
            let mut rec = Command::new(BIN)
                .args(["recover", "--config"])
                .arg(&cfg)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let mut rec_loader = None;
            for _ in 0..2000 {
                if let Some(p) = children_named(rec.id(), "mariadb").first() {
                    rec_loader = Some(*p);
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            let _ = rec.kill();
            let _ = rec.wait();
            let p = rec_loader.expect("recover never started its loader");
            assert!(gone(p), "round {round}: recover's loader {p} outlived it");
            assert_eq!(journal_step(&cfg), "rolling_back", "round {round}: a killed recover closed the journal");
            killed_recover += 1;
        }
        let o = run(&cfg, &["recover"]);
        let said = String::from_utf8_lossy(&o.stdout).trim().to_string();
        assert_eq!(o.status.code(), Some(0), "round {round}: {}", String::from_utf8_lossy(&o.stderr));
        let now = dump(&db);
        let step = journal_step(&cfg);
        if now == old {
            assert_eq!(step, "rolled_back", "round {round}: live is old, the journal must say so ({said})");
            assert!(before == "rolling_back" || before == "rolled_back", "round {round}: journal was {before}");
            if before == "rolling_back" {
                assert!(said.contains("restored from"), "round {round}: recover must say it restored: {said}");
            }
        } else if now == new {
            assert_eq!(step, "done", "round {round}: live is new, the journal must say so ({said})");
        } else {
            panic!("round {round}: after kill and recover ({said}), live is neither old nor new (journal {step})");
        }
        *seen.entry(format!("{before} -> {}", if now == old { "old" } else { "new" })).or_insert(0) += 1;
    }
    eprintln!(
        "mysql rollback kill -9 outcomes: {seen:?}; {killed_while_loading} killed while loading, {killed_recover} recover killed"
    );
    assert!(killed_while_loading > 0, "no round killed the rollback while its loader ran");
    assert!(killed_recover > 0, "no round killed recover while it reloaded");
    assert!(refusals_checked, "no round left the rollback interrupted");
    cleanup(&db);
}

/// A rehearsal started while a promotion holds its lock (GET_LOCK `rehearse:<db>`) must not copy a
/// half-migrated live: it waits, then refuses; once the lock is free it passes.
#[test]
fn a_rehearsal_waits_for_a_running_mysql_promotion_then_refuses() {
    let Some(_) = server() else { return };
    let db = format!("holdmy_{}", std::process::id());
    let d = tempfile::tempdir().unwrap();
    let cfg = setup(d.path(), &db);
    let before = dump(&db);
    // A session holding the lock as a running `--live` does.
    let mut holder = Command::new("mariadb")
        .args(["--no-defaults", "-h", "127.0.0.1", "-P", &port(), "-u", "root", "-N", "-B", "-e"])
        .arg(format!("SELECT GET_LOCK('rehearse:{db}', 0); SELECT SLEEP(300)"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut holder_id = String::new();
    for _ in 0..100 {
        holder_id = sql("", &format!("SELECT IFNULL(IS_USED_LOCK('rehearse:{db}'), '')"));
        if !holder_id.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(!holder_id.is_empty(), "the test session could not take the lock");
    let o = run(&cfg, &["run"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(5), "{err}");
    assert!(err.contains("is promoting") && err.contains(&format!("rehearse:{db}")), "{err}");
    assert_eq!(dump(&db), before, "live unchanged");
    assert!(!d.path().join(format!("work/{db}.dump.sql")).exists(), "no copy of live was taken");
    sql("", &format!("KILL {holder_id}"));
    let _ = holder.kill();
    let _ = holder.wait();
    let o = run(&cfg, &["run"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(dump(&db), before, "live unchanged");
    cleanup(&db);
}

/// Every regular file under `dir` (recursively when `deep`) that holds `needle`.
fn files_holding(dir: &Path, needle: &[u8], deep: bool) -> Vec<String> {
    let mut out = vec![];
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() && deep {
            out.extend(files_holding(&e.path(), needle, deep));
        } else if ft.is_file() && e.metadata().is_ok_and(|m| m.len() < 64 << 20) {
            if let Ok(bytes) = std::fs::read(e.path()) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    out.push(e.path().display().to_string());
                }
            }
        }
    }
    out
}

/// Regression: the password went into a `.rehearse-mysql-*.cnf` option file beside the dump,
/// deleted only when the client ended, so kill -9 of rehearse during a dump left it behind. It
/// travels in a pipe now, and the dump dies with rehearse.
#[test]
fn kill_9_during_a_mysql_dump_leaves_no_file_with_the_password() {
    let Some(_) = server() else { return };
    let db = format!("pwmy_{}", std::process::id());
    let d = tempfile::tempdir().unwrap();
    let cfg = setup(d.path(), &db);
    sql(&db, "INSERT INTO staff SELECT seq, 1, REPEAT('x', 60) FROM seq_4_to_100000");
    let user = format!("rpw_{}", std::process::id());
    let password = format!("Pw{}Xyzzy{}", std::process::id(), d.path().display().to_string().len());
    sql("", &format!("CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'"));
    sql("", &format!("GRANT ALL PRIVILEGES ON *.* TO '{user}'@'127.0.0.1'"));
    let live_before = dump(&db);
    let text = std::fs::read_to_string(&cfg).unwrap().replace("mysql://root@", &format!("mysql://{user}:{password}@"));
    std::fs::write(&cfg, text).unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut dumper = None;
    for _ in 0..5000 {
        if let Some(p) = children_named(child.id(), "mariadb-dump").first() {
            dumper = Some(*p);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let _ = child.kill();
    let _ = child.wait();
    let dumper = dumper.expect("the rehearsal never ran mariadb-dump");
    assert_eq!(dump(&db), live_before, "a killed rehearsal leaves live unchanged");
    assert!(gone(dumper), "the dump {dumper} outlived the killed rehearse");
    let work = d.path().join("work");
    let tmp = std::env::temp_dir();
    let pw = password.as_bytes();
    let left = [files_holding(&work, pw, true), files_holding(&tmp, pw, false)].concat();
    assert!(left.is_empty(), "files holding the password after kill -9: {left:?}");
    // An option file an earlier build left behind after a crash goes with the next run.
    let stale = work.join(".rehearse-mysql-Ab12Cd.cnf");
    std::fs::write(&stale, format!("[client]\npassword=\"{password}\"\n")).unwrap();
    let o = run(&cfg, &["run"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let left = [files_holding(&work, pw, true), files_holding(&tmp, pw, false)].concat();
    assert!(left.is_empty(), "files holding the password after the next run: {left:?}");
    assert_eq!(dump(&db), live_before, "live unchanged");
    sql("", &format!("DROP USER '{user}'@'127.0.0.1'"));
    cleanup(&db);
}
