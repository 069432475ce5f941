//! Offline upgrade bundles through the real binary: `rehearse bundle` after a passed rehearsal,
//! then `rehearse apply` on a separate client copy (database and program folder): the round trip
//! and rollback, altered and cut-short bundles, a client at another version, a script that fails on
//! the client's data, and kill -9 at moments spread over a whole apply.

mod common;

use rehearse::engine::{self, Access};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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

const V1_SCHEMA: &str = "CREATE TABLE office (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL, fax VARCHAR(32));
CREATE TABLE staff (id INTEGER PRIMARY KEY, office_id INTEGER REFERENCES office (id), name TEXT);";

/// The program files of v1, as a client has them installed.
fn v1_files(dir: &Path) {
    std::fs::create_dir_all(dir.join("db")).unwrap();
    std::fs::write(dir.join("VERSION"), "1\n").unwrap();
    std::fs::write(dir.join("app.txt"), "old app\n").unwrap();
    std::fs::write(dir.join("db/schema.sql"), V1_SCHEMA).unwrap();
}

struct Setup {
    dir: PathBuf,
    cfg: PathBuf,
    live: PathBuf,
}

/// A live SQLite database at v1 and a repository whose v2 adds `office.code` (NOT NULL, with a
/// defaults hint), a unique name, an index and more program files; rehearsed, so it passed.
fn setup(dir: &Path) -> Setup {
    let live = dir.join("app.db");
    let c = rusqlite::Connection::open(&live).unwrap();
    c.execute_batch(&format!(
        "{V1_SCHEMA}
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
         INSERT INTO office SELECT i, 'Office ' || i, NULL FROM n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
         INSERT INTO staff SELECT i, 1 + i % 200, 'Person ' || i FROM n;"
    ))
    .unwrap();
    drop(c);
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    v1_files(&repo);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "v1"]);
    std::fs::write(repo.join("VERSION"), "2\n").unwrap();
    std::fs::write(repo.join("app.txt"), "new app\n").unwrap();
    std::fs::write(
        repo.join("db/schema.sql"),
        "CREATE TABLE office (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL UNIQUE, code VARCHAR(16) NOT NULL);
         CREATE TABLE staff (id INTEGER PRIMARY KEY, office_id INTEGER REFERENCES office (id), name TEXT);
         CREATE INDEX staff_office ON staff (office_id);",
    )
    .unwrap();
    std::fs::write(repo.join("db/hints.yaml"), "defaults: { office.code: \"'O-' || id\" }\n").unwrap();
    std::fs::create_dir_all(repo.join("static/css")).unwrap();
    std::fs::write(repo.join("static/css/site.css"), "body { margin: 0 }\n").unwrap();
    std::fs::create_dir_all(repo.join("bin")).unwrap();
    std::fs::write(repo.join("bin/start"), "#!/bin/sh\necho start\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(repo.join("bin/start"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "v2"]);
    git(&repo, &["tag", "v2"]);
    let cfg = dir.join("upgrade.yaml");
    std::fs::write(
        &cfg,
        "live: { url: \"sqlite:app.db\" }\napp: { repo: repo, revision: v2 }\nschema: { sql: db/schema.sql }\nhints: db/hints.yaml\nworkdir: work\n",
    )
    .unwrap();
    let o = rehearse(&cfg, &["run"]);
    assert_eq!(o.status.code(), Some(0), "the rehearsal should pass: {}", String::from_utf8_lossy(&o.stdout));
    Setup { dir: dir.to_path_buf(), cfg, live }
}

fn rehearse(cfg: &Path, args: &[&str]) -> Output {
    Command::new(BIN).arg(args[0]).arg("--config").arg(cfg).args(&args[1..]).output().expect("rehearse runs")
}

fn bin(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut c = Command::new(BIN);
    for a in args {
        c.arg(a);
    }
    c.output().expect("rehearse runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn fingerprint(db: &Path) -> String {
    let e = engine::from_url(&format!("sqlite://{}", db.display()), Access::ReadOnly).unwrap();
    e.connect().unwrap().introspect().unwrap().fingerprint()
}

fn integrity(db: &Path) -> String {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap()
}

/// The fingerprints the rehearsal recorded: (live at rehearsal time, target).
fn recorded(s: &Setup) -> (String, String) {
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.dir.join("work/rehearsal.json")).unwrap()).unwrap();
    (r["live_fingerprint"].as_str().unwrap().into(), r["target_fingerprint"].as_str().unwrap().into())
}

/// Every file and folder under `dir` (a `.git` folder left out) with its content.
fn tree(dir: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    fn walk(root: &Path, here: &Path, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
        for e in std::fs::read_dir(here).unwrap() {
            let e = e.unwrap();
            if e.file_name() == ".git" {
                continue;
            }
            let rel = e.path().strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            if e.file_type().unwrap().is_dir() {
                out.insert(rel, None);
                walk(root, &e.path(), out);
            } else {
                out.insert(rel, Some(std::fs::read(e.path()).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A client: its own copy of the live database and the v1 program folder.
struct Client {
    db: PathBuf,
    code: PathBuf,
}

fn client(s: &Setup, name: &str) -> Client {
    let dir = s.dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("app.db");
    std::fs::copy(&s.live, &db).unwrap();
    let code = dir.join("program");
    v1_files(&code);
    Client { db, code }
}

fn beside(p: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", p.display()))
}

fn bundle(s: &Setup, code: &[&str]) -> PathBuf {
    let out = s.dir.join("upgrade.rhb");
    let mut args = vec!["bundle", "--out", out.to_str().unwrap()];
    args.extend(code);
    let o = rehearse(&s.cfg, &args);
    assert_eq!(o.status.code(), Some(0), "bundle: {}", stderr(&o));
    out
}

fn apply(b: &Path, c: &Client) -> Output {
    bin(&[&"apply", &b, &"--db", &c.db, &"--code-dir", &c.code])
}

#[test]
fn bundle_is_refused_without_a_passed_rehearsal_or_for_another_engine() {
    let d = tempfile::tempdir().unwrap();
    let s = setup(d.path());
    let record = s.dir.join("work/rehearsal.json");
    let text = std::fs::read_to_string(&record).unwrap();

    std::fs::write(&record, text.replace("\"engine\": \"sqlite\"", "\"engine\": \"postgres\"")).unwrap();
    let o = rehearse(&s.cfg, &["bundle", "--out", "x.rhb"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("SQLite"), "{}", stderr(&o));

    std::fs::remove_file(&record).unwrap();
    let o = rehearse(&s.cfg, &["bundle", "--out", "x.rhb"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("no passed rehearsal"), "{}", stderr(&o));
    assert!(!s.dir.join("x.rhb").exists());
}

#[test]
fn round_trip_upgrades_database_and_program_then_rolls_both_back() {
    let d = tempfile::tempdir().unwrap();
    let s = setup(d.path());
    let (old_fp, new_fp) = recorded(&s);
    // The checkout of the rehearsed revision, as a folder (its .git is left out of the bundle).
    let checkout = s.dir.join("work/checkout");
    let b = bundle(&s, &["--code", checkout.to_str().unwrap()]);
    let c = client(&s, "client");
    let old_tree = tree(&c.code);
    let new_tree = tree(&checkout);
    assert_ne!(old_tree, new_tree);

    let o = apply(&b, &c);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(fingerprint(&c.db), new_fp);
    assert_eq!(integrity(&c.db), "ok");
    let db = rusqlite::Connection::open(&c.db).unwrap();
    let codes: i64 = db.query_row("SELECT count(*) FROM office WHERE code = 'O-' || id", [], |r| r.get(0)).unwrap();
    let staff: i64 = db.query_row("SELECT count(*) FROM staff", [], |r| r.get(0)).unwrap();
    let history: i64 = db.query_row("SELECT count(*) FROM rehearse_history", [], |r| r.get(0)).unwrap();
    assert_eq!((codes, staff, history), (200, 500, 1));
    drop(db);
    assert_eq!(tree(&c.code), new_tree, "the program folder holds the new code");
    assert_eq!(tree(&beside(&c.code, ".pre-upgrade")), old_tree, "the old program folder is kept");
    assert_eq!(fingerprint(&beside(&c.db, ".pre-upgrade")), old_fp, "the old database is kept");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(c.code.join("bin/start")).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "an executable stays executable");
    }
    let log = std::fs::read_to_string(beside(&c.db, ".upgrade.log")).unwrap();
    assert!(log.contains("complete and unaltered") && log.contains("FINISHED"), "{log}");
    assert!(!beside(&c.code, ".rehearse-new").exists());

    // Applying again is a no-op.
    let o = apply(&b, &c);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("already"), "{}", String::from_utf8_lossy(&o.stdout));

    // Rollback needs only --db: the journal remembers the program folder.
    let o = bin(&[&"apply", &"--rollback", &"--db", &c.db]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(fingerprint(&c.db), old_fp);
    assert_eq!(tree(&c.code), old_tree);
    assert_eq!(tree(&beside(&c.code, ".rolled-back")), new_tree);
    assert_eq!(fingerprint(&beside(&c.db, ".rolled-back")), new_fp);
    let o = bin(&[&"apply", &"--rollback", &"--db", &c.db, &"--code-dir", &c.code]);
    assert_eq!(o.status.code(), Some(5), "a second rollback has nothing to do: {}", stderr(&o));

    // And the same bundle applies again after a rollback.
    let o = apply(&b, &c);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(fingerprint(&c.db), new_fp);
    assert_eq!(tree(&c.code), new_tree);
    let log = std::fs::read_to_string(beside(&c.db, ".upgrade.log")).unwrap();
    assert!(log.lines().all(|l| l.get(..4).is_some_and(|y| y.chars().all(|c| c.is_ascii_digit()))), "{log}");
}

#[test]
fn an_altered_or_cut_short_bundle_is_refused_and_nothing_changes() {
    let d = tempfile::tempdir().unwrap();
    let s = setup(d.path());
    let b = bundle(&s, &["--code-rev"]);
    let good = std::fs::read(&b).unwrap();
    let c = client(&s, "client");
    let db_before = std::fs::read(&c.db).unwrap();
    let code_before = tree(&c.code);
    let script_at = good.windows(11).position(|w| w == b"ALTER TABLE").unwrap_or(good.len() / 2);
    let flips = [10, 600, script_at, good.len() / 2, good.len() - 2048 + 520, good.len() - 1];
    let cuts = [0, 100, good.len() / 2, good.len() - 1024, good.len() - 1];
    let bad = s.dir.join("bad.rhb");
    let mut cases: Vec<(String, Vec<u8>)> = flips
        .iter()
        .map(|&i| {
            let mut v = good.clone();
            v[i] ^= 0x20;
            (format!("byte {i} flipped"), v)
        })
        .collect();
    cases.extend(cuts.iter().map(|&n| (format!("cut to {n} bytes"), good[..n].to_vec())));
    for (what, bytes) in cases {
        std::fs::write(&bad, bytes).unwrap();
        let o = apply(&bad, &c);
        assert_eq!(o.status.code(), Some(6), "{what}: {}", stderr(&o));
        assert!(stderr(&o).contains("damaged or altered"), "{what}: {}", stderr(&o));
        assert_eq!(std::fs::read(&c.db).unwrap(), db_before, "{what}: the database must not change");
        assert_eq!(tree(&c.code), code_before, "{what}: the program folder must not change");
        assert!(!beside(&c.db, ".pre-upgrade").exists() && !beside(&c.code, ".rehearse-new").exists());
    }
    let log = std::fs::read_to_string(beside(&c.db, ".upgrade.log")).unwrap();
    assert!(log.contains("REFUSED (damaged upgrade file)") && log.contains("exit code 6"), "{log}");
    // The untouched bundle still applies.
    std::fs::write(&bad, &good).unwrap();
    assert_eq!(apply(&bad, &c).status.code(), Some(0));
}

#[test]
fn a_client_at_another_version_is_refused_naming_both_fingerprints() {
    let d = tempfile::tempdir().unwrap();
    let s = setup(d.path());
    let (old_fp, _) = recorded(&s);
    let b = bundle(&s, &["--code-rev"]);
    let c = client(&s, "client");
    let db = rusqlite::Connection::open(&c.db).unwrap();
    db.execute("ALTER TABLE staff ADD COLUMN phone TEXT", []).unwrap();
    drop(db);
    let client_fp = fingerprint(&c.db);
    let db_before = std::fs::read(&c.db).unwrap();
    let code_before = tree(&c.code);
    let o = apply(&b, &c);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains(&client_fp[..12]) && e.contains(&old_fp[..12]), "both fingerprints must be named: {e}");
    assert!(e.contains("another version"), "{e}");
    assert_eq!(std::fs::read(&c.db).unwrap(), db_before);
    assert_eq!(tree(&c.code), code_before);
    let log = std::fs::read_to_string(beside(&c.db, ".upgrade.log")).unwrap();
    assert!(log.contains("REFUSED") && log.contains(&client_fp[..12]), "{log}");
}

#[test]
fn a_script_that_fails_on_the_clients_data_changes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let s = setup(d.path());
    let b = bundle(&s, &["--code-rev"]);
    let c = client(&s, "client");
    // Two offices share a name: the new UNIQUE key fails on this client only.
    let db = rusqlite::Connection::open(&c.db).unwrap();
    db.execute("UPDATE office SET name = 'Office 1' WHERE id = 2", []).unwrap();
    drop(db);
    let db_before = std::fs::read(&c.db).unwrap();
    let code_before = tree(&c.code);
    let o = apply(&b, &c);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert_eq!(std::fs::read(&c.db).unwrap(), db_before);
    assert_eq!(tree(&c.code), code_before);
    for leftover in [beside(&c.code, ".rehearse-new"), c.db.with_file_name(".app.db.rehearse-upgrade")] {
        assert!(!leftover.exists(), "{} must be cleaned", leftover.display());
    }
    let log = std::fs::read_to_string(beside(&c.db, ".upgrade.log")).unwrap();
    assert!(log.contains("Nothing was changed") && log.contains("exit code 4"), "{log}");
}

#[test]
fn a_program_folder_that_cannot_be_replaced_puts_the_database_back() {
    let d = tempfile::tempdir().unwrap();
    let s = setup(d.path());
    let (old_fp, _) = recorded(&s);
    let b = bundle(&s, &["--code-rev"]);
    let c = client(&s, "client");
    // A file where the kept program folder goes: moving the program folder aside fails after the
    // database was swapped (as a file held open in the folder does on Windows).
    std::fs::write(beside(&c.code, ".pre-upgrade"), "in the way").unwrap();
    let db_before = common::db::sqlite_dump(&c.db).unwrap();
    let code_before = tree(&c.code);
    let o = apply(&b, &c);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("put back"), "{}", stderr(&o));
    assert_eq!(fingerprint(&c.db), old_fp);
    // Written back into the same file through SQLite (its change counter moves), so compared by
    // content: every object and every row.
    assert_eq!(common::db::sqlite_dump(&c.db).unwrap(), db_before, "the very same database is back");
    assert_eq!(tree(&c.code), code_before);
    assert!(!beside(&c.code, ".rehearse-new").exists());
    // Nothing is left to settle, and once the way is clear the upgrade goes through.
    let o = bin(&[&"apply", &"--recover", &"--db", &c.db]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("nothing to do"), "{}", stderr(&o));
    std::fs::remove_file(beside(&c.code, ".pre-upgrade")).unwrap();
    assert_eq!(apply(&b, &c).status.code(), Some(0));
}

#[test]
fn kill_9_during_apply_leaves_database_and_program_matching_after_recover() {
    let d = tempfile::tempdir().unwrap();
    let s = setup(d.path());
    let (old_fp, new_fp) = recorded(&s);
    let b = bundle(&s, &["--code-rev"]);
    let c = client(&s, "client");
    let original = std::fs::read(&c.db).unwrap();
    let old_tree = tree(&c.code);
    let reset = || {
        for dir in [".pre-upgrade", ".rehearse-new", ".rolled-back", ""] {
            let _ = std::fs::remove_dir_all(beside(&c.code, dir));
        }
        // SQLite's own sidecars too: a hot journal left by a killed write belongs to the file it
        // interrupted, and would be played back into the fresh one.
        for f in [".pre-upgrade", ".rehearse-apply.json", ".rolled-back", "-journal", "-wal", "-shm"] {
            let _ = std::fs::remove_file(beside(&c.db, f));
        }
        std::fs::write(&c.db, &original).unwrap();
        v1_files(&c.code);
    };
    // A full apply: how long it takes (the quicker of two, the first pays for cold caches), and
    // what the new program folder looks like.
    let mut full = u64::MAX;
    for _ in 0..2 {
        reset();
        let t = std::time::Instant::now();
        assert_eq!(apply(&b, &c).status.code(), Some(0));
        full = full.min(t.elapsed().as_micros() as u64);
    }
    assert_eq!(fingerprint(&c.db), new_fp);
    let new_tree = tree(&c.code);

    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let rounds = 24;
    for round in 0..rounds {
        reset();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Half the rounds anywhere in the apply, half in its second half, where the swaps are.
        let delay = if round % 2 == 0 { x % (full + 1) } else { full / 2 + x % (full / 2 + 1) };
        let mut child = Command::new(BIN)
            .arg("apply")
            .arg(&b)
            .arg("--db")
            .arg(&c.db)
            .arg("--code-dir")
            .arg(&c.code)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(delay));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // Opened read-write first, as the program would: SQLite rolls back a write the kill cut
        // short (a read-only open refuses while such a hot journal is there).
        assert_eq!(integrity(&c.db), "ok", "round {round}");
        let fp = fingerprint(&c.db);
        assert!(
            fp == old_fp || fp == new_fp,
            "round {round}: after kill at {delay} us the database is neither old nor new"
        );
        let step = std::fs::read_to_string(beside(&c.db, ".rehearse-apply.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|j| j["step"].as_str().map(str::to_string))
            .unwrap_or_else(|| "not started".into());

        // The next start settles whatever was interrupted: the program folder follows the database.
        // Every fourth round the next start is the same apply again, which settles, then upgrades.
        let again = round % 4 == 3;
        let o = if again { apply(&b, &c) } else { bin(&[&"apply", &"--recover", &"--db", &c.db]) };
        assert_eq!(o.status.code(), Some(0), "round {round} (killed at {step}): {}", stderr(&o));
        if !matches!(step.as_str(), "not started" | "done") {
            assert!(stderr(&o).contains("Found an interrupted upgrade"), "round {round}: {}", stderr(&o));
        }
        if again {
            assert_eq!(fingerprint(&c.db), new_fp, "round {round}");
            assert_eq!(tree(&c.code), new_tree, "round {round}");
        } else {
            assert_eq!(fingerprint(&c.db), fp, "round {round}: recovery never changes the database");
        }
        let now = tree(&c.code);
        let side = if again {
            if fp == new_fp {
                "new"
            } else {
                "old"
            }
        } else if fp == new_fp {
            assert_eq!(now, new_tree, "round {round} (killed at {step}): new database needs the new program");
            assert_eq!(tree(&beside(&c.code, ".pre-upgrade")), old_tree, "round {round}");
            "new"
        } else {
            assert_eq!(now, old_tree, "round {round} (killed at {step}): old database needs the old program");
            "old"
        };
        assert!(!beside(&c.code, ".rehearse-new").exists(), "round {round}: the unpacked code must be cleaned");
        assert!(
            !c.db.with_file_name(".app.db.rehearse-upgrade").exists(),
            "round {round}: the working copy must be cleaned"
        );
        *seen.entry(format!("{side} (killed at {step})")).or_insert(0) += 1;
    }
    eprintln!("kill -9 outcomes over {rounds} rounds (full apply {full} us): {seen:?}");
}
