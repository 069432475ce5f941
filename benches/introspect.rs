//! Introspection speed on a large schema: 500 tables / 5,000 columns, each table with a primary
//! key, an index and a foreign key, in a fresh PostgreSQL database (REHEARSE_TEST_PG_URL) and in a
//! temporary SQLite file. Prints the figures (`cargo bench --bench introspect`); it never asserts
//! anything about time, which depends on the machine.

use rehearse::engine::postgres::Postgres;
use rehearse::engine::{self, Access, Engine};
use std::time::Instant;

const TABLES: usize = 500;
const RUNS: usize = 7;

/// Ten columns per table; each table references the one before it (the first references itself).
fn ddl() -> String {
    let mut out = String::new();
    for i in 0..TABLES {
        let parent = if i == 0 { 0 } else { i - 1 };
        out.push_str(&format!(
            "CREATE TABLE t{i:03} (id integer PRIMARY KEY, parent_id integer REFERENCES t{parent:03} (id), \
             name varchar(40), qty integer NOT NULL DEFAULT 0, price numeric(10,2), note text, \
             seen timestamp, ok boolean, ratio double precision, born date);\n\
             CREATE INDEX t{i:03}_name ON t{i:03} (name);\n"
        ));
    }
    out
}

/// Introspect `RUNS` times after one warm-up; print min and median.
fn measure(label: &str, db: &dyn Engine) {
    let started = Instant::now();
    let mut conn = db.connect().expect("connect");
    let first = conn.introspect().expect("introspect");
    let cold = started.elapsed().as_secs_f64() * 1000.0;
    let mut ms: Vec<f64> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            let s = conn.introspect().expect("introspect");
            assert_eq!(s.tables.len(), first.tables.len());
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    let columns: usize = first.tables.iter().map(|t| t.columns.len()).sum();
    let fks: usize = first.tables.iter().map(|t| t.foreign_keys.len()).sum();
    let indexes: usize = first.tables.iter().map(|t| t.indexes.len()).sum();
    println!(
        "{label:<10} introspect: min {:.1} ms, median {:.1} ms over {RUNS} runs (connect + first run {cold:.1} ms); \
         {} tables, {columns} columns, {fks} foreign keys, {indexes} indexes",
        ms[0],
        ms[RUNS / 2],
        first.tables.len()
    );
}

fn postgres(ddl: &str) {
    let Some(server) = std::env::var("REHEARSE_TEST_PG_URL").ok().filter(|u| !u.is_empty()) else {
        println!("postgres   SKIPPED: REHEARSE_TEST_PG_URL is not set (eval \"$(scripts/services.sh up postgres)\")");
        return;
    };
    let name = format!("rehearse_bench_{}", std::process::id());
    let mut admin = engine::from_url(&server, Access::ReadWrite).unwrap().connect().unwrap();
    admin.execute_batch(&format!("DROP DATABASE IF EXISTS \"{name}\"")).unwrap();
    admin.execute_batch(&format!("CREATE DATABASE \"{name}\"")).unwrap();
    let url = Postgres::from_url(&server, Access::ReadOnly).unwrap().params().with_dbname(&name).url();
    let result = std::panic::catch_unwind(|| {
        let t = Instant::now();
        engine::from_url(&url, Access::ReadWrite).unwrap().connect().unwrap().execute_batch(ddl).unwrap();
        println!("postgres   schema created in {:.0} ms", t.elapsed().as_secs_f64() * 1000.0);
        // As a rehearsal reads live: read-only.
        measure("postgres", engine::from_url(&url, Access::ReadOnly).unwrap().as_ref());
    });
    admin.execute_batch(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).unwrap();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

fn sqlite(ddl: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    rusqlite::Connection::open(&path).unwrap().execute_batch(ddl).unwrap();
    measure("sqlite", engine::from_url(&format!("sqlite://{}", path.display()), Access::ReadOnly).unwrap().as_ref());
}

fn main() {
    // `cargo test --benches` runs this with --bench absent: keep that quick and quiet.
    if !std::env::args().any(|a| a == "--bench") {
        println!("introspect benchmark: run it with `cargo bench --bench introspect`");
        return;
    }
    let ddl = ddl();
    postgres(&ddl);
    sqlite(&ddl);
}
