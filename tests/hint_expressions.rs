//! A `defaults` hint is SQL pasted into the script. A crafted one must never end the statement it
//! lands in and add statements of its own (another column overwritten on live, the report PASSED):
//! every hint expression is checked to be one scalar expression, by the script's own splitting
//! rules and by the engine (read-only, on the test copy), and refused before anything runs.
//! Legitimate expressions still pass. Each engine whose server is reachable is run.

mod common;

use common::db::{server_for, Engine, LiveDb};
use common::{make_app_repo, rehearse, write_yaml, Output, Temp};
use std::ffi::OsStr;

const LIVE: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, name VARCHAR(32), other VARCHAR(32));
INSERT INTO t VALUES (1, 'Ada', 'keep'), (2, 'Alan', NULL);";
const TARGET: &str =
    "CREATE TABLE t (id INTEGER PRIMARY KEY, name VARCHAR(32), other VARCHAR(32), code VARCHAR(64) NOT NULL);";

struct Story {
    tmp: Temp,
    live: LiveDb,
    config: std::path::PathBuf,
}

impl Story {
    fn new(engine: Engine) -> Option<Story> {
        let server = match engine {
            Engine::Sqlite => None,
            _ => Some(server_for(engine)?),
        };
        let tmp = Temp::new("rehearse-hintexpr-");
        let live = LiveDb::create(engine, server.as_ref(), tmp.path()).expect("make the live database");
        live.load(LIVE).expect("load live");
        make_app_repo(&tmp.path().join("app"), TARGET, None).expect("make the app repository");
        let config = tmp.path().join("upgrade.yaml");
        let mut cfg = common::app_config(&live.url, tmp.path(), false);
        cfg["sysadmin_hints"] = tmp.path().join("hints.yaml").to_str().unwrap().into();
        write_yaml(&config, &cfg);
        Some(Story { tmp, live, config })
    }

    /// Rehearse with `defaults: { t.code: <expr> }` as the sysadmin's hint.
    fn run_with_default(&self, expr: &str) -> Output {
        let hints = serde_json::json!({ "defaults": { "t.code": expr } });
        write_yaml(&self.tmp.path().join("hints.yaml"), &hints);
        let args = [
            OsStr::new("run"),
            OsStr::new("--config"),
            self.config.as_os_str(),
            OsStr::new("--format"),
            OsStr::new("json"),
        ];
        let out = rehearse(args, self.tmp.path());
        assert!(!out.panicked(), "{}", out.describe());
        out
    }
}

#[test]
fn a_crafted_defaults_hint_is_refused_before_anything_runs_and_live_is_untouched() {
    for engine in [Engine::Sqlite, Engine::Postgres, Engine::Mysql] {
        let Some(story) = Story::new(engine) else { continue };
        let before = story.live.fingerprint().unwrap();
        let crafted = [
            // Ends the expression and overwrites another column.
            ("'x'); UPDATE t SET other = 'pwned'; --", "`)`"),
            ("'x' WHERE 1 = 1; UPDATE t SET other = 'pwned'", "`;`"),
            // A comment that swallows what the script writes after the value.
            ("'x' -- the rest of the line is gone", "comment"),
            ("'x' /* the rest is gone", "comment"),
            // Closes the script's own parentheses (SQLite's rebuild, COALESCE(...)).
            ("'x') FROM t UNION SELECT ('y'", "`)`"),
            // Lexically one expression, but the engine reads a write in it (PostgreSQL's
            // RETURNING; a syntax error elsewhere): the engine's own check refuses it.
            ("(DELETE FROM t RETURNING 'x')", "the database refuses it"),
        ];
        for (expr, why) in crafted {
            let out = story.run_with_default(expr);
            let last = out.stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default().to_string();
            assert_eq!(out.code, Some(2), "{} {expr}: a usage error\n{}", engine.name(), out.describe());
            assert!(
                last.starts_with("rehearse: hints: defaults \"t.code\"")
                    && last.contains("not one SQL expression")
                    && last.contains(why),
                "{} {expr}: one line naming the hint and why: {last}",
                engine.name()
            );
            assert!(out.stdout.trim().is_empty(), "{} {expr}: no report: nothing ran", engine.name());
            if let Some(change) = story.live.fingerprint().unwrap().changed_from(&before) {
                panic!("{} {expr}: live changed: {change}", engine.name());
            }
        }
        // Legitimate expressions still rehearse (and fill the column as written).
        let legit: &[(&str, Option<&str>)] = &[
            ("'UNKNOWN'", Some("UNKNOWN")),
            ("lower(name)", Some("ada")),
            ("coalesce(other, name)", Some("keep")),
            ("CURRENT_TIMESTAMP", None),
        ];
        for (expr, first) in legit {
            let out = story.run_with_default(expr);
            assert_eq!(out.code, Some(0), "{} {expr}: passes\n{}", engine.name(), out.describe());
            let r = out.json().unwrap();
            assert_eq!(r["rehearsal"]["status"], "passed", "{} {expr}", engine.name());
            if let Some(want) = first {
                let workdir = story.tmp.path().join("work");
                let rows = story.live.query_test_copy(&workdir, "SELECT code FROM t WHERE id = 1").unwrap();
                assert_eq!(rows, [[want.to_string()]], "{} {expr}", engine.name());
            }
            assert!(story.live.fingerprint().unwrap().changed_from(&before).is_none(), "a rehearsal never writes live");
        }
    }
}

/// A rehearsal record whose hints hold a crafted expression (written by an older rehearse, or
/// edited since) is refused by `--live` before anything touches live.
#[test]
fn live_and_bundle_refuse_a_rehearsal_record_whose_defaults_hint_is_not_one_expression() {
    let story = Story::new(Engine::Sqlite).unwrap();
    let out = story.run_with_default("'UNKNOWN'");
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let record = story.tmp.path().join("work").join("rehearsal.json");
    let text = std::fs::read_to_string(&record).unwrap();
    let edited = text.replace("\"'UNKNOWN'\"", "\"'x' WHERE 1 = 1; UPDATE t SET other = 'pwned'\"");
    assert_ne!(text, edited, "the record holds the hint");
    std::fs::write(&record, edited).unwrap();
    let before = story.live.fingerprint().unwrap();
    let args = [
        OsStr::new("run"),
        OsStr::new("--config"),
        story.config.as_os_str(),
        OsStr::new("--live"),
        OsStr::new("--yes"),
    ];
    let out = rehearse(args, story.tmp.path());
    assert_eq!(out.code, Some(5), "refused by a guard\n{}", out.describe());
    let last = out.stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default();
    assert!(last.contains("defaults \"t.code\"") && last.contains("live was not changed"), "{last}");
    assert!(story.live.fingerprint().unwrap().changed_from(&before).is_none(), "live untouched");
    // Nor is it sealed into a bundle for SQLite clients.
    let out_file = story.tmp.path().join("upgrade.rhb");
    let args = [
        OsStr::new("bundle"),
        OsStr::new("--config"),
        story.config.as_os_str(),
        OsStr::new("--out"),
        out_file.as_os_str(),
    ];
    let out = rehearse(args, story.tmp.path());
    assert_eq!(out.code, Some(5), "bundle refuses\n{}", out.describe());
    assert!(out.stderr.contains("defaults \"t.code\""), "{}", out.describe());
    assert!(!out_file.exists(), "no bundle written");
}
