//! `--live` on SQLite through the real binary: guards refuse with exit 5 and leave live untouched,
//! a promotion upgrades live and records history, rollback restores it, kill -9 at random moments
//! of a promotion leaves live exactly old or exactly new, nothing of rehearse's beside live can be
//! played back into it later, and another process can neither slip a write past the promotion nor
//! run a second one over it (rollback journal and WAL).

use rehearse::engine::{self, Access};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_rehearse");

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .output()
        .expect("git runs")
        .status
        .success();
    assert!(ok, "git {args:?} failed");
}

/// A live SQLite database and a repo whose v2 adds a column with a backfill hint and a unique key.
fn setup(dir: &Path) -> PathBuf {
    setup_with(dir, 500, "work")
}

/// `setup` with `staff` rows in the staff table and the given workdir.
fn setup_with(dir: &Path, staff: u32, workdir: &str) -> PathBuf {
    let live = dir.join("app.db");
    let c = rusqlite::Connection::open(&live).unwrap();
    c.execute_batch(&format!(
        "CREATE TABLE office (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL, fax VARCHAR(32));
         CREATE TABLE staff (id INTEGER PRIMARY KEY, office_id INTEGER REFERENCES office (id), name TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
         INSERT INTO office SELECT i, 'Office ' || i, NULL FROM n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {staff})
         INSERT INTO staff SELECT i, 1 + i % 200, 'Person ' || i FROM n;",
    ))
    .unwrap();
    drop(c);
    let repo = dir.join("repo");
    std::fs::create_dir_all(repo.join("db")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(
        repo.join("db/schema.sql"),
        "CREATE TABLE office (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL UNIQUE, code VARCHAR(16) NOT NULL);
         CREATE TABLE staff (id INTEGER PRIMARY KEY, office_id INTEGER REFERENCES office (id), name TEXT);
         CREATE INDEX staff_office ON staff (office_id);",
    )
    .unwrap();
    std::fs::write(repo.join("db/hints.yaml"), "defaults: { office.code: \"'O-' || id\" }\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "v2"]);
    git(&repo, &["tag", "v2"]);
    config(dir, workdir)
}

/// An upgrade.yaml for the live and repo of `setup`, with its own workdir.
fn config(dir: &Path, workdir: &str) -> PathBuf {
    let cfg = dir.join(format!("upgrade-{workdir}.yaml"));
    std::fs::write(
        &cfg,
        format!("live: {{ url: \"sqlite:app.db\" }}\napp: {{ repo: repo, revision: v2 }}\nschema: {{ sql: db/schema.sql }}\nhints: db/hints.yaml\nworkdir: {workdir}\n"),
    )
    .unwrap();
    cfg
}

fn run(cfg: &Path, args: &[&str]) -> Output {
    Command::new(BIN).arg(args[0]).arg("--config").arg(cfg).args(&args[1..]).output().expect("rehearse runs")
}

fn fingerprint(db: &Path) -> String {
    let e = engine::from_url(&format!("sqlite://{}", db.display()), Access::ReadOnly).unwrap();
    e.connect().unwrap().introspect().unwrap().fingerprint()
}

fn bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// What sits in live's folder beside the files the test itself made: rehearse must leave nothing
/// there (above all nothing SQLite could read as a journal of a later file).
fn beside_live(dir: &Path) -> Vec<String> {
    let mut extra: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "app.db" && n != "repo" && !n.starts_with("work") && !n.starts_with("upgrade-"))
        .collect();
    extra.sort();
    extra
}

/// Open live read-write and check it, as the application's next open would: SQLite rolls back a
/// write that a kill cut short (a read-only open refuses while such a hot journal is there).
fn integrity(live: &Path) -> String {
    let c = rusqlite::Connection::open(live).unwrap();
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap()
}

#[test]
fn guards_refuse_with_exit_5_and_leave_live_untouched() {
    let d = tempfile::tempdir().unwrap();
    let cfg = setup(d.path());
    let live = d.path().join("app.db");
    let before = bytes(&live);

    // No rehearsal yet.
    let o = run(&cfg, &["run", "--live", "--yes"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("no passed rehearsal"), "{}", stderr(&o));

    let o = run(&cfg, &["run"]);
    assert_eq!(o.status.code(), Some(0), "rehearsal should pass: {}", String::from_utf8_lossy(&o.stdout));

    // A script that differs from the rehearsed one.
    let tampered = d.path().join("tampered.sql");
    let mut text = std::fs::read_to_string(d.path().join("work/rehearsed.sql")).unwrap();
    text.push_str("\n-- one more line\n");
    std::fs::write(&tampered, text).unwrap();
    let o = run(&cfg, &["run", "--live", "--yes", "--script", tampered.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("SHA-256"), "{}", stderr(&o));

    // Without a terminal and without --yes.
    let o = Command::new(BIN)
        .args(["run", "--live", "--config"])
        .arg(&cfg)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));

    // Data drift: a duplicate name arrives after the rehearsal, so the new unique key would fail.
    let c = rusqlite::Connection::open(&live).unwrap();
    c.execute("UPDATE office SET name = 'Office 1' WHERE id = 2", []).unwrap();
    drop(c);
    let drifted = bytes(&live);
    let o = run(&cfg, &["run", "--live", "--yes"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("drifted"), "{}", stderr(&o));
    assert_eq!(bytes(&live), drifted, "a refused promotion must not touch live");

    // Schema drift: a column added on live after the rehearsal.
    std::fs::write(&live, &before).unwrap();
    let c = rusqlite::Connection::open(&live).unwrap();
    c.execute("ALTER TABLE staff ADD COLUMN phone TEXT", []).unwrap();
    drop(c);
    let o = run(&cfg, &["run", "--live", "--yes"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("has changed since the rehearsal") && stderr(&o).contains("phone"), "{}", stderr(&o));
}

#[test]
fn promotion_upgrades_live_records_history_and_rolls_back() {
    let d = tempfile::tempdir().unwrap();
    let cfg = setup(d.path());
    let live = d.path().join("app.db");
    let old_fp = fingerprint(&live);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&live, std::fs::Permissions::from_mode(0o664)).unwrap();
    }
    assert_eq!(run(&cfg, &["run"]).status.code(), Some(0));
    let o = run(&cfg, &["run", "--live", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The duration is announced from the rehearsal's time, scaled to live's rows of the moment.
    assert!(stderr(&o).contains("test copy's 700 rows; live has 700 now: expect about"), "{}", stderr(&o));
    assert_ne!(fingerprint(&live), old_fp);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&live).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o664, "the upgraded live file must keep live's mode, so the application keeps its access");
    }
    let c = rusqlite::Connection::open(&live).unwrap();
    let codes: i64 = c.query_row("SELECT count(*) FROM office WHERE code = 'O-' || id", [], |r| r.get(0)).unwrap();
    assert_eq!(codes, 200);
    let staff: i64 = c.query_row("SELECT count(*) FROM staff", [], |r| r.get(0)).unwrap();
    assert_eq!(staff, 500);
    drop(c);
    let h = run(&cfg, &["history"]);
    let out = String::from_utf8_lossy(&h.stdout);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert_eq!(beside_live(d.path()), Vec::<String>::new(), "a promotion leaves nothing beside live");

    let o = run(&cfg, &["rollback", "--live", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(fingerprint(&live), old_fp);
    let c = rusqlite::Connection::open(&live).unwrap();
    let staff: i64 = c.query_row("SELECT count(*) FROM staff", [], |r| r.get(0)).unwrap();
    assert_eq!(staff, 500);
    drop(c);
    assert_eq!(beside_live(d.path()), Vec::<String>::new(), "a rollback leaves nothing beside live");
}

#[test]
fn kill_9_at_random_moments_leaves_live_old_or_new() {
    let d = tempfile::tempdir().unwrap();
    let cfg = setup(d.path());
    let live = d.path().join("app.db");
    let original = bytes(&live);
    let old_fp = fingerprint(&live);
    assert_eq!(run(&cfg, &["run"]).status.code(), Some(0));
    // One full promotion to learn the new fingerprint and how long a promotion takes.
    let t = std::time::Instant::now();
    assert_eq!(run(&cfg, &["run", "--live", "--yes"]).status.code(), Some(0));
    let full = t.elapsed().as_micros() as u64;
    let new_fp = fingerprint(&live);
    let mut seen = std::collections::BTreeMap::new();
    // A small deterministic generator: kill moments spread over the whole promotion.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for round in 0..24 {
        // SQLite's sidecars go too: a hot journal belongs to the write it interrupted, and would
        // be played back into the fresh file.
        for suffix in ["-journal", "-wal", "-shm"] {
            let _ = std::fs::remove_file(d.path().join(format!("app.db{suffix}")));
        }
        std::fs::write(&live, &original).unwrap();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Half the rounds anywhere in the promotion, half in its second half, where the swap is.
        let delay = if round % 2 == 0 { x % (full + 1) } else { full / 2 + x % (full / 2 + 1) };
        let mut child = Command::new(BIN)
            .args(["run", "--live", "--yes", "--config"])
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(delay));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        assert_eq!(integrity(&live), "ok", "round {round}");
        let fp = fingerprint(&live);
        assert!(fp == old_fp || fp == new_fp, "round {round}: after kill at {delay} us live is neither old nor new");
        *seen.entry(if fp == old_fp { "old" } else { "new" }).or_insert(0) += 1;
        // The next start settles whatever was interrupted.
        let o = run(&cfg, &["recover"]);
        assert_eq!(o.status.code(), Some(0), "round {round}: {}", stderr(&o));
        assert_eq!(beside_live(d.path()), Vec::<String>::new(), "round {round}: nothing of rehearse's beside live");
        assert!(
            !d.path().join("work/.app.db.rehearse-upgrade").exists(),
            "round {round}: the half-made working copy must be cleaned"
        );
    }
    eprintln!("kill -9 outcomes over 24 rounds: {seen:?}");
}

/// The step an interrupted promotion's journal names, or "" when there is none yet.
fn journal_step(workdir: &Path) -> String {
    std::fs::read_to_string(workdir.join("live-journal.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|j| j["step"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Regression: the working copy's journal, left beside live by a killed promotion and not removed
/// by `recover`, was played back by SQLite into the next promotion's copy, so a later --live
/// reported success and lost every update the application had made since.
#[test]
fn recover_after_a_killed_promotion_leaves_nothing_a_later_promotion_plays_back() {
    let d = tempfile::tempdir().unwrap();
    let rows = 150_000;
    let cfg = setup_with(d.path(), rows, "work");
    let live = d.path().join("app.db");
    let workdir = d.path().join("work");
    assert_eq!(run(&cfg, &["run"]).status.code(), Some(0));
    let old_fp = fingerprint(&live);
    // Kill the promotion while its script runs on the working copy.
    let mut child = Command::new(BIN)
        .args(["run", "--live", "--yes", "--config"])
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while journal_step(&workdir) != "running" && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    std::thread::sleep(std::time::Duration::from_millis(30));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(integrity(&live), "ok");
    let o = run(&cfg, &["recover"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(beside_live(d.path()), Vec::<String>::new(), "recover leaves nothing beside live");
    // The application goes on writing, then the upgrade is rehearsed and promoted again.
    if fingerprint(&live) == old_fp {
        let c = rusqlite::Connection::open(&live).unwrap();
        c.execute("UPDATE staff SET name = 'updated ' || id", []).unwrap();
        drop(c);
        assert_eq!(run(&cfg, &["run"]).status.code(), Some(0));
        let o = run(&cfg, &["run", "--live", "--yes"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    } else {
        // The kill came after the final write: the application's updates land on the new live.
        let c = rusqlite::Connection::open(&live).unwrap();
        c.execute("UPDATE staff SET name = 'updated ' || id", []).unwrap();
        drop(c);
    }
    assert_ne!(fingerprint(&live), old_fp);
    let c = rusqlite::Connection::open(&live).unwrap();
    let updated: i64 =
        c.query_row("SELECT count(*) FROM staff WHERE name = 'updated ' || id", [], |r| r.get(0)).unwrap();
    assert_eq!(updated, i64::from(rows), "every update the application made must be in the promoted live");
}

/// Another process writes to live all through a promotion, on a connection it keeps open: each
/// write it saw committed is in live afterwards (none lands in a file that is then replaced), it
/// is held off while the promotion holds live, live is intact, and its connection goes on working
/// on the upgraded live. `wal`: live in WAL mode, where replacing the file would corrupt it.
fn a_writer_in_another_process_loses_nothing(wal: bool) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let d = tempfile::tempdir().unwrap();
    let cfg = setup_with(d.path(), 60_000, "work");
    let live = d.path().join("app.db");
    if wal {
        let c = rusqlite::Connection::open(&live).unwrap();
        let mode: String = c.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
    }
    assert_eq!(run(&cfg, &["run"]).status.code(), Some(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (live, stop) = (live.clone(), stop.clone());
        std::thread::spawn(move || {
            let c = rusqlite::Connection::open(&live).unwrap();
            c.busy_timeout(std::time::Duration::from_millis(2)).unwrap();
            let (mut committed, mut held_off) = (Vec::new(), 0u32);
            let mut id = 1_000_000i64;
            while !stop.load(Ordering::SeqCst) {
                id += 1;
                match c.execute("INSERT INTO staff (id, office_id, name) VALUES (?1, 1, 'writer')", [id]) {
                    Ok(_) => committed.push(id),
                    Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => held_off += 1,
                    Err(e) => panic!("the writer's insert failed: {e}"),
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            // Its connection, opened before the promotion, sees the upgraded database.
            let code: Option<String> = c.query_row("SELECT code FROM office WHERE id = 1", [], |r| r.get(0)).unwrap();
            (committed, held_off, code)
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    let o = run(&cfg, &["run", "--live", "--yes"]);
    std::thread::sleep(std::time::Duration::from_millis(100));
    stop.store(true, Ordering::SeqCst);
    let (committed, held_off, code) = writer.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(held_off > 0, "the writer must have been held off while the promotion held live");
    assert_eq!(code.as_deref(), Some("O-1"), "the writer's open connection must see the upgraded live");
    assert_eq!(integrity(&live), "ok");
    let c = rusqlite::Connection::open(&live).unwrap();
    let found: i64 = c.query_row("SELECT count(*) FROM staff WHERE name = 'writer'", [], |r| r.get(0)).unwrap();
    assert_eq!(found as usize, committed.len(), "every write the other process saw committed must be in live");
    let code_col: i64 = c.query_row("SELECT count(*) FROM office WHERE code IS NOT NULL", [], |r| r.get(0)).unwrap();
    assert_eq!(code_col, 200);
    drop(c);
    assert_eq!(beside_live(d.path()).iter().filter(|n| !n.ends_with("-wal") && !n.ends_with("-shm")).count(), 0);
}

#[test]
fn a_writer_in_another_process_loses_nothing_during_a_promotion() {
    a_writer_in_another_process_loses_nothing(false);
}

#[test]
fn a_writer_in_another_process_loses_nothing_during_a_promotion_of_a_wal_live() {
    a_writer_in_another_process_loses_nothing(true);
}

#[test]
fn two_promotions_from_two_workdirs_at_once_one_promotes_and_the_other_refuses() {
    let d = tempfile::tempdir().unwrap();
    let cfg = setup_with(d.path(), 60_000, "work");
    let cfg2 = config(d.path(), "work2");
    let live = d.path().join("app.db");
    let old_fp = fingerprint(&live);
    assert_eq!(run(&cfg, &["run"]).status.code(), Some(0));
    assert_eq!(run(&cfg2, &["run"]).status.code(), Some(0));
    let spawn = |cfg: &Path| {
        Command::new(BIN)
            .args(["run", "--live", "--yes", "--config"])
            .arg(cfg)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(&cfg), spawn(&cfg2));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let mut codes = [a.status.code(), b.status.code()];
    codes.sort();
    assert_eq!(codes, [Some(0), Some(5)], "one promotes, the other refuses:\n{}\n{}", stderr(&a), stderr(&b));
    assert_ne!(fingerprint(&live), old_fp);
    let h = run(&cfg, &["history"]);
    assert_eq!(String::from_utf8_lossy(&h.stdout).lines().count(), 1, "exactly one promotion is recorded");
    assert_eq!(integrity(&live), "ok");
}

/// A rehearsal in the workdir of a running `--live` (here: its workdir lock, held by this test as
/// the promotion would) waits for it instead of clearing the record the promotion reads.
#[test]
fn a_rehearsal_waits_for_a_promotion_running_in_its_workdir() {
    let d = tempfile::tempdir().unwrap();
    let cfg = setup(d.path());
    assert_eq!(run(&cfg, &["run"]).status.code(), Some(0));
    let record = d.path().join("work/rehearsal.json");
    assert!(record.exists());
    let lock = std::fs::OpenOptions::new().write(true).open(d.path().join("work/live.lock")).unwrap();
    lock.lock().unwrap();
    let child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(record.exists(), "the record must stay while the promotion holds the workdir");
    lock.unlock().unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(record.exists());
}

/// Every row of every table of `db`, in a stable order: what "exactly old or exactly new" compares.
/// `rehearse_history` is left out: each promotion adds its own row (its time).
fn content(db: &Path) -> String {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut tables = c
        .prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name <> 'rehearse_history' ORDER BY name",
        )
        .unwrap();
    let tables: Vec<(String, String)> =
        tables.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
    let mut out = String::new();
    for (name, sql) in tables {
        out.push_str(&format!("{sql}\n"));
        let mut q = c.prepare(&format!("SELECT * FROM \"{}\" ORDER BY rowid", name.replace('"', "\"\""))).unwrap();
        let n = q.column_count();
        let rows = q
            .query_map([], |r| Ok((0..n).map(|i| format!("{:?}", r.get_ref(i).unwrap())).collect::<Vec<_>>().join("|")))
            .unwrap();
        for row in rows {
            out.push_str(&row.unwrap());
            out.push('\n');
        }
    }
    out
}

/// kill -9 of `rollback --live` at moments spread over it, and in half the rounds of the
/// `recover` that follows too: live is exactly old or exactly new at every moment (every row
/// compared), and once a `recover` has run through, the journal agrees with live (`RolledBack`:
/// old; `Done`: new, and a rollback is possible again).
#[test]
fn kill_9_during_rollback_and_recover_leaves_live_old_or_new() {
    let d = tempfile::tempdir().unwrap();
    let cfg = setup(d.path());
    let live = d.path().join("app.db");
    let old = content(&live);
    assert_eq!(run(&cfg, &["run"]).status.code(), Some(0));
    assert_eq!(run(&cfg, &["run", "--live", "--yes"]).status.code(), Some(0));
    let new = content(&live);
    assert_ne!(old, new);
    let t = std::time::Instant::now();
    assert_eq!(run(&cfg, &["rollback", "--live", "--yes"]).status.code(), Some(0));
    let full = t.elapsed().as_micros() as u64;
    assert_eq!(content(&live), old);
    let spawn = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .arg("--config")
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let state = |round: usize, when: &str| -> &'static str {
        assert_eq!(integrity(&live), "ok", "round {round} {when}");
        let now = content(&live);
        assert!(now == old || now == new, "round {round} {when}: live is neither old nor new");
        if now == old {
            "old"
        } else {
            "new"
        }
    };
    let mut seen = std::collections::BTreeMap::new();
    let mut x: u64 = 0xD1B5_4A32_D192_ED03;
    for round in 0..12 {
        // Promoted again (the rehearsal still holds: live is as it was rehearsed).
        if state(round, "before") == "old" {
            let o = run(&cfg, &["run", "--live", "--yes"]);
            assert_eq!(o.status.code(), Some(0), "round {round}: {}", stderr(&o));
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut child = spawn(&["rollback", "--live", "--yes"]);
        std::thread::sleep(std::time::Duration::from_micros(x % (full + 1)));
        let _ = child.kill();
        let _ = child.wait();
        *seen.entry(state(round, "after the killed rollback")).or_insert(0) += 1;
        if round % 2 == 1 {
            let mut child = spawn(&["recover"]);
            std::thread::sleep(std::time::Duration::from_micros(x % (full / 2 + 1)));
            let _ = child.kill();
            let _ = child.wait();
            state(round, "after the killed recover");
        }
        let o = run(&cfg, &["recover"]);
        assert_eq!(o.status.code(), Some(0), "round {round}: {}", stderr(&o));
        let now = state(round, "after recover");
        let step = journal_step(&d.path().join("work"));
        match now {
            "old" => assert_eq!(step, "rolled_back", "round {round}: live is old, the journal says {step}"),
            _ => assert_eq!(step, "done", "round {round}: live is new, the journal says {step}"),
        }
        assert_eq!(beside_live(d.path()), Vec::<String>::new(), "round {round}: nothing of rehearse's beside live");
    }
    eprintln!("kill -9 of rollback, outcomes over 12 rounds: {seen:?}");
}
