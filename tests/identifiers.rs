//! Hostile identifiers survive introspection, probes, scripts and reports on every engine:
//! reserved words, both quote characters, backticks, semicolons, spaces, unicode, and the longest
//! names each engine allows (63 bytes in PostgreSQL, 64 characters in MySQL). A rename among them
//! must still carry data, and a probe must still count through them.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rehearse");

/// The server URL for an engine, or None (a loud skip) when it is not running; under CI=true a
/// missing server is a failure.
fn server(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{var} is not set: start the servers with: eval \"$(scripts/services.sh up)\"")
        }
        _ => {
            eprintln!("SKIPPED: {var} is not set; start the servers with: eval \"$(scripts/services.sh up)\"");
            None
        }
    }
}

fn git_repo(dir: &Path, schema: &str) {
    let repo = dir.join("repo");
    std::fs::create_dir_all(repo.join("db")).unwrap();
    std::fs::write(repo.join("db/schema.sql"), schema).unwrap();
    std::fs::write(repo.join("db/hints.yaml"), "defaults: { \"we\\\"ird; tab.Ünïcode nöt null\": \"'n/a'\" }\n")
        .unwrap();
    for args in [
        vec!["init", "-q", "-b", "main"],
        vec!["add", "-A"],
        vec!["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "v2"],
        vec!["tag", "v2"],
    ] {
        assert!(Command::new("git").arg("-C").arg(&repo).args(&args).status().unwrap().success());
    }
}

fn rehearse(dir: &Path, url: &str) -> serde_json::Value {
    let cfg = dir.join("upgrade.yaml");
    std::fs::write(
        &cfg,
        format!(
            "live: {{ url: \"{url}\" }}\napp: {{ repo: repo, revision: v2 }}\nschema: {{ sql: db/schema.sql }}\nhints: db/hints.yaml\nworkdir: work\n"
        ),
    )
    .unwrap();
    let out = Command::new(BIN).args(["run", "--format", "json", "--config"]).arg(&cfg).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)))
}

fn check(report: &serde_json::Value, long_col: &str) {
    assert_eq!(report["rehearsal"]["status"], "passed", "{report:#}");
    let findings = report["findings"].as_array().unwrap();
    let renamed = findings.iter().find(|f| f["kind"] == "column_renamed").expect("a rename among odd names");
    assert_eq!(renamed["column"], "new \"select\"", "{report:#}");
    let added = findings
        .iter()
        .find(|f| f["kind"] == "column_added" && f["column"] == "Ünïcode nöt null")
        .expect("the NOT NULL add");
    assert_eq!(added["evidence"]["rows"], 2);
    let unique = findings.iter().find(|f| f["kind"] == "unique_added").expect("unique on the long column");
    assert_eq!(unique["evidence"]["duplicate_groups"], 0, "{unique:#}");
    assert!(
        unique["message"].as_str().unwrap().contains(long_col),
        "the longest name appears in the finding: {unique:#}"
    );
}

const SQLITE_LIVE: &str = r#"CREATE TABLE "we""ird; tab" ("id" INTEGER PRIMARY KEY, "select" VARCHAR(20), "a`b c" INTEGER, "LONGCOL" TEXT);
INSERT INTO "we""ird; tab" VALUES (1, 'x', 1, 'p'), (2, 'y''s', 2, 'q');"#;

#[test]
fn odd_identifiers_on_sqlite() {
    let long = "c".repeat(100);
    let d = tempfile::tempdir().unwrap();
    let live = d.path().join("live.db");
    rusqlite::Connection::open(&live).unwrap().execute_batch(&SQLITE_LIVE.replace("LONGCOL", &long)).unwrap();
    let target = format!(
        r#"CREATE TABLE "we""ird; tab" ("id" INTEGER PRIMARY KEY, "new ""select""" VARCHAR(20), "a`b c" INTEGER, "{long}" TEXT UNIQUE, "Ünïcode nöt null" VARCHAR(8) NOT NULL);"#
    );
    git_repo(d.path(), &target);
    let before = std::fs::read(&live).unwrap();
    let report = rehearse(d.path(), "sqlite:live.db");
    check(&report, &long);
    assert_eq!(std::fs::read(&live).unwrap(), before, "live must be byte-for-byte unchanged");
    let copy = rusqlite::Connection::open(d.path().join("work/liveupgradetest.db")).unwrap();
    let v: String =
        copy.query_row(r#"SELECT "new ""select""" FROM "we""ird; tab" WHERE id = 2"#, [], |r| r.get(0)).unwrap();
    assert_eq!(v, "y's");
}

fn mysql(url_db: &str, sql: &str) {
    let (host, port) = ("127.0.0.1", std::env::var("MY_PORT").unwrap_or_else(|_| "53306".into()));
    let out = Command::new("mariadb")
        .args(["--no-defaults", "-h", host, "-P", &port, "-u", "root", "--default-character-set=utf8mb4"])
        .args(if url_db.is_empty() { vec![] } else { vec![url_db] })
        .args(["-e", sql])
        .output()
        .unwrap();
    assert!(out.status.success(), "mariadb: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn odd_identifiers_on_mysql() {
    let Some(_) = server("REHEARSE_TEST_MYSQL_URL") else { return };
    let port = std::env::var("MY_PORT").unwrap_or_else(|_| "53306".into());
    let db = format!("idents_{}", std::process::id());
    let long = "c".repeat(64);
    mysql("", &format!("DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db} CHARACTER SET utf8mb4"));
    mysql(
        &db,
        &format!(
            "CREATE TABLE `we\"ird; tab` (`id` INTEGER PRIMARY KEY, `select` VARCHAR(20), `a``b c` INTEGER, `{long}` VARCHAR(50));
             INSERT INTO `we\"ird; tab` VALUES (1, 'x', 1, 'p'), (2, 'y''s', 2, 'q');"
        ),
    );
    let d = tempfile::tempdir().unwrap();
    git_repo(
        d.path(),
        &format!(
            "CREATE TABLE `we\"ird; tab` (`id` INTEGER PRIMARY KEY, `new \"select\"` VARCHAR(20), `a``b c` INTEGER, `{long}` VARCHAR(50) UNIQUE, `Ünïcode nöt null` VARCHAR(8) NOT NULL);"
        ),
    );
    let report = rehearse(d.path(), &format!("mysql://root@127.0.0.1:{port}/{db}"));
    check(&report, &long);
    mysql("", &format!("DROP DATABASE IF EXISTS {db}; DROP DATABASE IF EXISTS {db}upgradetest"));
}

fn psql(db: &str, sql: &str) -> String {
    let port = std::env::var("PG_PORT").unwrap_or_else(|_| "55432".into());
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "postgres",
            "-d",
            db,
        ])
        .args(["-c", sql])
        .output()
        .unwrap();
    assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn odd_identifiers_on_postgres() {
    let Some(_) = server("REHEARSE_TEST_PG_URL") else { return };
    let port = std::env::var("PG_PORT").unwrap_or_else(|_| "55432".into());
    // A database name that needs quoting too, and the longest column name PostgreSQL keeps.
    let db = format!("Idents {}", std::process::id());
    let long = "c".repeat(63);
    let quoted_db = format!("\"{db}\"");
    for name in [format!("\"{db}upgradetest\""), quoted_db.clone()] {
        psql("postgres", &format!("DROP DATABASE IF EXISTS {name}"));
    }
    psql("postgres", &format!("CREATE DATABASE {quoted_db}"));
    psql(
        &db,
        &format!(
            r#"CREATE TABLE "we""ird; tab" ("id" INTEGER PRIMARY KEY, "select" VARCHAR(20), "a`b c" INTEGER, "{long}" VARCHAR(50));
               INSERT INTO "we""ird; tab" VALUES (1, 'x', 1, 'p'), (2, 'y''s', 2, 'q');"#
        ),
    );
    let d = tempfile::tempdir().unwrap();
    git_repo(
        d.path(),
        &format!(
            r#"CREATE TABLE "we""ird; tab" ("id" INTEGER PRIMARY KEY, "new ""select""" VARCHAR(20), "a`b c" INTEGER, "{long}" VARCHAR(50) UNIQUE, "Ünïcode nöt null" VARCHAR(8) NOT NULL);"#
        ),
    );
    let url_db = db.replace(' ', "%20");
    let report = rehearse(d.path(), &format!("postgres://postgres@127.0.0.1:{port}/{url_db}"));
    check(&report, &long);
    let copy = format!("{db}upgradetest");
    assert_eq!(psql(&copy, r#"SELECT "new ""select""" FROM "we""ird; tab" WHERE id = 2"#), "y's");
    for name in [format!("\"{copy}\""), quoted_db] {
        psql("postgres", &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    }
}
