//! Every upgrade story in `tests/scenarios/` that names PostgreSQL, with all its variants, against
//! the test server in REHEARSE_TEST_PG_URL (`eval "$(scripts/services.sh up)"`). Unset: skipped
//! with a loud note, or a failure when CI=true.

mod common;

use common::db::Engine;

/// Stories not expected to pass yet on PostgreSQL (`REHEARSE_RUN_PENDING=1 cargo test --test
/// scenarios_postgres -- --nocapture` says which pending stories already pass).
const PENDING: &[&str] = &[];

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
fn a_test_copy_rehearse_did_not_make_is_refused_and_left_alone() {
    common::scenario::foreign_test_copy_is_refused(Engine::Postgres);
}

#[test]
fn a_password_in_the_live_url_is_never_shown_or_written() {
    common::scenario::password_is_never_shown(Engine::Postgres);
}
