//! The MySQL/MariaDB engine against a real server (no mocks): introspection and normalization,
//! read-only live, clone into a marked test copy, refusal of a copy rehearse did not make,
//! credentials kept off the dump's command line, castable probes, scripts stopping at their
//! failing line, and restore after a failed script.
//!
//! Needs REHEARSE_TEST_MYSQL_URL (e.g. mysql://root@127.0.0.1:53306/mysql, a user that may create
//! databases and users). Each test uses its own databases and drops them afterwards.

use rehearse::engine::mysql::{Flavor, Mysql, Tools};
use rehearse::engine::{Access, Connection, Engine};
use rehearse::sqltext::{self, Statement};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The server URL, or None (with a loud note) when it is not configured; under CI a missing
/// server is a failure, not a skip.
fn server() -> Option<String> {
    match std::env::var("REHEARSE_TEST_MYSQL_URL") {
        Ok(u) if !u.trim().is_empty() => Some(u),
        _ => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("REHEARSE_TEST_MYSQL_URL is not set: start MariaDB with: eval \"$(scripts/services.sh up)\"");
            }
            eprintln!(
                "\n*** SKIPPED: REHEARSE_TEST_MYSQL_URL is not set; start MariaDB with: eval \"$(scripts/services.sh up mysql)\" ***\n"
            );
            None
        }
    }
}

/// `base` with another database (and optionally another user and password).
fn url_for(base: &str, db: &str) -> String {
    let mut u = url::Url::parse(base).unwrap();
    u.set_path(&format!("/{db}"));
    u.to_string()
}

fn url_as(base: &str, db: &str, user: &str, password: &str) -> String {
    let mut u = url::Url::parse(&url_for(base, db)).unwrap();
    u.set_username(user).unwrap();
    u.set_password(Some(password)).unwrap();
    u.to_string()
}

/// The databases of one test, dropped (with their markers) when it ends.
struct Scope {
    base: String,
    names: Vec<String>,
    users: Vec<String>,
}

impl Scope {
    fn new(base: &str) -> Scope {
        Scope { base: base.to_string(), names: vec![], users: vec![] }
    }

    /// A fresh live database `rt_<tag>_<pid>` with `ddl` in it.
    fn live(&mut self, tag: &str, ddl: &str) -> String {
        let name = format!("rt_{tag}_{}", std::process::id());
        for n in [name.clone(), format!("{name}upgradetest"), format!("{name}_rehearse_scratch")] {
            self.admin(&format!("DROP DATABASE IF EXISTS `{n}`"));
            self.names.push(n);
        }
        self.admin(&format!("CREATE DATABASE `{name}`"));
        if !ddl.is_empty() {
            self.conn(&name, Access::ReadWrite).execute_batch(ddl).unwrap();
        }
        name
    }

    fn engine(&self, db: &str, access: Access) -> Mysql {
        Mysql::from_url(&url_for(&self.base, db), access).unwrap()
    }

    fn conn(&self, db: &str, access: Access) -> Box<dyn Connection> {
        self.engine(db, access).connect().unwrap()
    }

    /// A statement on the server as the test's admin (query() runs any statement as it is).
    fn admin(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        self.conn("mysql", Access::ReadWrite).query(sql).unwrap_or_else(|e| panic!("{sql}: {e:#}"))
    }

    fn scalar(&self, db: &str, sql: &str) -> String {
        let rows = self.conn(db, Access::ReadOnly).query(sql).unwrap();
        rows[0][0].clone().unwrap_or_else(|| "NULL".into())
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let Ok(mut c) = Mysql::from_url(&url_for(&self.base, "mysql"), Access::ReadWrite).and_then(|e| e.connect())
        else {
            return;
        };
        for n in &self.names {
            let _ = c.query(&format!("DROP DATABASE IF EXISTS `{n}`"));
            let _ = c.query(&format!("DELETE FROM rehearse_meta.copies WHERE db_name = '{n}'"));
        }
        for u in &self.users {
            let _ = c.query(&format!("DROP USER IF EXISTS '{u}'@'127.0.0.1', '{u}'@'localhost'"));
        }
    }
}

/// `mariadb-dump --skip-dump-date --skip-comments` of a database, for byte comparisons.
fn dump_text(base: &str, db: &str) -> String {
    let u = url::Url::parse(base).unwrap();
    let tools = Tools::find(Flavor::MariaDb).unwrap();
    let mut cmd = Command::new(&tools.dump);
    cmd.arg("--no-defaults")
        .arg(format!("--host={}", u.host_str().unwrap_or("127.0.0.1")))
        .arg(format!("--port={}", u.port().unwrap_or(3306)))
        .arg(format!("--user={}", u.username()))
        .args([
            "--protocol=TCP",
            "--hex-blob",
            "--skip-dump-date",
            "--skip-comments",
            "--routines",
            "--triggers",
            "--events",
        ])
        .arg("--")
        .arg(db);
    if let Some(p) = u.password() {
        cmd.env("MYSQL_PWD", p);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "dump of {db}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn mode_of(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

const LIVE_DDL: &str = r#"
CREATE TABLE org (
  id int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  code char(2) NOT NULL,
  name varchar(64) NOT NULL DEFAULT 'it''s',
  active tinyint(1) NOT NULL DEFAULT 1,
  meta json,
  budget decimal(10,2) DEFAULT 1.50,
  ratio double,
  score float,
  kind enum('a','b') DEFAULT 'a',
  created timestamp NOT NULL DEFAULT current_timestamp(),
  big bigint(20) unsigned,
  notes text,
  legacy varchar(8) CHARACTER SET latin1,
  CONSTRAINT uq_org_code UNIQUE (code),
  KEY ix_org_name (name),
  CONSTRAINT chk_budget CHECK (budget >= 0)
);
CREATE TABLE member (
  id int NOT NULL,
  org_id int(11) NOT NULL,
  tag varbinary(4),
  PRIMARY KEY (id),
  CONSTRAINT fk_member_org FOREIGN KEY (org_id) REFERENCES org (id) ON DELETE CASCADE ON UPDATE RESTRICT
);
CREATE TABLE rehearse_history (id int);
INSERT INTO org (code, name, meta, budget, notes) VALUES ('EU', 'Europe 🌍', '{"a": 1}', 10.25, 'first'), ('US', 'States', NULL, NULL, NULL);
INSERT INTO member VALUES (1, 1, x'00ff10'), (2, 1, NULL), (3, 2, 'ab');
CREATE TRIGGER org_code_upper BEFORE INSERT ON org FOR EACH ROW SET NEW.code = UPPER(NEW.code);
"#;

#[test]
fn introspection_normalizes_mysql_types_and_reads_keys_back() {
    let Some(base) = server() else { return };
    let mut scope = Scope::new(&base);
    let db = scope.live("intro", LIVE_DDL);
    let s = scope.conn(&db, Access::ReadOnly).introspect().unwrap();
    assert_eq!(s.engine, "mysql");
    let names: Vec<&str> = s.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["member", "org"], "rehearse_history is left out");
    let org = s.table("org").unwrap();
    let ty = |c: &str| org.column(c).unwrap().data_type.clone();
    assert_eq!(ty("id"), "integer");
    assert!(org.column("id").unwrap().auto_increment);
    assert_eq!(ty("code"), "char(2)");
    assert_eq!(ty("name"), "varchar(64)");
    assert_eq!(ty("active"), "boolean");
    assert_eq!(ty("meta"), "json");
    assert_eq!(ty("budget"), "numeric(10,2)");
    assert_eq!(ty("ratio"), "double precision");
    assert_eq!(ty("score"), "real");
    assert_eq!(ty("kind"), "enum('a','b')");
    assert_eq!(ty("created"), "timestamp");
    assert_eq!(ty("big"), "bigint unsigned");
    assert_eq!(ty("notes"), "text");
    assert_eq!(ty("legacy"), "varchar(8) character set latin1 collate latin1_swedish_ci");
    let default = |c: &str| org.column(c).unwrap().default.clone();
    assert_eq!(default("name").as_deref(), Some("'it''s'"));
    assert_eq!(default("active").as_deref(), Some("1"));
    assert_eq!(default("budget").as_deref(), Some("1.50"));
    assert_eq!(default("created").as_deref(), Some("CURRENT_TIMESTAMP"));
    assert_eq!(default("notes"), None, "a NULL default is no default");
    assert!(!org.column("code").unwrap().nullable);
    assert!(org.column("notes").unwrap().nullable);

    assert_eq!(org.primary_key, ["id"]);
    assert_eq!(org.uniques.len(), 1);
    assert_eq!(org.uniques[0].name.as_deref(), Some("uq_org_code"));
    assert_eq!(org.uniques[0].columns, ["code"]);
    assert_eq!(org.indexes.len(), 1);
    assert_eq!(org.indexes[0].name, "ix_org_name");
    assert_eq!(org.indexes[0].columns, ["name"]);
    assert!(!org.indexes[0].unique);
    assert_eq!(org.checks.len(), 1, "the json_valid check of a JSON column is not reported: {:?}", org.checks);
    assert_eq!(org.checks[0].name.as_deref(), Some("chk_budget"));
    assert!(org.checks[0].expr.contains("budget"));

    assert_eq!(
        org.triggers,
        ["CREATE TRIGGER `org_code_upper` BEFORE INSERT ON `org` FOR EACH ROW SET NEW.code = UPPER(NEW.code)"]
    );

    let member = s.table("member").unwrap();
    assert_eq!(member.column("org_id").unwrap().data_type, "integer");
    assert_eq!(member.column("tag").unwrap().data_type, "varbinary(4)");
    assert_eq!(member.foreign_keys.len(), 1);
    let fk = &member.foreign_keys[0];
    assert_eq!(fk.name.as_deref(), Some("fk_member_org"));
    assert_eq!(
        (fk.columns.clone(), fk.ref_table.as_str(), fk.ref_columns.clone()),
        (vec!["org_id".to_string()], "org", vec!["id".to_string()])
    );
    assert_eq!(fk.on_delete.as_deref(), Some("CASCADE"));
    assert_eq!(fk.on_update, None, "RESTRICT is MySQL's default, like NO ACTION");

    // The same DDL in another database reads back identically: nothing spurious (charsets,
    // display widths) tells them apart.
    let twin = scope.live("intro2", LIVE_DDL);
    let s2 = scope.conn(&twin, Access::ReadOnly).introspect().unwrap();
    assert_eq!(s, s2);
    assert_eq!(s.fingerprint(), s2.fingerprint());
}

#[test]
fn read_only_access_refuses_an_insert() {
    let Some(base) = server() else { return };
    let mut scope = Scope::new(&base);
    let db = scope.live("ro", "CREATE TABLE t (id int PRIMARY KEY);");
    let mut ro = scope.conn(&db, Access::ReadOnly);
    let e = ro.execute_batch("INSERT INTO t VALUES (1)").unwrap_err();
    assert!(format!("{e:#}").to_ascii_lowercase().contains("read only"), "{e:#}");
    assert_eq!(scope.scalar(&db, "SELECT count(*) FROM t"), "0");
    let mut rw = scope.conn(&db, Access::ReadWrite);
    rw.execute_batch("INSERT INTO t VALUES (1)").unwrap();
}

#[test]
fn connection_errors_say_what_is_wrong_in_one_line() {
    let Some(base) = server() else { return };
    let err = |url: &str| {
        let e = Mysql::from_url(url, Access::ReadOnly).unwrap().connect().err().expect("must fail");
        let text = format!("{e:#}");
        assert!(!text.contains('\n'), "one line: {text}");
        text
    };
    let missing = err(&url_for(&base, "rt_no_such_database"));
    assert!(missing.contains("rt_no_such_database") && missing.contains("does not exist"), "{missing}");

    let u = url::Url::parse(&base).unwrap();
    let denied = err(&url_as(&base, "mysql", "rt_nobody", "Sekr3t-pw"));
    assert!(denied.contains("denied access to user \"rt_nobody\""), "{denied}");
    assert!(!denied.contains("Sekr3t-pw"), "{denied}");

    // A port nothing listens on (the server's port + 1 is free here; if not, the message differs).
    let mut closed = url::Url::parse(&url_for(&base, "mysql")).unwrap();
    closed.set_host(Some("127.0.0.1")).unwrap();
    closed.set_port(Some(1)).unwrap();
    let unreachable = err(closed.as_str());
    assert!(unreachable.contains("cannot reach the MySQL server at 127.0.0.1:1"), "{unreachable}");
    assert!(unreachable.contains("is it running"), "{unreachable}");
    let _ = u;
}

#[test]
fn clone_makes_a_marked_copy_with_the_same_rows_and_live_stays_byte_identical() {
    let Some(base) = server() else { return };
    let mut scope = Scope::new(&base);
    let db = scope.live("clone", LIVE_DDL);
    let before = dump_text(&base, &db);
    let work = tempfile::tempdir().unwrap();
    let live = scope.engine(&db, Access::ReadOnly);
    assert_eq!(live.describe(), format!("MySQL database {db} on {}", live.params().place()));

    let cloned = live.clone_to_test_copy(work.path()).unwrap();
    let copy = format!("{db}upgradetest");
    assert_eq!(cloned.test_copy.name(), copy);
    assert_eq!(cloned.backup, work.path().join(format!("{db}.dump.sql")));
    assert_eq!(mode_of(&cloned.backup), 0o600);
    let leftovers: Vec<PathBuf> = std::fs::read_dir(work.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(leftovers, std::slice::from_ref(&cloned.backup), "no option file or partial dump is left behind");

    // Same rows (including the emoji and the blob), same structure, marked as rehearse's.
    for q in [
        "SELECT group_concat(concat_ws('|', id, code, name, meta, budget, notes) ORDER BY id) FROM org",
        "SELECT group_concat(concat_ws('|', id, org_id, hex(tag)) ORDER BY id) FROM member",
    ] {
        assert_eq!(scope.scalar(&copy, q), scope.scalar(&db, q), "{q}");
    }
    let live_schema = scope.conn(&db, Access::ReadOnly).introspect().unwrap();
    let copy_schema = cloned.test_copy.connect().unwrap().introspect().unwrap();
    assert_eq!(live_schema, copy_schema);
    assert_eq!(
        scope.admin(&format!("SELECT role, live_db FROM rehearse_meta.copies WHERE db_name = '{copy}'")),
        [[Some("test_copy".to_string()), Some(db.clone())]]
    );
    assert_eq!(dump_text(&base, &copy), before, "the copy dumps exactly like live");

    // A second rehearsal replaces the marked copy.
    cloned.test_copy.connect().unwrap().execute_batch("DROP TABLE member").unwrap();
    let again = live.clone_to_test_copy(work.path()).unwrap();
    assert_eq!(scope.scalar(&copy, "SELECT count(*) FROM member"), "3");
    drop(again);

    assert_eq!(dump_text(&base, &db), before, "live is byte-identical after two clones");
}

#[test]
fn an_unmarked_test_copy_is_refused_and_left_alone() {
    let Some(base) = server() else { return };
    let mut scope = Scope::new(&base);
    let db = scope.live("unmarked", "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);");
    let copy = format!("{db}upgradetest");
    scope.admin(&format!("CREATE DATABASE `{copy}`"));
    scope.admin(&format!("CREATE TABLE `{copy}`.precious (id int)"));
    let work = tempfile::tempdir().unwrap();
    let e = scope.engine(&db, Access::ReadOnly).clone_to_test_copy(work.path()).err().expect("must refuse");
    assert_eq!(rehearse::exit::code_of(&e), rehearse::exit::REFUSED, "{e:#}");
    assert!(format!("{e:#}").contains("not made by rehearse"), "{e:#}");
    assert_eq!(
        scope.scalar(&copy, "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"),
        "1"
    );
    assert!(std::fs::read_dir(work.path()).unwrap().next().is_none(), "refused before dumping");
}

#[test]
fn live_and_test_copies_are_never_dropped_as_scratch() {
    let Some(base) = server() else { return };
    let mut scope = Scope::new(&base);
    let db = scope.live("guard", "CREATE TABLE t (id int);");
    let live = scope.engine(&db, Access::ReadWrite);
    let e = live.drop_scratch().expect_err("must refuse");
    assert_eq!(rehearse::exit::code_of(&e), rehearse::exit::REFUSED);
    let e = live.restore_test_copy(Path::new("/nonexistent")).expect_err("must refuse");
    assert_eq!(rehearse::exit::code_of(&e), rehearse::exit::REFUSED);
    assert_eq!(
        scope.scalar(&db, "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"),
        "1"
    );

    // A scratch database is marked, takes DDL, and is dropped.
    let work = tempfile::tempdir().unwrap();
    let scratch = live.scratch(work.path()).unwrap();
    assert_eq!(scratch.name(), format!("{db}_rehearse_scratch"));
    scratch.connect().unwrap().execute_batch("CREATE TABLE a (id int);\nCREATE TABLE b (id int);").unwrap();
    let e = scratch.connect().unwrap().execute_batch("CREATE TABLE c (id int);\nUSE mysql;").unwrap_err();
    assert!(format!("{e}").contains("line 2"), "{e}");
    assert_eq!(scratch.connect().unwrap().introspect().unwrap().tables.len(), 3);
    scratch.drop_scratch().unwrap();
    assert_eq!(
        scope.admin(&format!(
            "SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{db}_rehearse_scratch'"
        )),
        [[Some("0".to_string())]]
    );
}

#[test]
fn the_password_never_reaches_the_dump_command_line() {
    let Some(base) = server() else { return };
    let mut scope = Scope::new(&base);
    let db = scope.live("secret", "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2);");
    let user = format!("rt_pw_{}", std::process::id());
    // Quotes, a backslash, a hash and spaces: the option file must carry it unchanged.
    let password = format!("S3cr\"et #{} pa\\ss 'x", std::process::id());
    let lit = password.replace('\\', "\\\\").replace('\'', "\\'");
    scope.users.push(user.clone());
    scope.admin(&format!("CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{lit}'"));
    scope.admin(&format!("GRANT ALL PRIVILEGES ON *.* TO '{user}'@'127.0.0.1'"));

    // A dump program that records how it was called, then runs the real one.
    let real = Tools::find(Flavor::MariaDb).unwrap();
    let spy_dir = tempfile::tempdir().unwrap();
    let spy = spy_dir.path().join("dump-spy");
    let log = spy_dir.path();
    std::fs::write(
        &spy,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{l}/argv'\ntr '\\0' '\\n' < /proc/$$/cmdline > '{l}/cmdline'\n\
             f=\"${{1#--defaults-extra-file=}}\"\nprintf '%s' \"$f\" > '{l}/file'\nstat -L -c %F \"$f\" > '{l}/kind'\n\
             exec '{real}' \"$@\"\n",
            l = log.display(),
            real = real.dump.display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&spy, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let url = url_as(&base, &db, &user, &password);
    let live = Mysql::from_url(&url, Access::ReadOnly)
        .unwrap()
        .with_tools(Tools { dump: spy.clone(), client: real.client.clone() });
    assert!(!live.describe().contains(&password));
    live.connect().unwrap().introspect().unwrap();
    let work = tempfile::tempdir().unwrap();
    let cloned = live.clone_to_test_copy(work.path()).unwrap();
    assert_eq!(scope.scalar(&format!("{db}upgradetest"), "SELECT count(*) FROM t"), "2");

    let argv = std::fs::read_to_string(log.join("argv")).unwrap();
    let cmdline = std::fs::read_to_string(log.join("cmdline")).unwrap();
    assert!(argv.starts_with("--defaults-extra-file="), "{argv}");
    for text in [&argv, &cmdline] {
        assert!(!text.contains(&password), "password on the command line: {text}");
        assert!(!text.contains("S3cr"), "part of the password on the command line: {text}");
    }
    assert_eq!(std::fs::read_to_string(log.join("kind")).unwrap().trim(), "fifo", "the option file is a pipe");
    // The option file is a pipe the dump reads: no file on disk ever holds the password.
    let option_file = std::fs::read_to_string(log.join("file")).unwrap();
    assert!(option_file.starts_with("/dev/fd/"), "{option_file}");

    // The restore path (mysql client) works with the same credentials.
    cloned.test_copy.restore_test_copy(&cloned.backup).unwrap();
    assert_eq!(scope.scalar(&format!("{db}upgradetest"), "SELECT count(*) FROM t"), "2");
}

#[test]
fn castable_flags_values_mysql_would_coerce() {
    let Some(base) = server() else { return };
    let mut scope = Scope::new(&base);
    let db = scope.live(
        "cast",
        "CREATE TABLE v (s varchar(20), n numeric(8,3), big int);
         INSERT INTO v VALUES ('12', 1.5, 5), (' 7 ', 2, 300), ('12abc', 3.255, -1), ('x', 1000, NULL),
           (NULL, NULL, 70000), ('2024-02-30', NULL, NULL), ('2024-02-28', NULL, NULL), ('[1,2]', NULL, NULL);",
    );
    let mut c = scope.conn(&db, Access::ReadOnly);
    let mut failures = |col: &str, from: &str, to: &str| -> (i64, String) {
        let cond = c.castable(&format!("`{col}`"), from, to).unwrap().expect("needs a probe");
        let rows = c
            .query(&format!(
                "SELECT count(*), group_concat(`{col}` ORDER BY `{col}` SEPARATOR '|') FROM v WHERE `{col}` IS NOT NULL AND NOT ({cond})"
            ))
            .unwrap();
        // Sorted here, not by the server's collation.
        let mut values: Vec<String> = rows[0][1].clone().unwrap_or_default().split('|').map(str::to_string).collect();
        values.sort();
        (rows[0][0].as_deref().unwrap().parse().unwrap(), values.join("|"))
    };
    assert_eq!(failures("s", "varchar(20)", "integer"), (5, "12abc|2024-02-28|2024-02-30|[1,2]|x".into()));
    assert_eq!(failures("s", "varchar(20)", "date"), (6, " 7 |12|12abc|2024-02-30|[1,2]|x".into()));
    assert_eq!(failures("s", "varchar(20)", "json").0, 4, "12, 7 and [1,2] are JSON");
    assert_eq!(failures("n", "numeric(8,3)", "numeric(5,2)"), (2, "1000.000|3.255".into()));
    assert_eq!(failures("n", "numeric(8,3)", "integer"), (2, "1.500|3.255".into()));
    assert_eq!(failures("big", "integer", "tinyint unsigned"), (3, "-1|300|70000".into()));
    assert_eq!(failures("s", "varchar(20)", "enum('12','x')").0, 5);
    assert_eq!(c.castable("`big`", "integer", "bigint").unwrap(), None, "widening needs no probe");
    assert_eq!(c.char_length("'é'"), "CHAR_LENGTH('é')");
}

fn statements(script: &str) -> Vec<Statement> {
    sqltext::split(script, rehearse::engine::Dialect::Mysql)
}

#[test]
fn a_failing_statement_stops_the_script_at_its_line() {
    let Some(base) = server() else { return };
    let mut scope = Scope::new(&base);
    let db =
        scope.live("fail", "CREATE TABLE t (id int PRIMARY KEY, v varchar(10)); INSERT INTO t VALUES (1, 'abcdefgh');");
    let mut c = scope.conn(&db, Access::ReadWrite);
    let ok = c
        .run_in_transaction(
            &statements("SET NAMES utf8mb4;"),
            &statements("ALTER TABLE t ADD COLUMN w int;\nUPDATE t SET w = 1;"),
            &mut |_| Ok(()),
        )
        .unwrap();
    assert_eq!(ok.iter().map(|t| t.line).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(ok[1].rows, 1);
    // Strict mode: narrowing to 3 characters fails instead of truncating.
    let script = "UPDATE t SET w = 2;\n\nALTER TABLE t MODIFY v varchar(3);\nUPDATE t SET w = 3;";
    let f = c.run_in_transaction(&[], &statements(script), &mut |_| Ok(())).unwrap_err();
    assert_eq!(f.line, 3, "{f:?}");
    assert!(f.statement.starts_with("ALTER TABLE t MODIFY"), "{f:?}");
    assert!(f.message.contains("Data too long") || f.message.contains("truncated"), "{f:?}");
    assert_eq!(scope.scalar(&db, "SELECT v FROM t"), "abcdefgh");
    // The ALTER's implicit commit kept the UPDATE before it; the one after it never ran.
    assert_eq!(scope.scalar(&db, "SELECT w FROM t"), "2");
    let f = c.run_in_transaction(&[], &statements("SELECT 1;\nUSE mysql;"), &mut |_| Ok(())).unwrap_err();
    assert_eq!(f.line, 2);
}

#[test]
fn restore_after_a_failing_script_leaves_the_copy_exactly_as_cloned() {
    let Some(base) = server() else { return };
    let mut scope = Scope::new(&base);
    let db = scope.live("restore", LIVE_DDL);
    let live_before = dump_text(&base, &db);
    let work = tempfile::tempdir().unwrap();
    let live = scope.engine(&db, Access::ReadOnly);
    let cloned = live.clone_to_test_copy(work.path()).unwrap();
    let copy = cloned.test_copy.name();
    let copy_before = dump_text(&base, &copy);

    let script = "ALTER TABLE member ADD COLUMN note varchar(10);\nINSERT INTO org (code, name) VALUES ('ZZ', 'new');\n\
                  DROP TABLE rehearse_history;\nALTER TABLE member ADD CONSTRAINT fk_bad FOREIGN KEY (id) REFERENCES nowhere (id);";
    let mut c = cloned.test_copy.connect().unwrap();
    let f = c.run_in_transaction(&[], &statements(script), &mut |_| Ok(())).unwrap_err();
    assert_eq!(f.line, 4, "{f:?}");
    drop(c);
    assert_ne!(dump_text(&base, &copy), copy_before, "the DDL before the failure was committed");
    cloned.test_copy.restore_test_copy(&cloned.backup).unwrap();
    assert_eq!(dump_text(&base, &copy), copy_before);
    assert_eq!(dump_text(&base, &db), live_before);
}

/// Each DDL statement's timing says how MariaDB ran it: adding a nullable column is instant,
/// widening int to bigint copies the rows into a new table (and names it), a new index is built
/// in place without a rebuild; DML gets no algorithm.
#[test]
fn timings_say_which_algorithm_each_ddl_statement_used() {
    let Some(base) = server() else { return };
    let mut scope = Scope::new(&base);
    let db = scope.live(
        "algo",
        "CREATE TABLE big (id int PRIMARY KEY, n int, s varchar(20)); INSERT INTO big SELECT seq, seq, 'x' FROM seq_1_to_100;",
    );
    let mut c = scope.conn(&db, Access::ReadWrite);
    let script = "ALTER TABLE big ADD COLUMN note text;\nALTER TABLE big MODIFY n bigint;\nCREATE INDEX big_s ON big (s);\nUPDATE big SET note = 'y';";
    let t = c.run_in_transaction(&[], &statements(script), &mut |_| Ok(())).unwrap();
    let how: Vec<(Option<&str>, Vec<String>)> = t.iter().map(|t| (t.algorithm.as_deref(), t.rewrote.clone())).collect();
    assert_eq!(
        how,
        [(Some("instant"), vec![]), (Some("copy"), vec!["big".to_string()]), (Some("inplace"), vec![]), (None, vec![])],
        "{t:?}"
    );
}
