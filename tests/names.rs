//! Index and constraint names through the real binary, on every engine: an upgrade whose new
//! schema names the same indexes and constraints otherwise renames them to the new schema's names
//! (verification fails while a name differs), so the next release's own migration, which drops
//! them by those names, runs on the promoted live; and `rollback --live` accepts a promotion that
//! renamed them (the recorded fingerprint names what live really got).
//!
//! Regression: verification used to pass with the old names; the next release's `DROP INDEX <new
//! name>` then failed on MariaDB, and `rollback --live` was refused after every clean promotion.

mod common;

use common::db::{server_for, Engine, LiveDb};
use common::{app_config, git, make_app_repo, rehearse, write_yaml, Output, Temp};
use std::path::Path;

const V1: &str = "CREATE TABLE office (id INTEGER NOT NULL PRIMARY KEY, code VARCHAR(16) NOT NULL, name VARCHAR(64),
   CONSTRAINT office_code UNIQUE (code));
CREATE INDEX office_name ON office (name);
CREATE TABLE staff (id INTEGER NOT NULL PRIMARY KEY, office_id INTEGER,
   CONSTRAINT staff_office FOREIGN KEY (office_id) REFERENCES office (id),
   CONSTRAINT staff_id_positive CHECK (id > 0));
INSERT INTO office VALUES (1, 'HQ', 'Head office'), (2, 'FLD', 'Field');
INSERT INTO staff VALUES (1, 1), (2, 2), (3, NULL);";

/// v2: the same objects, under the names the new code's migrations know them by.
const V2: &str = "CREATE TABLE office (id INTEGER NOT NULL PRIMARY KEY, code VARCHAR(16) NOT NULL, name VARCHAR(64),
   CONSTRAINT office_code_key UNIQUE (code));
CREATE INDEX office_name_idx ON office (name);
CREATE TABLE staff (id INTEGER NOT NULL PRIMARY KEY, office_id INTEGER,
   CONSTRAINT staff_office_fk FOREIGN KEY (office_id) REFERENCES office (id),
   CONSTRAINT staff_id_check CHECK (id > 0));";

/// v3: the index is gone (and, where the engine can drop them by name, the unique key and the
/// check), with the new code's own migration that drops them by name.
fn v3(engine: Engine) -> (&'static str, &'static str) {
    match engine {
        Engine::Sqlite => (
            "CREATE TABLE office (id INTEGER NOT NULL PRIMARY KEY, code VARCHAR(16) NOT NULL, name VARCHAR(64),
               CONSTRAINT office_code_key UNIQUE (code));
             CREATE TABLE staff (id INTEGER NOT NULL PRIMARY KEY, office_id INTEGER,
               CONSTRAINT staff_office_fk FOREIGN KEY (office_id) REFERENCES office (id),
               CONSTRAINT staff_id_check CHECK (id > 0));",
            "DROP INDEX office_name_idx;\n",
        ),
        Engine::Postgres => (
            "CREATE TABLE office (id INTEGER NOT NULL PRIMARY KEY, code VARCHAR(16) NOT NULL, name VARCHAR(64));
             CREATE TABLE staff (id INTEGER NOT NULL PRIMARY KEY, office_id INTEGER,
               CONSTRAINT staff_office_fk FOREIGN KEY (office_id) REFERENCES office (id));",
            "DROP INDEX office_name_idx;\nALTER TABLE office DROP CONSTRAINT office_code_key;\nALTER TABLE staff DROP CONSTRAINT staff_id_check;\n",
        ),
        Engine::Mysql => (
            "CREATE TABLE office (id INTEGER NOT NULL PRIMARY KEY, code VARCHAR(16) NOT NULL, name VARCHAR(64));
             CREATE TABLE staff (id INTEGER NOT NULL PRIMARY KEY, office_id INTEGER,
               CONSTRAINT staff_office_fk FOREIGN KEY (office_id) REFERENCES office (id));",
            "DROP INDEX office_name_idx ON office;\nDROP INDEX office_code_key ON office;\nALTER TABLE staff DROP CONSTRAINT staff_id_check;\n",
        ),
    }
}

struct Story {
    tmp: Temp,
    live: LiveDb,
}

impl Story {
    /// Live at v1; the app repository with v2 tagged; the usual config at revision `v2`. None when
    /// the engine's server is not configured (server_for says so, and fails under CI).
    fn new(engine: Engine) -> Option<Story> {
        let server = match engine {
            Engine::Sqlite => None,
            _ => Some(server_for(engine)?),
        };
        let tmp = Temp::new("rehearse-names-");
        let live = LiveDb::create(engine, server.as_ref(), tmp.path()).expect("make live");
        live.load(V1).expect("load live");
        make_app_repo(&tmp.path().join("app"), V2, None).expect("make the app repository");
        let story = Story { tmp, live };
        story.config("v2");
        Some(story)
    }

    fn dir(&self) -> &Path {
        self.tmp.path()
    }

    fn config(&self, revision: &str) {
        let mut v = app_config(&self.live.url, self.dir(), false);
        v["app"]["revision"] = revision.into();
        write_yaml(&self.dir().join("upgrade.yaml"), &v);
    }

    fn run(&self, args: &[&str]) -> Output {
        let cfg = self.dir().join("upgrade.yaml");
        let mut a = vec![args[0], "--config", cfg.to_str().unwrap()];
        a.extend_from_slice(&args[1..]);
        rehearse(a, self.dir())
    }

    /// Rehearse v2 (the names change, verified), then promote it.
    fn upgrade_to_v2(&self) {
        let out = self.run(&["run", "--format", "json"]);
        assert_eq!(out.code, Some(0), "v2 rehearsal\n{}", out.describe());
        let report = out.json().unwrap();
        assert_eq!(report["rehearsal"]["status"], "passed", "{report:#}");
        let kinds: Vec<String> =
            report["findings"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap().to_string()).collect();
        assert!(kinds.iter().any(|k| k == "index_renamed"), "no index_renamed finding: {kinds:?}");
        if self.live.engine != Engine::Sqlite {
            assert!(kinds.iter().any(|k| k == "constraint_renamed"), "no constraint_renamed finding: {kinds:?}");
        }
        assert!(kinds.iter().all(|k| k.ends_with("_renamed")), "only names change: {kinds:?}");
        let out = self.run(&["run", "--live", "--yes"]);
        assert_eq!(out.code, Some(0), "v2 promotion\n{}", out.describe());
        // Live has the target's names now.
        let fresh = self.run(&["run", "--format", "json"]).json().unwrap();
        assert_eq!(fresh["findings"], serde_json::json!([]), "live still differs from v2: {fresh:#}");
    }
}

fn renames_then_a_release_that_drops_them_by_name(engine: Engine) {
    let Some(story) = Story::new(engine) else { return };
    story.upgrade_to_v2();
    // v3: the new code's own migration drops the objects by the names v2 gave them.
    let (schema, migration) = v3(engine);
    let app = story.dir().join("app");
    std::fs::write(app.join("db/schema.sql"), schema).unwrap();
    git(&app, &["commit", "-qam", "v3"]).unwrap();
    git(&app, &["tag", "v3"]).unwrap();
    story.config("v3");
    let script = story.dir().join("v3.sql");
    std::fs::write(&script, migration).unwrap();
    let out = story.run(&["run", "--format", "json", "--script", script.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "the release's own migration, by name\n{}", out.describe());
    let report = out.json().unwrap();
    assert_eq!(report["rehearsal"]["status"], "passed", "{report:#}");
    let out = story.run(&["run", "--live", "--yes"]);
    assert_eq!(out.code, Some(0), "v3 promotion\n{}", out.describe());
}

fn rollback_after_a_promotion_that_renamed(engine: Engine) {
    let Some(story) = Story::new(engine) else { return };
    story.upgrade_to_v2();
    let out = story.run(&["rollback", "--live", "--yes"]);
    assert_eq!(out.code, Some(0), "rollback after a clean promotion\n{}", out.describe());
}

#[test]
fn sqlite_index_renamed_to_the_new_names_then_a_release_drops_them_by_name() {
    renames_then_a_release_that_drops_them_by_name(Engine::Sqlite);
}

#[test]
fn postgres_indexes_and_constraints_renamed_to_the_new_names_then_a_release_drops_them_by_name() {
    renames_then_a_release_that_drops_them_by_name(Engine::Postgres);
}

#[test]
fn mysql_indexes_and_constraints_renamed_to_the_new_names_then_a_release_drops_them_by_name() {
    renames_then_a_release_that_drops_them_by_name(Engine::Mysql);
}

#[test]
fn sqlite_rollback_live_works_after_a_promotion_that_renamed_an_index() {
    rollback_after_a_promotion_that_renamed(Engine::Sqlite);
}

/// Known bug, left to the rollback rework: the fingerprint no longer refuses it, but `pg_restore
/// --clean` drops objects by the dump's (old) names, so it cannot drop `office_pkey` while the
/// renamed `staff_office_fk` depends on it, and the rollback fails (live stays upgraded, one
/// transaction). Fails until rollback replaces objects whatever their names on live.
#[test]
fn postgres_rollback_live_works_after_a_promotion_that_renamed_indexes_and_constraints() {
    rollback_after_a_promotion_that_renamed(Engine::Postgres);
}
