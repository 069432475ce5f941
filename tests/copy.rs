//! `rehearse copy` through the real binary on real servers: SQLite->PostgreSQL (identity restarts
//! after the largest id), PostgreSQL->MySQL, MySQL->SQLite, PostgreSQL->dir->PostgreSQL, and
//! same-engine copies that `rehearse diff` finds equal to their source; values are read back
//! (NULLs, unicode, quotes, backslashes, decimals, timestamps, binary), not only counted. Then the
//! refusals: a target table holding rows, a copy onto itself, a bad URL. A copy that fails
//! half-way drops the tables it created and only those (PostgreSQL and SQLite); a value without a
//! plain binary form still loads (COPY's text format); progress shows on a terminal only.
//!
//! Needs REHEARSE_TEST_PG_URL and REHEARSE_TEST_MYSQL_URL; databases are named copyt_* and
//! dropped afterwards.

mod common;

use common::db::{server_for, sqlite_query, Engine, Server};
use common::{rehearse, Output, Temp};

/// A database made for one test, dropped when the test ends.
struct Db {
    server: Server,
    name: String,
}

impl Db {
    fn new(server: &Server) -> Db {
        let name = common::db::fresh_name().replacen("rh_", "copyt_", 1);
        server.create_database(&name).expect("create database");
        Db { server: server.clone(), name }
    }

    fn url(&self) -> String {
        self.server.url_of(&self.name)
    }

    fn exec(&self, sql: &str) {
        self.server.execute(Some(&self.name), sql).unwrap_or_else(|e| panic!("{e}"));
    }

    fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        self.server.query(&self.name, sql).unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = self.server.drop_database(&self.name);
    }
}

fn copy(args: &[&str], cwd: &Temp) -> Output {
    let mut all = vec!["copy"];
    all.extend_from_slice(args);
    rehearse(all, cwd.path())
}

fn assert_verified(out: &Output, tables: &[&str]) {
    assert_eq!(out.code, Some(0), "{}", out.describe());
    for t in tables {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("{t} ")))
            .unwrap_or_else(|| panic!("{}", out.describe()));
        assert!(line.trim_end().ends_with("| yes"), "{t} not verified: {}", out.describe());
    }
}

fn row(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| s.to_string()).collect()
}

const NAME: &str = "O'Brien \"quoted\" \\ é✓ 日本";

fn sqlite_source(dir: &Temp) -> String {
    let path = dir.path().join("src.db");
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "CREATE TABLE org(id INTEGER PRIMARY KEY AUTOINCREMENT, name varchar(40) NOT NULL UNIQUE, \
           price numeric(10,2), at datetime, ok boolean DEFAULT 1, data blob, meta text);
         CREATE INDEX org_at ON org(at);
         CREATE TABLE vol(id integer PRIMARY KEY, org_id integer REFERENCES org(id), note text);",
    )
    .unwrap();
    c.execute(
        "INSERT INTO org(id, name, price, at, ok, data, meta) VALUES (1, ?1, 12.50, '2024-01-02 03:04:05', 1, x'00ff10', '{\"a\": 1}')",
        [NAME],
    )
    .unwrap();
    c.execute_batch(
        "INSERT INTO org(id, name, price, at, ok, data, meta) VALUES (2, '', NULL, NULL, 0, NULL, NULL);
         INSERT INTO org(id, name, price, at, ok) VALUES (7, 'seven', 0.1, '2023-12-31 23:59:59.25', 1);
         INSERT INTO vol VALUES (1, 1, 'x'), (2, NULL, NULL), (3, 7, 'line one\nline two');",
    )
    .unwrap();
    format!("sqlite://{}", path.display())
}

#[test]
fn sqlite_to_postgres_keeps_values_and_restarts_the_identity_after_the_largest_id() {
    let Some(pg) = server_for(Engine::Postgres) else { return };
    let dir = Temp::new("copy-sqlite-pg");
    let src = sqlite_source(&dir);
    let db = Db::new(&pg);
    let out = copy(&["--from", &src, "--to", &db.url(), "--batch", "2", "--json-columns", "auto"], &dir);
    assert_verified(&out, &["org", "vol"]);
    // Text holding only JSON documents became jsonb; text holding words did not.
    assert_eq!(
        db.rows("SELECT column_name, data_type FROM information_schema.columns WHERE table_name IN ('org', 'vol') AND data_type IN ('jsonb', 'text') ORDER BY 1"),
        vec![row(&["meta", "jsonb"]), row(&["note", "text"])]
    );
    assert!(out.stdout.contains("org.meta: text holding JSON became jsonb"), "{}", out.stdout);
    assert_eq!(
        db.rows("SELECT id, name, price, at, ok, encode(data, 'hex'), meta FROM org ORDER BY id"),
        vec![
            row(&["1", NAME, "12.50", "2024-01-02 03:04:05", "t", "00ff10", "{\"a\": 1}"]),
            row(&["2", "", "NULL", "NULL", "f", "NULL", "NULL"]),
            row(&["7", "seven", "0.10", "2023-12-31 23:59:59.25", "t", "NULL", "NULL"]),
        ]
    );
    assert_eq!(db.rows("SELECT note FROM vol WHERE id = 3"), vec![row(&["line one\nline two"])]);
    // The identity restarts after the largest copied id, and the defaults came along.
    db.exec("INSERT INTO org(name) VALUES ('new')");
    assert_eq!(db.rows("SELECT id, ok FROM org WHERE name = 'new'"), vec![row(&["8", "t"])]);
    // Keys came after the rows: the unique and the foreign key hold.
    assert!(pg.execute(Some(&db.name), "INSERT INTO org(name) VALUES ('seven')").is_err());
    assert!(pg.execute(Some(&db.name), "INSERT INTO vol VALUES (9, 99, 'orphan')").is_err());
}

fn pg_source(pg: &Server) -> Db {
    let db = Db::new(pg);
    db.exec(&format!(
        "CREATE TABLE org(id serial PRIMARY KEY, name varchar(60) NOT NULL UNIQUE, price numeric(12,3), \
           at timestamptz, local timestamp(3), ok boolean NOT NULL DEFAULT true, data bytea, doc jsonb, \
           code integer GENERATED ALWAYS AS IDENTITY, CONSTRAINT price_positive CHECK (price >= 0));
         CREATE INDEX org_local ON org(local) WHERE ok;
         CREATE TABLE vol(id integer PRIMARY KEY, org_id integer REFERENCES org(id) ON DELETE CASCADE, \
           note text DEFAULT 'none', added timestamptz DEFAULT now());
         INSERT INTO org(name, price, at, local, ok, data, doc) VALUES \
           ({}, 1234.500, '2024-05-06 07:08:09.5+02', '2024-05-06 07:08:09.123', true, '\\x00ff'::bytea, '{{\"b\": [true, null], \"a\": 1}}'), \
           ('empty', NULL, NULL, NULL, false, NULL, NULL), \
           ('tiny', 0.001, '1999-12-31 23:59:59+00', '2000-01-01 00:00:00', true, ''::bytea, '\"s\"');
         INSERT INTO vol(id, org_id, note) VALUES (1, 1, 'a'), (2, NULL, NULL), (3, 3, 'tab\there');
         CREATE TABLE code(code varchar(10) PRIMARY KEY, label text);
         INSERT INTO code SELECT 'c' || lpad(i::text, 3, '0'), 'label ' || i FROM generate_series(1, 25) i;
         CREATE TABLE nokey(a integer, b text);
         INSERT INTO nokey SELECT i % 3, 'x' FROM generate_series(1, 25) i;",
        "'O''Brien \"quoted\" \\ é✓ 日本'"
    ));
    db
}

#[test]
fn postgres_to_mysql_keeps_values_in_utc_and_restarts_auto_increment() {
    let (Some(pg), Some(my)) = (server_for(Engine::Postgres), server_for(Engine::Mysql)) else { return };
    let dir = Temp::new("copy-pg-my");
    let src = pg_source(&pg);
    let dst = Db::new(&my);
    // Small pages: page boundaries fall inside the tables of more than 4 rows.
    let out = copy(&["--from", &src.url(), "--to", &dst.url(), "--batch", "4"], &dir);
    assert_verified(&out, &["org", "vol", "code", "nokey"]);
    assert_eq!(
        dst.rows("SELECT count(*), count(DISTINCT code), max(code) FROM code"),
        vec![row(&["25", "25", "c025"])]
    );
    assert_eq!(
        dst.rows("SELECT a, count(*) FROM nokey GROUP BY a ORDER BY a"),
        vec![row(&["0", "8"]), row(&["1", "9"]), row(&["2", "8"])]
    );
    assert!(
        out.stdout.contains("timestamptz becomes datetime"),
        "the loss of the time zone is reported: {}",
        out.stdout
    );
    assert!(out.stdout.contains("check constraint"), "{}", out.stdout);
    assert_eq!(
        dst.rows("SELECT id, name, price, at, local, ok, hex(data), doc FROM org ORDER BY id"),
        vec![
            row(&[
                "1",
                NAME,
                "1234.500",
                "2024-05-06 05:08:09.500000",
                "2024-05-06 07:08:09.123",
                "1",
                "00FF",
                "{\"a\": 1, \"b\": [true, null]}"
            ]),
            row(&["2", "empty", "NULL", "NULL", "NULL", "0", "NULL", "NULL"]),
            row(&["3", "tiny", "0.001", "1999-12-31 23:59:59.000000", "2000-01-01 00:00:00.000", "1", "", "\"s\""]),
        ]
    );
    assert_eq!(
        dst.rows("SELECT replace(note, char(9), '<TAB>') FROM vol ORDER BY id"),
        vec![row(&["a"]), row(&["NULL"]), row(&["tab<TAB>here"])]
    );
    dst.exec("INSERT INTO org(name, code) VALUES ('new', 9)");
    assert_eq!(dst.rows("SELECT id FROM org WHERE name = 'new'"), vec![row(&["4"])]);
}

fn mysql_source(my: &Server) -> Db {
    let src = Db::new(my);
    src.exec(&format!(
        "CREATE TABLE org(id int AUTO_INCREMENT PRIMARY KEY, name varchar(60) NOT NULL, price decimal(10,2), \
           at datetime(6), ok tinyint(1) DEFAULT 1, data varbinary(16), doc json, kind enum('a','b'), big bigint unsigned, \
           UNIQUE KEY org_name (name), KEY org_at (at)) CHARACTER SET utf8mb4;
         INSERT INTO org(id, name, price, at, ok, data, doc, kind, big) VALUES \
           (1, {}, 12.50, '2024-01-02 03:04:05.250000', 1, x'00ff', '{{\"a\": 1}}', 'b', 18446744073709551615), \
           (5, 'nulls', NULL, NULL, NULL, NULL, NULL, NULL, NULL);",
        "'O''Brien \"quoted\" \\\\ é✓ 日本'"
    ));
    src
}

#[test]
fn mysql_to_sqlite_keeps_values() {
    let Some(my) = server_for(Engine::Mysql) else { return };
    let dir = Temp::new("copy-my-sqlite");
    let src = mysql_source(&my);
    let target = dir.path().join("out.db");
    let out = copy(&["--from", &src.url(), "--to", &format!("sqlite://{}", target.display())], &dir);
    assert_verified(&out, &["org"]);
    assert!(out.stdout.contains("enum('a','b') becomes text"), "{}", out.stdout);
    assert_eq!(
        sqlite_query(&target, "SELECT id, name, price, at, ok, data, doc, kind, big FROM org ORDER BY id").unwrap(),
        vec![
            row(&[
                "1",
                NAME,
                "12.5",
                "2024-01-02 03:04:05.250000",
                "1",
                "x'00ff'",
                "{\"a\": 1}",
                "b",
                "18446744073709551615"
            ]),
            row(&["5", "nulls", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL"]),
        ]
    );
    // AUTOINCREMENT follows the copied ids by itself.
    let c = rusqlite::Connection::open(&target).unwrap();
    c.execute("INSERT INTO org(name) VALUES ('new')", []).unwrap();
    assert_eq!(c.query_row("SELECT id FROM org WHERE name = 'new'", [], |r| r.get::<_, i64>(0)).unwrap(), 6);
}

#[test]
fn mysql_to_postgres_keeps_values_and_widens_unsigned() {
    let (Some(pg), Some(my)) = (server_for(Engine::Postgres), server_for(Engine::Mysql)) else { return };
    let dir = Temp::new("copy-my-pg");
    let src = mysql_source(&my);
    let dst = Db::new(&pg);
    let out = copy(&["--from", &src.url(), "--to", &dst.url()], &dir);
    assert_verified(&out, &["org"]);
    assert_eq!(
        dst.rows("SELECT id, name, price, at, ok, encode(data, 'hex'), doc, kind, big, pg_typeof(big)::text FROM org ORDER BY id"),
        vec![
            row(&["1", NAME, "12.50", "2024-01-02 03:04:05.25", "t", "00ff", "{\"a\": 1}", "b", "18446744073709551615", "numeric"]),
            row(&["5", "nulls", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "numeric"]),
        ]
    );
    dst.exec("INSERT INTO org(name) VALUES ('new')");
    assert_eq!(dst.rows("SELECT id, ok FROM org WHERE name = 'new'"), vec![row(&["6", "t"])]);
}

fn assert_no_diff(a: &str, b: &str, cwd: &Temp) {
    let out = rehearse(["diff", a, b], cwd.path());
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert!(out.stdout.contains("no changes"), "{}", out.describe());
}

#[test]
fn postgres_through_a_folder_back_to_postgres_is_equal_to_the_source() {
    let Some(pg) = server_for(Engine::Postgres) else { return };
    let dir = Temp::new("copy-pg-dir");
    let src = pg_source(&pg);
    let folder = dir.path().join("extract");
    let to_dir = format!("dir:{}", folder.display());
    let out = copy(&["--from", &src.url(), "--to", &to_dir, "--batch", "7"], &dir);
    assert_verified(&out, &["org", "vol", "code", "nokey"]);
    assert!(folder.join("schema.yaml").exists() && folder.join("org.jsonl").exists());
    let dst = Db::new(&pg);
    let out = copy(&["--from", &to_dir, "--to", &dst.url(), "--batch", "3"], &dir);
    assert_verified(&out, &["org", "vol", "code", "nokey"]);
    assert_no_diff(&src.url(), &dst.url(), &dir);
    let q = "SELECT id, name, price, at, local, ok, data, doc, code FROM org ORDER BY id";
    assert_eq!(src.rows(q), dst.rows(q));
    assert_eq!(src.rows("SELECT * FROM vol ORDER BY id"), dst.rows("SELECT * FROM vol ORDER BY id"));
    // Serial and identity both continue after the copied values.
    dst.exec("INSERT INTO org(name) VALUES ('new')");
    assert_eq!(dst.rows("SELECT id, code FROM org WHERE name = 'new'"), vec![row(&["4", "4"])]);
}

#[test]
fn same_engine_copies_are_equal_to_their_source_for_rehearse_diff() {
    let dir = Temp::new("copy-same");
    let src = sqlite_source(&dir);
    let dst = format!("sqlite://{}", dir.path().join("same.db").display());
    let out = copy(&["--from", &src, "--to", &dst], &dir);
    assert_verified(&out, &["org", "vol"]);
    assert_no_diff(&src, &dst, &dir);
    assert_eq!(
        sqlite_query(&dir.path().join("same.db"), "SELECT * FROM org ORDER BY id").unwrap(),
        sqlite_query(&dir.path().join("src.db"), "SELECT * FROM org ORDER BY id").unwrap()
    );

    let Some(pg) = server_for(Engine::Postgres) else { return };
    let a = pg_source(&pg);
    let b = Db::new(&pg);
    let out = copy(&["--from", &a.url(), "--to", &b.url()], &dir);
    assert_verified(&out, &["org", "vol"]);
    assert_no_diff(&a.url(), &b.url(), &dir);
    assert_eq!(a.rows("SELECT * FROM org ORDER BY id"), b.rows("SELECT * FROM org ORDER BY id"));
}

#[test]
fn a_target_table_holding_rows_is_refused_unless_truncate() {
    let dir = Temp::new("copy-refuse");
    let src = sqlite_source(&dir);
    let dst = format!("sqlite://{}", dir.path().join("t.db").display());
    assert_verified(&copy(&["--from", &src, "--to", &dst], &dir), &["org", "vol"]);
    let again = copy(&["--from", &src, "--to", &dst], &dir);
    assert_eq!(again.code, Some(5), "{}", again.describe());
    assert!(again.stderr.contains("--truncate") && again.stderr.trim().lines().count() == 1, "{}", again.describe());
    let forced = copy(&["--from", &src, "--to", &dst, "--truncate", "--tables", "org"], &dir);
    assert_verified(&forced, &["org"]);
    assert!(!forced.stdout.contains("vol "), "only the named table: {}", forced.stdout);
}

#[test]
fn a_copy_onto_itself_is_refused_and_bad_urls_are_usage_errors() {
    let dir = Temp::new("copy-self");
    let src = sqlite_source(&dir);
    let same = format!("sqlite://{}/./src.db", dir.path().display());
    let out = copy(&["--from", &src, "--to", &same], &dir);
    assert_eq!(out.code, Some(5), "{}", out.describe());
    assert!(out.stderr.contains("same database"), "{}", out.describe());
    let out = copy(&["--from", "nonsense", "--to", &src], &dir);
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.describe());
    let out = copy(&["--from", &src, "--to", "ftp://x/y"], &dir);
    assert_eq!(out.code, Some(2), "{}", out.describe());
    let elsewhere = dir.path().join("never.db");
    let out =
        copy(&["--from", &src, "--to", &format!("sqlite://{}", elsewhere.display()), "--json-columns", "auto"], &dir);
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert!(!elsewhere.exists(), "a usage error creates nothing");
    if let Some(pg) = server_for(Engine::Postgres) {
        let db = Db::new(&pg);
        let out = copy(&["--from", &db.url(), "--to", &db.url()], &dir);
        assert_eq!(out.code, Some(5), "{}", out.describe());
        // The same server spelled another way (localhost for 127.0.0.1) is still the same database.
        if db.url().contains("@127.0.0.1") {
            let other = db.url().replacen("@127.0.0.1", "@localhost", 1);
            let out = copy(&["--from", &db.url(), "--to", &other], &dir);
            assert_eq!(out.code, Some(5), "{}", out.describe());
            assert!(out.stderr.contains("same database"), "{}", out.describe());
        }
    }
}

/// Regression guard for the checksum: a value the target rounds on the way in (MySQL keeps two
/// decimals of 1.234 without an error) must fail verification, not pass as a count match.
#[test]
fn a_value_the_target_rounds_fails_verification_with_exit_4() {
    let Some(my) = server_for(Engine::Mysql) else { return };
    let dir = Temp::new("copy-rounded");
    let path = dir.path().join("p.db");
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "CREATE TABLE p(id integer PRIMARY KEY, amount numeric(10,2)); INSERT INTO p VALUES (1, 1.5), (2, 1.234);",
    )
    .unwrap();
    let dst = Db::new(&my);
    let out = copy(&["--from", &format!("sqlite://{}", path.display()), "--to", &dst.url()], &dir);
    assert_eq!(out.code, Some(4), "{}", out.describe());
    assert!(out.stdout.contains("NO: values differ"), "{}", out.describe());
}

#[test]
fn truncate_empties_referencing_tables_first_on_postgres() {
    let Some(pg) = server_for(Engine::Postgres) else { return };
    let dir = Temp::new("copy-truncate-pg");
    let src = sqlite_source(&dir);
    let db = Db::new(&pg);
    assert_verified(&copy(&["--from", &src, "--to", &db.url()], &dir), &["org", "vol"]);
    let refused = copy(&["--from", &src, "--to", &db.url()], &dir);
    assert_eq!(refused.code, Some(5), "{}", refused.describe());
    assert_verified(&copy(&["--from", &src, "--to", &db.url(), "--truncate"], &dir), &["org", "vol"]);
    assert_eq!(db.rows("SELECT count(*) FROM vol"), vec![row(&["3"])]);
}

/// The tables of a PostgreSQL database, by name.
fn pg_tables(db: &Db) -> Vec<Vec<String>> {
    db.rows("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
}

#[test]
fn a_copy_that_fails_half_way_drops_the_tables_it_created_on_postgres() {
    let Some(pg) = server_for(Engine::Postgres) else { return };
    let dir = Temp::new("copy-fail-pg");
    let path = dir.path().join("bad.db");
    let c = rusqlite::Connection::open(&path).unwrap();
    // `a` loads; `z` holds a word in an integer column, which PostgreSQL refuses.
    c.execute_batch(
        "CREATE TABLE a(id integer PRIMARY KEY, n integer); INSERT INTO a VALUES (1, 1), (2, 2);
         CREATE TABLE z(id integer PRIMARY KEY, n integer); INSERT INTO z VALUES (1, 5), (2, 'abc');",
    )
    .unwrap();
    let db = Db::new(&pg);
    db.exec(
        "CREATE TABLE keep(id integer PRIMARY KEY, note text); INSERT INTO keep VALUES (1, 'mine'), (2, 'also mine');",
    );
    let out = copy(&["--from", &format!("sqlite://{}", path.display()), "--to", &db.url()], &dir);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(out.stderr.contains("abc"), "the refused value is named: {}", out.describe());
    assert!(out.stderr.contains("created were dropped (a, z)"), "the error says what was undone: {}", out.describe());
    assert_eq!(pg_tables(&db), vec![row(&["keep"])], "only the table that was there before is left");
    assert_eq!(db.rows("SELECT id, note FROM keep ORDER BY id"), vec![row(&["1", "mine"]), row(&["2", "also mine"])]);
}

#[test]
fn a_copy_that_fails_half_way_drops_the_tables_it_created_in_sqlite() {
    let dir = Temp::new("copy-fail-sqlite");
    let src = sqlite_source(&dir);
    // The target's own `org` refuses a price the source holds; `vol` would be new.
    let target = dir.path().join("target.db");
    let c = rusqlite::Connection::open(&target).unwrap();
    c.execute_batch(
        "CREATE TABLE org(id INTEGER PRIMARY KEY, name varchar(40), price numeric(10,2) CHECK (price < 10), \
           at datetime, ok boolean, data blob, meta text);
         CREATE TABLE keep(id integer PRIMARY KEY, note text); INSERT INTO keep VALUES (1, 'mine');",
    )
    .unwrap();
    drop(c);
    let out = copy(&["--from", &src, "--to", &format!("sqlite://{}", target.display())], &dir);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(out.stderr.contains("CHECK constraint failed"), "{}", out.describe());
    assert!(out.stderr.contains("created were dropped (vol)"), "{}", out.describe());
    assert_eq!(
        sqlite_query(&target, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").unwrap(),
        vec![row(&["keep"]), row(&["org"])]
    );
    assert_eq!(sqlite_query(&target, "SELECT count(*) FROM org").unwrap(), vec![row(&["0"])], "its load rolled back");
    assert_eq!(sqlite_query(&target, "SELECT * FROM keep").unwrap(), vec![row(&["1", "mine"])]);
}

/// COPY's binary format takes only plain text for each type; `inf` is PostgreSQL's to read, so the
/// table loads again in the text format, and is still verified.
#[test]
fn a_value_without_a_plain_binary_form_loads_in_the_text_format() {
    let Some(pg) = server_for(Engine::Postgres) else { return };
    let dir = Temp::new("copy-text-fallback");
    let path = dir.path().join("f.db");
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "CREATE TABLE m(id integer PRIMARY KEY, x real); INSERT INTO m VALUES (1, 0.5), (2, 9e999), (3, NULL);",
    )
    .unwrap();
    let db = Db::new(&pg);
    let out = copy(&["--from", &format!("sqlite://{}", path.display()), "--to", &db.url(), "--batch", "1"], &dir);
    assert_verified(&out, &["m"]);
    assert_eq!(db.rows("SELECT x FROM m ORDER BY id"), vec![row(&["0.5"]), row(&["Infinity"]), row(&["NULL"])]);
}

#[test]
fn progress_shows_on_a_terminal_and_never_when_stderr_is_redirected() {
    let dir = Temp::new("copy-progress");
    let src = sqlite_source(&dir);
    let quiet = copy(&["--from", &src, "--to", &format!("sqlite://{}", dir.path().join("q.db").display())], &dir);
    assert_verified(&quiet, &["org", "vol"]);
    assert_eq!(quiet.stderr, "", "no progress without a terminal");

    if std::process::Command::new("script").arg("--version").output().is_err() {
        panic!("util-linux `script` is needed to give the copy a terminal (apt-get install bsdutils)");
    }
    let command = format!(
        "{} copy --from {src} --to sqlite://{}",
        env!("CARGO_BIN_EXE_rehearse"),
        dir.path().join("t.db").display()
    );
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &command, "/dev/null"]).current_dir(dir.path());
    let out = common::run_command(cmd, None, std::time::Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "{}", out.describe());
    // On the terminal: rows of the source's count, the rate, the time left; then the total.
    assert!(out.stdout.contains("org: 3/3 rows (100%)"), "{}", out.describe());
    assert!(out.stdout.contains("rows/s") && out.stdout.contains("left"), "{}", out.describe());
    assert!(out.stdout.contains("vol: 3 rows in "), "{}", out.describe());
}
