//! Every upgrade story in `tests/scenarios/` that names PostgreSQL, with all its variants, against
//! the test server in REHEARSE_TEST_PG_URL (`eval "$(scripts/services.sh up)"`). Unset: skipped
//! with a loud note, or a failure when CI=true.

mod common;

use common::db::Engine;

/// Stories not expected to pass yet because the PostgreSQL engine is being written. The lead
/// empties this list as the engine lands (`REHEARSE_RUN_PENDING=1 cargo test --test
/// scenarios_postgres -- --nocapture` says which pending stories already pass).
const PENDING: &[&str] = &[
    "split-table",
    "merge-tables",
    "add-nullable-column",
    "add-not-null-without-default",
    "rename-column",
    "ambiguous-rename",
    "type-change-castable",
    "type-change-value-map",
    "drop-column-with-data",
    "unique-with-duplicates",
    "fk-with-orphans",
    "narrow-varchar",
    "set-not-null-with-nulls",
    "odd-identifiers",
    "json-text-to-jsonb",
    "indexes-and-composite-unique",
    "drop-table",
    "new-module-tables",
    "rename-with-widening",
    "table-rename-via-hints",
    "not-null-on-empty-table",
    "hinted-ambiguous-rename-plus-drop",
    "check-violated",
    "check-satisfied",
    "composite-fk-orphans",
    "drop-index-rename-column",
    "value-map-misses-a-value",
    "quotes-and-unicode",
    "unique-allows-nulls",
    "text-to-integer-with-bad-values",
    "rename-then-not-null",
    "unique-on-renamed-column",
    "table-rename-keeps-references",
    "check-on-renamed-column",
];

#[test]
fn every_postgres_scenario_passes_and_leaves_live_untouched() {
    common::scenario::run_suite(Engine::Postgres, PENDING, &[]);
}

#[test]
fn the_harness_sees_a_change_to_live_and_reads_values_back_exactly() {
    common::scenario::harness_self_check(Engine::Postgres);
}

#[test]
fn every_scenario_sql_loads_on_postgres() {
    common::scenario::sql_loads(Engine::Postgres);
}

#[test]
#[ignore = "pending: the postgres engine is not finished (un-ignore when it lands)"]
fn a_test_copy_rehearse_did_not_make_is_refused_and_left_alone() {
    common::scenario::foreign_test_copy_is_refused(Engine::Postgres);
}

#[test]
#[ignore = "pending: the postgres engine is not finished (un-ignore when it lands)"]
fn a_password_in_the_live_url_is_never_shown_or_written() {
    common::scenario::password_is_never_shown(Engine::Postgres);
}
