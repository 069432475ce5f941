//! `--live` on SQLite through the real binary: guards refuse with exit 5 and leave live untouched,
//! a promotion upgrades live and records history, rollback restores it, and kill -9 at random
//! moments of a promotion leaves live exactly old or exactly new.

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
    let live = dir.join("app.db");
    let c = rusqlite::Connection::open(&live).unwrap();
    c.execute_batch(
        "CREATE TABLE office (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL, fax VARCHAR(32));
         CREATE TABLE staff (id INTEGER PRIMARY KEY, office_id INTEGER REFERENCES office (id), name TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
         INSERT INTO office SELECT i, 'Office ' || i, NULL FROM n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
         INSERT INTO staff SELECT i, 1 + i % 200, 'Person ' || i FROM n;",
    )
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
    let cfg = dir.join("upgrade.yaml");
    std::fs::write(
        &cfg,
        "live: { url: \"sqlite:app.db\" }\napp: { repo: repo, revision: v2 }\nschema: { sql: db/schema.sql }\nhints: db/hints.yaml\nworkdir: work\n",
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
    assert!(d.path().join("app.db.pre-upgrade").exists());

    let o = run(&cfg, &["rollback", "--live", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(fingerprint(&live), old_fp);
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
        std::fs::write(&live, &original).unwrap();
        let _ = std::fs::remove_file(d.path().join("app.db.pre-upgrade"));
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
        let fp = fingerprint(&live);
        assert!(fp == old_fp || fp == new_fp, "round {round}: after kill at {delay} us live is neither old nor new");
        let c = rusqlite::Connection::open(&live).unwrap();
        let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok", "round {round}");
        drop(c);
        *seen.entry(if fp == old_fp { "old" } else { "new" }).or_insert(0) += 1;
        // The next start settles whatever was interrupted.
        let o = run(&cfg, &["recover"]);
        assert_eq!(o.status.code(), Some(0), "round {round}: {}", stderr(&o));
        assert!(
            !d.path().join(".app.db.rehearse-upgrade").exists(),
            "round {round}: the half-made copy must be cleaned"
        );
    }
    eprintln!("kill -9 outcomes over 24 rounds: {seen:?}");
}
