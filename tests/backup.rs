//! `rehearse backup --config F --sqlite FILE` through the real binary: live (SQLite here, and
//! PostgreSQL and MariaDB when their servers are up) into a new SQLite file that `rehearse diff`
//! finds equal to live (same engine) and that holds every row; the file is private, never
//! replaces an existing one, and nothing is left behind when live cannot be read.

mod common;

use common::db::{server_for, sqlite_query, Engine, LiveDb};
use common::{rehearse, Fixture, Temp};
use std::path::Path;

const LIVE: &str = "CREATE TABLE org(id INTEGER PRIMARY KEY, name varchar(40) NOT NULL UNIQUE, note text);
CREATE TABLE staff(id INTEGER PRIMARY KEY, org_id integer NOT NULL REFERENCES org(id), name text);
CREATE INDEX staff_org ON staff(org_id);
INSERT INTO org VALUES (1, 'O''Brien é✓', NULL), (2, 'two', 'x');
INSERT INTO staff VALUES (10, 1, 'a'), (11, 2, NULL), (12, 2, 'c');";

fn backup(config: &Path, file: &Path, cwd: &Path) -> common::Output {
    rehearse(["backup", "--config", &config.display().to_string(), "--sqlite", &file.display().to_string()], cwd)
}

/// Files in `dir` other than `keep`, to show nothing half-written is left behind.
fn leftovers(dir: &Path, keep: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}

#[test]
fn sqlite_live_is_backed_up_into_an_equal_private_file_never_over_an_existing_one() {
    let fx = Fixture::sqlite(LIVE, LIVE, None);
    let out = Temp::new("rehearse-backup-");
    let file = out.path().join("eden-backup.db");
    let before = fx.live.fingerprint().unwrap();
    let o = backup(&fx.config, &file, fx.dir());
    assert_eq!(o.code, Some(0), "{}", o.describe());
    assert!(o.stdout.contains("(2 tables, 5 rows, verified)"), "{}", o.describe());
    assert_eq!(fx.live.fingerprint().unwrap().changed_from(&before), None, "live must only be read");
    assert_eq!(common::mode(&file), 0o600, "a backup holds live's data: owner only");
    assert_eq!(leftovers(out.path(), &["eden-backup.db"]), Vec::<String>::new());
    let d = rehearse(["diff", &fx.live.url, &format!("sqlite://{}", file.display())], fx.dir());
    assert!(d.stdout.contains("no changes"), "{}", d.describe());
    let names = sqlite_query(&file, "SELECT name FROM org ORDER BY id").unwrap();
    assert_eq!(names, [vec!["O'Brien é✓".to_string()], vec!["two".to_string()]]);

    // A second backup to the same name is refused and the first stays as it was.
    let first = std::fs::read(&file).unwrap();
    let o = backup(&fx.config, &file, fx.dir());
    assert_eq!(o.code, Some(5), "{}", o.describe());
    assert!(o.stderr.contains("never overwrites"), "{}", o.describe());
    assert_eq!(std::fs::read(&file).unwrap(), first);
    assert_eq!(leftovers(out.path(), &["eden-backup.db"]), Vec::<String>::new());
}

#[test]
fn an_unreadable_live_leaves_no_file() {
    let fx = Fixture::sqlite(LIVE, LIVE, None);
    let mut cfg = fx.config_value();
    cfg["live"]["url"] = "postgres://nobody@127.0.0.1:9/none".into();
    fx.write_config(&cfg);
    let out = Temp::new("rehearse-backup-");
    let file = out.path().join("b.db");
    let o = backup(&fx.config, &file, fx.dir());
    assert_ne!(o.code, Some(0), "{}", o.describe());
    assert_eq!(o.stderr.trim().lines().count(), 1, "one line: {}", o.describe());
    assert_eq!(leftovers(out.path(), &[]), Vec::<String>::new(), "no file, no partial file");
}

/// Server engines: the backup holds every row and value, and live is unchanged.
#[test]
fn postgres_and_mariadb_live_are_backed_up_into_sqlite() {
    for engine in [Engine::Postgres, Engine::Mysql] {
        let Some(server) = server_for(engine) else { continue };
        let tmp = Temp::new("rehearse-backup-");
        let live = LiveDb::create(engine, Some(&server), tmp.path()).unwrap();
        live.load(
            "CREATE TABLE org(id integer PRIMARY KEY, name varchar(40) NOT NULL, price numeric(10,2));
             INSERT INTO org VALUES (1, 'O''Brien é✓', 12.50), (2, 'two', NULL);",
        )
        .unwrap();
        let before = live.fingerprint().unwrap();
        let config = tmp.path().join("upgrade.yaml");
        common::write_yaml(
            &config,
            &serde_json::json!({ "live": { "url": live.url }, "schema": { "sql": "schema.sql" }, "workdir": tmp.path().join("work") }),
        );
        std::fs::write(tmp.path().join("schema.sql"), "").unwrap();
        let file = tmp.path().join("b.db");
        let o = backup(&config, &file, tmp.path());
        assert_eq!(o.code, Some(0), "{}: {}", engine.name(), o.describe());
        assert_eq!(
            live.fingerprint().unwrap().changed_from(&before),
            None,
            "{}: live must only be read",
            engine.name()
        );
        let rows = sqlite_query(&file, "SELECT id, name, price FROM org ORDER BY id").unwrap();
        assert_eq!(rows[0], ["1", "O'Brien é✓", "12.5"].map(String::from).to_vec(), "{}", engine.name());
        assert_eq!(rows[1][2], "NULL", "{}", engine.name());
    }
}
