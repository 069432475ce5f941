//! Every upgrade story in `tests/scenarios/` that names SQLite, with all its variants, through the
//! real binary: the same checks as the company's acceptance tool, plus our own (see
//! `common/scenario.rs`). One test, so one run lists every failing story in one message.
//!
//! Stories whose file says `pending: [sqlite]` are skipped (split/merge: issue 5 implements them).

mod common;

use common::db::Engine;

/// Stories that fail on SQLite because of a product bug, each with its bug. They are left out of
/// the suite so it stays a regression gate, and pinned by an `#[ignore]`d test below that fails
/// until the bug is fixed. Keep it short.
const KNOWN_BUGS: &[(&str, &str)] = &[(
    "wal-mode-live",
    "a rehearsal of a WAL-mode live file leaves live-wal and live-shm next to it (created by the read-only open)",
), (
    "check-on-renamed-column",
    "a new CHECK on a renamed column is probed with the new column name on the live table, fails, and becomes human (unprobed)",
)];

#[test]
fn every_sqlite_scenario_passes_and_leaves_live_untouched() {
    common::scenario::run_suite(Engine::Sqlite, &[], KNOWN_BUGS);
}

#[test]
#[ignore = "bug: a rehearsal of a WAL-mode SQLite live leaves -wal and -shm files next to it, owned by whoever rehearsed"]
fn wal_mode_live_is_left_without_new_files_beside_it() {
    common::scenario::run_named(Engine::Sqlite, &["wal-mode-live"]);
}

#[test]
#[ignore = "bug: a new CHECK on a renamed column is probed with the new column name, so a satisfied check needs a human"]
fn check_on_a_renamed_column_is_probed_under_the_live_name() {
    common::scenario::run_named(Engine::Sqlite, &["check-on-renamed-column"]);
}

/// The split and merge stories, pending until issue 5 detects splits and merges. Run with
/// `cargo test -- --ignored split_and_merge` to see how far the product is.
#[test]
#[ignore = "pending: issue 5 implements table split/merge"]
fn split_and_merge_scenarios_pass_on_sqlite() {
    common::scenario::run_named(Engine::Sqlite, &["split-table", "merge-tables"]);
}

#[test]
fn the_harness_sees_a_change_to_live_and_reads_values_back_exactly() {
    common::scenario::harness_self_check(Engine::Sqlite);
}

#[test]
fn every_scenario_sql_loads_on_sqlite() {
    common::scenario::sql_loads(Engine::Sqlite);
}
