//! Introspection cost on MySQL/MariaDB: 500 tables, 5,000 columns (with primary keys, a unique,
//! an index, a check and a foreign key per table) in a fresh database, read back through the
//! library. Prints milliseconds; asserts nothing about time (machines differ).
//!
//! `REHEARSE_TEST_MYSQL_URL=mysql://root@127.0.0.1:53306/mysql cargo bench --bench mysql_introspect`
//! It never touches a database other than the one it creates and drops.

use rehearse::engine::mysql::Mysql;
use rehearse::engine::{Access, Connection, Engine};
use std::time::Instant;

const TABLES: usize = 500;
const COLUMNS: usize = 10;
const RUNS: usize = 5;

fn main() {
    let Ok(base) = std::env::var("REHEARSE_TEST_MYSQL_URL") else {
        eprintln!(
            "mysql_introspect: skipped, REHEARSE_TEST_MYSQL_URL is not set (start MariaDB with: eval \"$(scripts/services.sh up mysql)\")"
        );
        return;
    };
    let db = format!("rehearse_bench_{}", std::process::id());
    let url_for = |name: &str| {
        let mut u = url::Url::parse(&base).expect("REHEARSE_TEST_MYSQL_URL is a URL");
        u.set_path(&format!("/{name}"));
        u.to_string()
    };
    let connect = |name: &str, access| -> Box<dyn Connection> {
        Mysql::from_url(&url_for(name), access).and_then(|e| e.connect()).expect("connect")
    };
    let mut admin = connect("mysql", Access::ReadWrite);
    admin.query(&format!("DROP DATABASE IF EXISTS `{db}`")).expect("drop");
    admin.query(&format!("CREATE DATABASE `{db}`")).expect("create");

    let started = Instant::now();
    let mut ddl = String::new();
    for t in 0..TABLES {
        ddl.push_str(&format!("CREATE TABLE t{t:03} (id int NOT NULL AUTO_INCREMENT PRIMARY KEY"));
        // id, c1..c8 and parent_id: COLUMNS per table.
        for c in 1..COLUMNS - 1 {
            let ty = match c % 5 {
                0 => "varchar(64) NOT NULL DEFAULT ''",
                1 => "int(11) DEFAULT NULL",
                2 => "decimal(10,2) DEFAULT 0.00",
                3 => "datetime DEFAULT current_timestamp()",
                _ => "tinyint(1) NOT NULL DEFAULT 0",
            };
            ddl.push_str(&format!(", c{c} {ty}"));
        }
        ddl.push_str(", parent_id int NULL");
        if t > 0 {
            ddl.push_str(&format!(", CONSTRAINT fk_t{t:03} FOREIGN KEY (parent_id) REFERENCES t{:03} (id)", t - 1));
        }
        ddl.push_str(&format!(
            ", UNIQUE KEY uq_t{t:03} (c5), KEY ix_t{t:03} (c1, c2), CONSTRAINT ck_t{t:03} CHECK (c2 >= 0));\n"
        ));
    }
    let mut setup = connect(&db, Access::ReadWrite);
    setup.execute_batch("SET SESSION foreign_key_checks = 0").expect("session");
    setup.execute_batch(&ddl).expect("schema");
    drop(setup);
    eprintln!("mysql_introspect: created {TABLES} tables in {:.0} ms", started.elapsed().as_secs_f64() * 1000.0);

    let mut conn = connect(&db, Access::ReadOnly);
    let mut times = Vec::new();
    let mut columns = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let schema = conn.introspect().expect("introspect");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        columns = schema.tables.iter().map(|t| t.columns.len()).sum::<usize>();
        assert_eq!(schema.tables.len(), TABLES);
    }
    drop(conn);
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "mysql introspect: {TABLES} tables, {columns} columns: median {:.1} ms, min {:.1} ms, max {:.1} ms ({RUNS} runs)",
        times[RUNS / 2],
        times[0],
        times[RUNS - 1]
    );
    admin.query(&format!("DROP DATABASE IF EXISTS `{db}`")).expect("drop");
}
