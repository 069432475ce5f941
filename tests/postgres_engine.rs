//! The PostgreSQL engine against a real server (REHEARSE_TEST_PG_URL, from scripts/services.sh):
//! introspection and type normalization, read-only live, the marked test copy and its guards,
//! secrets kept out of argv, cast probes and transactional script runs. No mocks.
//!
//! Each test makes its own uniquely named databases and drops them, so tests run in parallel.

use rehearse::engine::postgres::{tool_command, Postgres};
use rehearse::engine::{self, Access, Connection, Dialect, Engine};
use rehearse::sqltext::Statement;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The server URL, or None (with a loud note) when no server was started. On CI a missing
/// server is a failure, not a skip.
fn server() -> Option<String> {
    match std::env::var("REHEARSE_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            let hint = "start PostgreSQL with: eval \"$(scripts/services.sh up)\"";
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("REHEARSE_TEST_PG_URL is not set on CI: {hint}");
            }
            eprintln!("\n*** SKIPPED: REHEARSE_TEST_PG_URL is not set; {hint} ***\n");
            None
        }
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh database, dropped (with its test copy and scratch database) when the value goes.
struct TestDb {
    server: String,
    name: String,
}

impl TestDb {
    fn new(server: &str, tag: &str) -> TestDb {
        let name = format!("rh_{tag}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
        let db = TestDb { server: server.to_string(), name };
        db.drop_all();
        admin(server).execute_batch(&format!("CREATE DATABASE \"{}\"", db.name)).unwrap();
        db
    }

    fn url(&self) -> String {
        url_for(&self.server, &self.name)
    }

    fn conn(&self) -> Box<dyn Connection> {
        engine::from_url(&self.url(), Access::ReadWrite).unwrap().connect().unwrap()
    }

    fn drop_all(&self) {
        let mut a = admin(&self.server);
        for n in [self.name.clone(), format!("{}upgradetest", self.name), format!("{}_rehearse_scratch", self.name)] {
            let _ = a.execute_batch(&format!("DROP DATABASE IF EXISTS \"{n}\" WITH (FORCE)"));
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        self.drop_all();
    }
}

fn admin(server: &str) -> Box<dyn Connection> {
    engine::from_url(server, Access::ReadWrite).unwrap().connect().unwrap()
}

fn url_for(server: &str, db: &str) -> String {
    Postgres::from_url(server, Access::ReadWrite).unwrap().params().with_dbname(db).url()
}

fn scalar(conn: &mut dyn Connection, sql: &str) -> Option<String> {
    conn.query(sql).unwrap().into_iter().next().and_then(|r| r.into_iter().next()).flatten()
}

fn st(line: usize, sql: &str) -> Statement {
    Statement::new(line, sql)
}

/// A plain-text pg_dump of a database, for comparing live before and after a rehearsal.
fn plain_dump(url: &str) -> String {
    let pg = Postgres::from_url(url, Access::ReadOnly).unwrap();
    let args = vec!["--format=plain".into(), "--no-password".into(), format!("--dbname={}", pg.name()).into()];
    let out = tool_command(Path::new("pg_dump"), args, pg.params()).stdout_capture().run().unwrap();
    // Recent pg_dump releases wrap the script in `\restrict <random key>`: not content.
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_same_table_written_with_different_spellings_introspects_equal() {
    let Some(server) = server() else { return };
    let (a, b) = (TestDb::new(&server, "spell_a"), TestDb::new(&server, "spell_b"));
    a.conn()
        .execute_batch(
            "CREATE TABLE item (
               name character varying(64) DEFAULT 'x'::character varying NOT NULL,
               qty int4 DEFAULT '-1',
               code CHARACTER(2),
               price numeric(10, 2) DEFAULT '0',
               seen timestamp without time zone DEFAULT CURRENT_TIMESTAMP,
               at timestamp with time zone,
               ok bool DEFAULT true,
               ratio float8,
               tags int8[],
               doc jsonb DEFAULT '{}',
               note varchar DEFAULT NULL
             );",
        )
        .unwrap();
    b.conn()
        .execute_batch(
            "CREATE TABLE item (
               name VARCHAR(64) NOT NULL DEFAULT 'x',
               qty INTEGER DEFAULT -1,
               code char(2),
               price DECIMAL(10,2) DEFAULT 0,
               seen TIMESTAMP DEFAULT current_timestamp,
               at TIMESTAMPTZ,
               ok BOOLEAN DEFAULT 'true',
               ratio double precision,
               tags bigint[],
               doc JSONB DEFAULT '{}'::jsonb,
               note character varying
             );",
        )
        .unwrap();
    let sa = a.conn().introspect().unwrap();
    let sb = b.conn().introspect().unwrap();
    assert_eq!(sa, sb);
    assert_eq!(sa.fingerprint(), sb.fingerprint());
    let t = sa.table("item").unwrap();
    let types: Vec<&str> = t.columns.iter().map(|c| c.data_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "varchar(64)",
            "integer",
            "char(2)",
            "numeric(10,2)",
            "timestamp",
            "timestamptz",
            "boolean",
            "double precision",
            "bigint[]",
            "jsonb",
            "varchar"
        ]
    );
    let defaults: Vec<Option<&str>> = t.columns.iter().map(|c| c.default.as_deref()).collect();
    assert_eq!(
        defaults,
        [
            Some("'x'"),
            Some("-1"),
            None,
            Some("0"),
            Some("CURRENT_TIMESTAMP"),
            None,
            Some("true"),
            None,
            None,
            Some("'{}'"),
            None
        ]
    );
    assert!(!t.column("name").unwrap().nullable);
}

#[test]
fn serial_and_identity_columns_are_auto_increment() {
    let Some(server) = server() else { return };
    let db = TestDb::new(&server, "serial");
    db.conn()
        .execute_batch(
            "CREATE SEQUENCE shared_seq;
             CREATE TABLE s (
               a serial, b bigserial, c smallserial,
               d int GENERATED ALWAYS AS IDENTITY,
               e bigint GENERATED BY DEFAULT AS IDENTITY,
               f int DEFAULT nextval('shared_seq')
             );",
        )
        .unwrap();
    let schema = db.conn().introspect().unwrap();
    let t = schema.table("s").unwrap();
    let c = |n: &str| t.column(n).unwrap().clone();
    for (name, ty) in [("a", "integer"), ("b", "bigint"), ("c", "smallint")] {
        let col = c(name);
        assert_eq!((col.data_type.as_str(), col.auto_increment, col.default.as_deref()), (ty, true, None), "{name}");
        assert_eq!(col.identity, None);
    }
    assert_eq!(c("d").identity.as_deref(), Some("always"));
    assert_eq!(c("e").identity.as_deref(), Some("by default"));
    assert!(c("d").auto_increment && c("e").auto_increment && c("d").default.is_none());
    // A sequence the column does not own is an ordinary default.
    assert!(!c("f").auto_increment);
    assert_eq!(c("f").default.as_deref(), Some("nextval('shared_seq'::regclass)"));
}

#[test]
fn keys_indexes_foreign_keys_and_checks_read_back() {
    let Some(server) = server() else { return };
    let db = TestDb::new(&server, "keys");
    db.conn()
        .execute_batch(
            "CREATE TABLE parent (b int, a int, code text, PRIMARY KEY (b, a), CONSTRAINT parent_code_key UNIQUE (code));
             CREATE TABLE child (
               id int PRIMARY KEY,
               pa int, pb int, qty int, \"Odd Name\" text,
               CONSTRAINT child_parent_fk FOREIGN KEY (pb, pa) REFERENCES parent (b, a) ON DELETE CASCADE ON UPDATE SET NULL,
               CONSTRAINT qty_positive CHECK ((qty > 0)),
               CONSTRAINT u_two UNIQUE (pa, qty)
             );
             CREATE TABLE plain_fk (p int REFERENCES child);
             CREATE INDEX child_odd ON child (\"Odd Name\", qty DESC) WHERE qty > 5;
             CREATE UNIQUE INDEX child_lower ON child (lower(\"Odd Name\"));
             CREATE TABLE rehearse_history (id int);",
        )
        .unwrap();
    let s = db.conn().introspect().unwrap();
    let names: Vec<&str> = s.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["child", "parent", "plain_fk"], "rehearse_history is left out");
    let parent = s.table("parent").unwrap();
    assert_eq!(parent.primary_key, ["b", "a"]);
    assert_eq!(parent.uniques.len(), 1);
    assert_eq!(parent.uniques[0].name.as_deref(), Some("parent_code_key"));
    assert!(parent.indexes.is_empty(), "constraint indexes are not listed as indexes: {:?}", parent.indexes);
    let child = s.table("child").unwrap();
    assert_eq!(child.uniques[0].columns, ["pa", "qty"]);
    let fk = &child.foreign_keys[0];
    assert_eq!(
        (fk.columns.clone(), fk.ref_table.as_str(), fk.ref_columns.clone()),
        (vec!["pb".to_string(), "pa".into()], "parent", vec!["b".to_string(), "a".into()])
    );
    assert_eq!((fk.on_delete.as_deref(), fk.on_update.as_deref()), (Some("CASCADE"), Some("SET NULL")));
    assert_eq!(child.checks.len(), 1);
    assert_eq!(child.checks[0].name.as_deref(), Some("qty_positive"));
    assert_eq!(child.checks[0].expr, "qty > 0");
    let odd = child.indexes.iter().find(|i| i.name == "child_odd").unwrap();
    assert_eq!(odd.columns, ["Odd Name", "qty"]);
    assert_eq!(odd.predicate.as_deref(), Some("qty > 5"));
    assert!(!odd.unique);
    assert!(odd.sql.as_deref().unwrap().contains("qty DESC"), "{:?}", odd.sql);
    let lower = child.indexes.iter().find(|i| i.name == "child_lower").unwrap();
    assert!(lower.unique);
    assert_eq!(lower.columns, ["lower(\"Odd Name\")"]);
    let plain = &s.table("plain_fk").unwrap().foreign_keys[0];
    assert_eq!((plain.ref_columns.clone(), plain.on_delete.clone()), (vec!["id".to_string()], None));
    assert!(s.tables.iter().all(|t| t.create_sql.is_none()));
}

#[test]
fn live_opened_read_only_refuses_an_insert() {
    let Some(server) = server() else { return };
    let db = TestDb::new(&server, "readonly");
    db.conn().execute_batch("CREATE TABLE t (a int)").unwrap();
    let live = engine::from_url(&db.url(), Access::ReadOnly).unwrap();
    let mut conn = live.connect().unwrap();
    assert_eq!(conn.introspect().unwrap().tables.len(), 1);
    let e = conn.execute_batch("INSERT INTO t VALUES (1)").unwrap_err();
    assert!(format!("{e:#}").contains("read-only transaction"), "{e:#}");
    let f = conn.run_in_transaction(&[], &[st(1, "INSERT INTO t VALUES (2)")], &mut |_| Ok(())).unwrap_err();
    assert!(f.message.contains("read-only"), "{}", f.message);
    assert_eq!(scalar(db.conn().as_mut(), "SELECT count(*) FROM t").as_deref(), Some("0"));
}

#[test]
fn clone_makes_a_marked_copy_with_the_same_data_and_leaves_live_unchanged() {
    let Some(server) = server() else { return };
    let db = TestDb::new(&server, "clone");
    db.conn()
        .execute_batch(
            "CREATE TYPE mood AS ENUM ('ok', 'sad');
             CREATE TABLE org (id serial PRIMARY KEY, name varchar(40) NOT NULL UNIQUE, m mood);
             CREATE TABLE person (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                                  org_id int REFERENCES org, doc jsonb, CHECK (id > 0));
             CREATE INDEX person_org ON person (org_id);
             INSERT INTO org (name, m) SELECT 'org ' || g, 'ok' FROM generate_series(1, 50) g;
             INSERT INTO person (org_id, doc) SELECT 1 + g % 50, jsonb_build_object('g', g) FROM generate_series(1, 1000) g;",
        )
        .unwrap();
    let before = plain_dump(&db.url());
    let live = engine::from_url(&db.url(), Access::ReadOnly).unwrap();
    let work = tempfile::tempdir().unwrap();
    let workdir = work.path().join("w");
    for _ in 0..2 {
        // The second run replaces the copy the first one made.
        let cloned = live.clone_to_test_copy(&workdir).unwrap();
        assert_eq!(cloned.test_copy.name(), format!("{}upgradetest", db.name));
        assert_eq!(cloned.backup, workdir.join(format!("{}.dump.d", db.name)));
        let mut copy = cloned.test_copy.connect().unwrap();
        assert_eq!(scalar(copy.as_mut(), "SELECT count(*) FROM person").as_deref(), Some("1000"));
        assert_eq!(scalar(copy.as_mut(), "SELECT sum(org_id) FROM person").as_deref(), Some("25500"));
        assert_eq!(copy.introspect().unwrap(), live.connect().unwrap().introspect().unwrap());
        let comment = scalar(
            copy.as_mut(),
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()",
        );
        assert_eq!(comment, Some(format!("rehearse test copy of {}", db.name)));
        // The copy is writable; live is not touched by it.
        copy.execute_batch("INSERT INTO org (name) VALUES ('only in the copy')").unwrap();
    }
    assert_eq!(plain_dump(&db.url()), before, "live changed during the rehearsal");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dump = workdir.join(format!("{}.dump.d", db.name));
        assert_eq!(std::fs::metadata(&dump).unwrap().permissions().mode() & 0o777, 0o700);
        for f in std::fs::read_dir(&dump).unwrap() {
            let f = f.unwrap().path();
            assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600, "{}", f.display());
        }
        assert!(dump.join("toc.dat").exists());
    }
}

#[test]
fn an_unmarked_test_copy_is_refused_and_kept() {
    let Some(server) = server() else { return };
    let db = TestDb::new(&server, "unmarked");
    let copy = format!("{}upgradetest", db.name);
    admin(&server).execute_batch(&format!("CREATE DATABASE \"{copy}\"")).unwrap();
    let live = engine::from_url(&db.url(), Access::ReadOnly).unwrap();
    let work = tempfile::tempdir().unwrap();
    let e = live.clone_to_test_copy(work.path()).err().expect("an unmarked copy must be refused");
    assert_eq!(rehearse::exit::code_of(&e), rehearse::exit::REFUSED, "{e:#}");
    let msg = format!("{e:#}");
    assert!(msg.contains("not made by rehearse") && msg.contains(&copy), "{msg}");
    let exists = scalar(admin(&server).as_mut(), &format!("SELECT count(*) FROM pg_database WHERE datname = '{copy}'"));
    assert_eq!(exists.as_deref(), Some("1"), "the unmarked database must not be dropped");
    assert!(!work.path().join(format!("{}.dump.d", db.name)).exists(), "refused before dumping");
}

#[test]
fn a_half_made_copy_is_recognised_and_recreated() {
    let Some(server) = server() else { return };
    let db = TestDb::new(&server, "halfmade");
    db.conn().execute_batch("CREATE TABLE t (a int); INSERT INTO t VALUES (1), (2);").unwrap();
    let copy = format!("{}upgradetest", db.name);
    let mut a = admin(&server);
    a.execute_batch(&format!("CREATE DATABASE \"{copy}\"")).unwrap();
    a.execute_batch(&format!(
        "COMMENT ON DATABASE \"{copy}\" IS 'rehearse test copy of {} (incomplete: the restore did not finish)'",
        db.name
    ))
    .unwrap();
    let live = engine::from_url(&db.url(), Access::ReadOnly).unwrap();
    let work = tempfile::tempdir().unwrap();
    let cloned = live.clone_to_test_copy(work.path()).unwrap();
    assert_eq!(scalar(cloned.test_copy.connect().unwrap().as_mut(), "SELECT count(*) FROM t").as_deref(), Some("2"));
}

#[test]
fn scratch_database_is_marked_and_dropped_only_when_marked() {
    let Some(server) = server() else { return };
    let db = TestDb::new(&server, "scratch");
    let live = engine::from_url(&db.url(), Access::ReadOnly).unwrap();
    let work = tempfile::tempdir().unwrap();
    let scratch = live.scratch(work.path()).unwrap();
    assert_eq!(scratch.name(), format!("{}_rehearse_scratch", db.name));
    let mut conn = scratch.connect().unwrap();
    conn.execute_batch("CREATE TABLE a (id int PRIMARY KEY);\nCREATE TABLE b (a_id int REFERENCES a);").unwrap();
    let e = conn.execute_batch("CREATE TABLE c (x int);\nCREATE TABLE d (y nosuchtype);").unwrap_err();
    assert!(format!("{e:#}").contains("line 2"), "{e:#}");
    assert_eq!(conn.introspect().unwrap().tables.len(), 2);
    drop(conn);
    // A second scratch() replaces the marked one.
    let scratch = live.scratch(work.path()).unwrap();
    assert!(scratch.connect().unwrap().introspect().unwrap().tables.is_empty());
    scratch.drop_scratch().unwrap();
    let n = scratch.name();
    let left = scalar(admin(&server).as_mut(), &format!("SELECT count(*) FROM pg_database WHERE datname = '{n}'"));
    assert_eq!(left.as_deref(), Some("0"));
    // Neither live nor an unmarked database is dropped as a scratch database.
    assert!(live.drop_scratch().is_err());
    admin(&server).execute_batch(&format!("CREATE DATABASE \"{n}\"")).unwrap();
    let e = live.scratch(work.path()).err().expect("an unmarked scratch name must be refused");
    assert_eq!(rehearse::exit::code_of(&e), rehearse::exit::REFUSED, "{e:#}");
}

/// Reads /proc while pg_dump and pg_restore run: their argv must never hold the password, which
/// they must get through PGPASSWORD instead.
#[cfg(target_os = "linux")]
#[test]
fn the_password_never_appears_in_the_argv_of_pg_dump_or_pg_restore() {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    let Some(server) = server() else { return };
    let db = TestDb::new(&server, "argv");
    db.conn()
        .execute_batch(
            "CREATE TABLE big (id int PRIMARY KEY, v text);
             INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 200000) g;",
        )
        .unwrap();
    let password = format!("pw-{}-s3cret", std::process::id());
    let mut params = Postgres::from_url(&db.url(), Access::ReadOnly).unwrap().params().clone();
    params.password = Some(password.clone());
    // The test server trusts loopback, so any password is accepted; it is still handed over.
    let url = params.url();
    assert!(url.contains(&password));
    let live = engine::from_url(&url, Access::ReadOnly).unwrap();
    assert!(!live.describe().contains(&password));

    let stop = Arc::new(AtomicBool::new(false));
    let scanner = {
        let (stop, password) = (stop.clone(), password.clone());
        std::thread::spawn(move || {
            let mut seen: Vec<(String, bool)> = Vec::new();
            let mut leaks: Vec<String> = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                    let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else { continue };
                    let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
                    if !(cmdline.contains("pg_dump") || cmdline.contains("pg_restore")) {
                        continue;
                    }
                    if cmdline.contains(&password) {
                        leaks.push(cmdline.clone());
                    }
                    let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
                    let environ = String::from_utf8_lossy(&environ);
                    // Judge only an environment read whole: ours carries PGAPPNAME with PGPASSWORD
                    // (a process starting or exiting can show an empty or foreign one).
                    if !environ.contains("PGAPPNAME=rehearse") {
                        continue;
                    }
                    let has_env = environ.contains(&format!("PGPASSWORD={password}"));
                    seen.push((cmdline, has_env));
                }
            }
            (seen, leaks)
        })
    };
    let work = tempfile::tempdir().unwrap();
    let result = live.clone_to_test_copy(work.path());
    stop.store(true, Ordering::SeqCst);
    let (seen, leaks) = scanner.join().unwrap();
    result.unwrap();
    assert!(leaks.is_empty(), "password in argv: {leaks:?}");
    let ours: Vec<&(String, bool)> = seen.iter().filter(|(c, _)| c.contains(&db.name)).collect();
    if ours.is_empty() {
        eprintln!("note: pg_dump/pg_restore finished before /proc was read; argv checked by the unit test only");
    }
    for (cmdline, has_env) in ours {
        assert!(has_env, "the password should reach {cmdline} through PGPASSWORD");
    }
    // Nor in a message: a failing connection names user, host and database only.
    let mut bad = params.clone();
    bad.dbname = format!("{}_missing", db.name);
    let e = engine::from_url(&bad.url(), Access::ReadOnly).unwrap().connect().err().unwrap();
    assert!(!format!("{e:#}").contains(&password), "{e:#}");
}

#[test]
fn castable_flags_values_that_do_not_convert() {
    let Some(server) = server() else { return };
    let db = TestDb::new(&server, "castable");
    let mut conn = db.conn();
    conn.execute_batch(
        "CREATE TABLE v (n text, j text, num numeric(6,2));
         INSERT INTO v VALUES ('12', '{\"a\": 1}', 12.5), ('12abc', '[[1]', 1234.56), (NULL, '[1]', NULL), (' 7 ', NULL, -3);",
    )
    .unwrap();
    let version: i32 = scalar(conn.as_mut(), "SHOW server_version_num").unwrap().parse().unwrap();
    let failures = |conn: &mut dyn Connection, col: &str, from: &str, to: &str| -> Vec<String> {
        let cond = conn.castable(&format!("\"{col}\""), from, to).unwrap().expect("needs a probe");
        if version < 160000 && !to.contains("int") {
            assert!(cond.contains("pg_temp.rehearse_castable"), "{cond}");
        }
        conn.query(&format!("SELECT ({col})::text FROM v WHERE {col} IS NOT NULL AND NOT ({cond}) ORDER BY 1"))
            .unwrap()
            .into_iter()
            .map(|r| r[0].clone().unwrap())
            .collect()
    };
    assert_eq!(failures(conn.as_mut(), "n", "text", "integer"), ["12abc"]);
    assert_eq!(failures(conn.as_mut(), "j", "text", "jsonb"), ["[[1]"]);
    // A real cast from the old type: numeric rounds into an integer, but overflows numeric(5,2).
    assert!(failures(conn.as_mut(), "num", "numeric(6,2)", "integer").is_empty());
    assert_eq!(failures(conn.as_mut(), "num", "numeric(6,2)", "numeric(5,2)"), ["1234.56"]);
    // Widening and anything to text need no probe.
    assert_eq!(conn.castable("\"n\"", "integer", "bigint").unwrap(), None);
    assert_eq!(conn.castable("\"n\"", "integer", "text").unwrap(), None);
    assert_eq!(conn.char_length("x"), "char_length(x)");

    // Text to integer types: the probe's verdict equals what the cast itself does, value by value.
    conn.execute_batch(
        "CREATE TABLE t (s text);
         INSERT INTO t VALUES ('0'), ('-0'), ('+12'), (' 12 '), (E'\\t12\\n'), (E'\\x0B5'), ('1 2'), ('12.0'), ('1e3'),
           (''), (' '), ('-'), ('2147483647'), ('2147483648'), ('-2147483648'), ('-2147483649'), ('32768'),
           ('9223372036854775807'), ('9223372036854775808'), ('0x1F'), ('1_000'), ('٣'), ('00000000000000000000042');",
    )
    .unwrap();
    for to in ["smallint", "integer", "bigint"] {
        let cond = conn.castable("s", "text", to).unwrap().expect("needs a probe");
        let rows = conn.query(&format!("SELECT s, ({cond})::text FROM t")).unwrap();
        for r in rows {
            let value = r[0].clone().unwrap();
            let probe = r[1].as_deref() == Some("true");
            let mut check = db.conn();
            let real = check.query(&format!("SELECT ({})::{to}", Dialect::Postgres.literal(&value))).is_ok();
            assert_eq!(probe, real, "{value:?} to {to}: probe says {probe}, the cast says {real}");
        }
    }
    assert_eq!(conn.as_text("x"), "(x)::text");
}

#[test]
fn a_failing_statement_rolls_the_whole_script_back_and_names_its_line() {
    let Some(server) = server() else { return };
    let db = TestDb::new(&server, "tx");
    let mut conn = db.conn();
    conn.execute_batch("CREATE TABLE t (a int UNIQUE); INSERT INTO t VALUES (1);").unwrap();
    let body = [
        st(3, "CREATE TABLE made_by_script (x int)"),
        st(4, "INSERT INTO t VALUES (2), (3)"),
        st(6, "INSERT INTO t VALUES (1)"),
        st(8, "INSERT INTO t VALUES (9)"),
    ];
    let f = conn.run_in_transaction(&[st(1, "SET lock_timeout = '5s'")], &body, &mut |_| Ok(())).unwrap_err();
    assert_eq!(f.line, 6);
    assert_eq!(f.statement, "INSERT INTO t VALUES (1)");
    assert!(
        f.message.contains("duplicate key") && f.message.contains("DETAIL: Key (a)=(1) already exists"),
        "{}",
        f.message
    );
    assert_eq!(scalar(conn.as_mut(), "SELECT count(*) FROM t").as_deref(), Some("1"));
    assert_eq!(scalar(conn.as_mut(), "SELECT to_regclass('made_by_script')::text"), None);
    // Verification runs inside the transaction: it sees the script's work, and its failure
    // rolls everything back.
    let mut seen = None;
    let f = conn
        .run_in_transaction(&[], &body[..2], &mut |c| {
            seen = scalar(c, "SELECT count(*) FROM t");
            anyhow::bail!("schema differs from the target")
        })
        .unwrap_err();
    assert_eq!(seen.as_deref(), Some("3"));
    assert!(f.message.contains("schema differs"), "{}", f.message);
    assert_eq!(scalar(conn.as_mut(), "SELECT count(*) FROM t").as_deref(), Some("1"));
    assert_eq!(scalar(conn.as_mut(), "SELECT to_regclass('made_by_script')::text"), None);
    // The session is usable after the rollback, and a good script commits with its timings.
    let timings = conn.run_in_transaction(&[], &body[..2], &mut |_| Ok(())).unwrap();
    assert_eq!(timings.iter().map(|t| (t.line, t.rows)).collect::<Vec<_>>(), [(3, 0), (4, 2)]);
    assert_eq!(scalar(conn.as_mut(), "SELECT count(*) FROM t").as_deref(), Some("3"));
}

#[test]
fn connection_failures_say_what_is_wrong_in_one_line() {
    let Some(server) = server() else { return };
    let e = engine::from_url("postgres://nobody@127.0.0.1:1/x", Access::ReadOnly).unwrap().connect().err().unwrap();
    let msg = format!("{e:#}");
    assert!(msg.contains("127.0.0.1:1") && msg.contains("running"), "{msg}");
    let missing = url_for(&server, "rh_no_such_database");
    let e = engine::from_url(&missing, Access::ReadOnly).unwrap().connect().err().unwrap();
    let msg = format!("{e:#}");
    assert!(msg.contains("database rh_no_such_database does not exist"), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    let live = engine::from_url(&missing, Access::ReadOnly).unwrap();
    assert!(live.describe().starts_with("PostgreSQL database rh_no_such_database on "), "{}", live.describe());
}

#[test]
fn a_user_without_createdb_gets_one_clear_error() {
    let Some(server) = server() else { return };
    let db = TestDb::new(&server, "nocreatedb");
    let role = format!("{}_user", db.name);
    let mut a = admin(&server);
    let _ = a.execute_batch(&format!("DROP ROLE IF EXISTS \"{role}\""));
    a.execute_batch(&format!("CREATE ROLE \"{role}\" LOGIN NOCREATEDB")).unwrap();
    let mut params = Postgres::from_url(&db.url(), Access::ReadOnly).unwrap().params().clone();
    params.user = role.clone();
    let live = engine::from_url(&params.url(), Access::ReadOnly).unwrap();
    let work = tempfile::tempdir().unwrap();
    let e = live.clone_to_test_copy(work.path()).err().expect("no CREATEDB");
    let msg = format!("{e:#}");
    let _ = a.execute_batch(&format!("DROP ROLE IF EXISTS \"{role}\""));
    assert!(msg.contains(&role) && msg.contains("CREATEDB"), "{msg}");
}

#[cfg(unix)]
#[test]
fn a_unix_socket_host_works_for_connections_and_for_pg_dump() {
    let Some(server) = server() else { return };
    let db = TestDb::new(&server, "socket");
    db.conn().execute_batch("CREATE TABLE t (a int); INSERT INTO t VALUES (1);").unwrap();
    let dirs = scalar(admin(&server).as_mut(), "SHOW unix_socket_directories").unwrap_or_default();
    let params = Postgres::from_url(&db.url(), Access::ReadOnly).unwrap().params().clone();
    let Some(dir) = dirs
        .split(',')
        .map(str::trim)
        .find(|d| d.starts_with('/') && Path::new(d).join(format!(".s.PGSQL.{}", params.port)).exists())
    else {
        eprintln!("note: the server has no Unix socket this process can reach ({dirs:?}); skipped");
        return;
    };
    let url = format!("postgresql://{}@/{}?host={dir}&port={}", params.user, db.name, params.port);
    let live = engine::from_url(&url, Access::ReadOnly).unwrap();
    assert_eq!(live.describe(), format!("PostgreSQL database {} on {dir}:{}", db.name, params.port));
    assert_eq!(live.connect().unwrap().introspect().unwrap().tables.len(), 1);
    let work = tempfile::tempdir().unwrap();
    let cloned = live.clone_to_test_copy(work.path()).unwrap();
    assert_eq!(scalar(cloned.test_copy.connect().unwrap().as_mut(), "SELECT count(*) FROM t").as_deref(), Some("1"));
}

/// Regression: PostgreSQL's deparsed `IN (...)` on a varchar column re-parses to different text,
/// so a check recreated by a script read back as changed and verification failed.
#[test]
fn checks_and_index_predicates_read_the_same_after_a_script_recreates_them() {
    let Some(server) = server() else { return };
    let (a, b) = (TestDb::new(&server, "roundtrip_a"), TestDb::new(&server, "roundtrip_b"));
    let table = "CREATE TABLE orders (status varchar(10), code char(2), amount numeric(10,2), note text)";
    a.conn()
        .execute_batch(&format!(
            "{table};
             ALTER TABLE orders ADD CONSTRAINT ok_status CHECK (status IN ('pending', 'it''s'));
             ALTER TABLE orders ADD CONSTRAINT ok_code CHECK (code IN ('ab', 'cd'));
             ALTER TABLE orders ADD CONSTRAINT ok_amount CHECK (amount > 0 AND note <> 'x');
             CREATE INDEX open_orders ON orders (status) WHERE status IN ('pending', 'new');"
        ))
        .unwrap();
    let first = a.conn().introspect().unwrap();
    let t = first.table("orders").unwrap();
    let mut ddl = vec![table.to_string()];
    for c in &t.checks {
        // As scripts do: the declared form when PostgreSQL's printed one would change.
        let sql = c.sql.as_deref().unwrap_or(&c.expr);
        ddl.push(format!("ALTER TABLE orders ADD CONSTRAINT {} CHECK ({sql})", c.name.as_deref().unwrap()));
    }
    for i in &t.indexes {
        ddl.push(format!("CREATE INDEX {} ON orders (status) WHERE {}", i.name, i.predicate.as_deref().unwrap()));
    }
    b.conn().execute_batch(&ddl.join(";\n")).unwrap();
    let again = b.conn().introspect().unwrap();
    assert_eq!(again.table("orders").unwrap().checks, t.checks);
    assert_eq!(again.table("orders").unwrap().indexes[0].predicate, t.indexes[0].predicate);
    assert_eq!(again.fingerprint(), first.fingerprint());
}

#[test]
fn only_the_first_schema_of_the_search_path_is_read_and_url_options_set_it() {
    let Some(server) = server() else { return };
    let db = TestDb::new(&server, "search_path");
    db.conn()
        .execute_batch(
            "CREATE SCHEMA app;
             CREATE TABLE app.in_app (id int PRIMARY KEY);
             CREATE TABLE public.in_public (id int REFERENCES app.in_app);",
        )
        .unwrap();
    let names = |url: &str| -> Vec<String> {
        let s = engine::from_url(url, Access::ReadOnly).unwrap().connect().unwrap().introspect().unwrap();
        s.tables.into_iter().map(|t| t.name).collect()
    };
    assert_eq!(names(&db.url()), ["in_public"]);
    let app_url = format!("{}?options=-c%20search_path%3Dapp", db.url());
    assert_eq!(names(&app_url), ["in_app"]);
    // The copy holds every schema, and is read through the same options.
    let live = engine::from_url(&app_url, Access::ReadOnly).unwrap();
    let work = tempfile::tempdir().unwrap();
    let cloned = live.clone_to_test_copy(work.path()).unwrap();
    assert_eq!(names(&cloned.test_copy.url()), ["in_app"]);
    let mut copy = cloned.test_copy.connect().unwrap();
    assert_eq!(scalar(copy.as_mut(), "SELECT count(*) FROM public.in_public").as_deref(), Some("0"));
}

/// Each statement's timing names the tables it rewrote whole: a type change that needs a
/// rewrite does, adding a nullable column or an index does not.
#[test]
fn timings_name_the_tables_a_statement_rewrites() {
    let Some(server) = server() else { return };
    let db = TestDb::new(&server, "rewrites");
    let mut conn = db.conn();
    conn.execute_batch("CREATE TABLE big (id integer PRIMARY KEY, n integer, s text); INSERT INTO big SELECT g, g, 'x' FROM generate_series(1, 100) g;")
        .unwrap();
    let body = [
        st(1, "ALTER TABLE big ADD COLUMN note text"),
        st(2, "ALTER TABLE big ALTER COLUMN n TYPE bigint"),
        st(3, "CREATE INDEX big_s ON big (s)"),
        st(4, "ALTER TABLE big ALTER COLUMN s TYPE varchar(20)"),
    ];
    let t = conn.run_in_transaction(&[], &body, &mut |_| Ok(())).unwrap();
    let rewrote: Vec<Vec<String>> = t.iter().map(|t| t.rewrote.clone()).collect();
    assert_eq!(rewrote, [vec![], vec!["big".to_string()], vec![], vec!["big".to_string()]], "{t:?}");
}

/// `rehearse copy` reads tables with `Connection::stream`, through COPY's binary format when every
/// column's text can be rebuilt from it: the text must be PostgreSQL's own, to the character,
/// for edge values too (BC dates, infinities, numeric scales and NaN, padded char, 24:00).
#[test]
fn a_streamed_query_reads_the_same_text_as_a_plain_query() {
    let Some(server) = server() else { return };
    let db = TestDb::new(&server, "stream");
    let mut c = db.conn();
    c.execute_batch(
        "SET TIME ZONE 'UTC';
         CREATE TABLE v(i2 smallint, i4 integer, i8 bigint, b boolean, t text, vc varchar(20), ch char(5), nm name,
           j json, jb jsonb, n numeric, n3 numeric(12,3), d date, tm time, ts timestamp, tz timestamptz);
         INSERT INTO v VALUES
           (-32768, 2147483647, -9223372036854775808, true, E'tab\\there\\nline \\\\ é✓', 'x', 'ab', 'name',
            '{\"b\": 1,  \"a\": [1, 2]}', '{\"b\": 1, \"a\": [1, 2]}', 'NaN', 1.5, '2000-01-01', '00:00:00',
            '2000-01-01 00:00:00', '2024-05-06 07:08:09.5+02'),
           (0, -1, 0, false, '', '', '', '', '[]', '[]', 0, 0, '0001-01-01', '23:59:59.999999',
            '1999-12-31 23:59:59.999999', '0044-03-15 12:00:00+00 BC'),
           (1, 1, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, -0.0005, -12345.678, '0001-12-31 BC', '24:00:00',
            '0044-03-15 12:00:00 BC', 'infinity'),
           (2, 2, 2, true, 'x', 'y', 'z', 'w', 'null', 'null', 123456789012345678901234567890.123456789, 1000000,
            'infinity', '12:00:00.5', '12345-01-01 00:00:00', '-infinity'),
           (3, 3, 3, true, 'x', 'y', 'z', 'w', '1', '1', 0.00000000000000000001, NULL, '-infinity', NULL,
            'infinity', '1900-02-28 01:02:03.04+00'),
           (4, 4, 4, true, 'x', 'y', 'z', 'w', '1', '1', 10000, 0.001, '12345-06-07', NULL, '-infinity', NULL);",
    )
    .unwrap();
    let same = |c: &mut Box<dyn Connection>, sql: &str| {
        let mut streamed = Vec::new();
        c.stream(sql, 2, &mut |page| {
            assert!(page.len() <= 2, "pages of at most the batch");
            streamed.extend(page);
            Ok(())
        })
        .unwrap();
        assert_eq!(streamed, c.query(sql).unwrap(), "{sql}");
    };
    same(&mut c, "SELECT * FROM v ORDER BY i2");
    // A float column, and timestamptz outside UTC, are read in COPY's text format.
    same(&mut c, "SELECT i2, 0.1::float8, 1e20::float8, 0.1::real FROM v ORDER BY i2");
    c.execute_batch("SET TIME ZONE 'Europe/Paris'").unwrap();
    same(&mut c, "SELECT tz, ts FROM v ORDER BY i2");
}
