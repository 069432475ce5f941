//! Scale, coarsely: DESIGN.md wants introspection of 500 tables "well under a second", probes
//! folded into one scan per table, and so on. This does not time stages (a debug build on a
//! shared machine cannot); it catches the blow-ups that would make a real schema unusable: a
//! rehearsal of 500 tables with foreign keys and indexes must finish in well under a minute.

mod common;

use common::Fixture;
use std::time::{Duration, Instant};

#[test]
fn five_hundred_tables_rehearse_in_well_under_a_minute() {
    let table = |i: usize, extra: &str| {
        format!(
            "CREATE TABLE t{i} (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL, parent INTEGER, note TEXT{extra},\n  \
             FOREIGN KEY (parent) REFERENCES t{} (id));\nCREATE INDEX t{i}_name ON t{i} (name);\n",
            i.saturating_sub(1)
        )
    };
    // One transaction: 1500 autocommits would cost more than the rehearsal.
    let mut live = String::from("BEGIN;\n");
    let mut target = String::new();
    for i in 0..500 {
        live.push_str(&table(i, ""));
        live.push_str(&format!("INSERT INTO t{i} VALUES (1, 'a', NULL, 'x'), (2, 'b', 1, NULL);\n"));
        target.push_str(&table(i, if i % 10 == 0 { ", extra INTEGER" } else { "" }));
    }
    live.push_str("COMMIT;\n");
    let fx = Fixture::sqlite(&live, &target, None);
    let started = Instant::now();
    let out = fx.run_json(&[]);
    let took = started.elapsed();
    println!("500 tables rehearsed in {took:?}");
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let r = out.json().unwrap();
    assert_eq!(r["findings"].as_array().map(Vec::len), Some(50), "one column_added per tenth table");
    assert_eq!(r["rehearsal"]["rows_after"].as_object().map(|m| m.len()), Some(500));
    assert!(took < Duration::from_secs(45), "500 tables took {took:?}");
}
