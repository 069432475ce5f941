//! Guards through the real binary: the generated script re-measures, under `-- guard(rehearse):`
//! markers, the figures its decisions rest on. On the rehearsed data they hold; once live has
//! moved (one more NULL row than the sysadmin's backfill was decided for) both `--live` and a
//! re-run of the edited script fail at the guard, with its one-line message, and leave live and
//! the test copy as they were. Deleting the marker line drops the check. Guards whose query an
//! earlier step would invalidate (a renamed table, a renamed parent column) run first and hold.

mod common;

use common::db::{server_for, Engine, LiveDb, Server};
use common::{make_app_repo, rehearse, write_yaml, Output, Temp};
use serde_json::Value as Json;
use std::ffi::OsStr;
use std::path::PathBuf;

const LIVE: &str = "CREATE TABLE gis_location (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL, country VARCHAR(2));
INSERT INTO gis_location VALUES (1, 'Colombo', 'LK'), (2, 'Kandy', NULL), (3, 'Galle', NULL), (4, 'Delft', 'NL');";
const TARGET: &str =
    "CREATE TABLE gis_location (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL, country VARCHAR(2) NOT NULL);";
const MARKER: &str = "-- guard(rehearse): expect 2 NULL values in gis_location.country";

/// A live database of any engine, an app repository at v2, a config and a workdir.
struct Story {
    tmp: Temp,
    live: LiveDb,
    config: PathBuf,
    workdir: PathBuf,
}

impl Story {
    fn new(engine: Engine, server: Option<&Server>, live_sql: &str, target_sql: &str, hints: Option<&str>) -> Story {
        let tmp = Temp::new("rehearse-guards-");
        let live = LiveDb::create(engine, server, tmp.path()).expect("make the live database");
        live.load(live_sql).expect("load live");
        let repo = tmp.path().join("app");
        make_app_repo(&repo, target_sql, hints).expect("make the app repository");
        let config = tmp.path().join("upgrade.yaml");
        let workdir = tmp.path().join("work");
        write_yaml(&config, &common::app_config(&live.url, tmp.path(), hints.is_some()));
        Story { tmp, live, config, workdir }
    }

    fn run(&self, extra: &[&str]) -> Output {
        let mut args: Vec<&OsStr> = vec![OsStr::new("run"), OsStr::new("--config"), self.config.as_os_str()];
        args.extend(extra.iter().map(OsStr::new));
        let out = rehearse(args, self.tmp.path());
        assert!(!out.panicked(), "{}", out.describe());
        out
    }

    fn run_json(&self, extra: &[&str]) -> (Output, Json) {
        let mut args = vec!["--format", "json"];
        args.extend(extra);
        let out = self.run(&args);
        let r = out.json().unwrap_or_else(|e| panic!("{e}"));
        (out, r)
    }

    /// Rows of a query on live itself.
    fn live_rows(&self, sql: &str) -> Vec<Vec<String>> {
        match (&self.live.path, &self.live.server) {
            (Some(p), _) => common::db::sqlite_query(p, sql).unwrap(),
            (None, Some(s)) => s.query(&self.live.name, sql).unwrap(),
            _ => unreachable!(),
        }
    }

    fn script(&self) -> String {
        std::fs::read_to_string(self.workdir.join("migration.sql")).expect("the generated script")
    }
}

/// 1-based line of the first line equal to `text` (trimmed).
fn line_of(script: &str, text: &str) -> Option<usize> {
    script.lines().position(|l| l.trim() == text).map(|i| i + 1)
}

/// The sysadmin's decision for the NULL countries: every NULL becomes 'LK', whatever their number.
/// SQLite's rebuild has the TODO above the column's fill expression; PostgreSQL and MySQL above a
/// drafted `UPDATE ... SET "country" = NULL WHERE "country" IS NULL`.
fn decide_backfill(script: &str, engine: Engine) -> String {
    let q = |s: &str| if engine == Engine::Mysql { format!("`{s}`") } else { format!("\"{s}\"") };
    let mut out = Vec::new();
    let mut after_todo = false;
    for l in script.lines() {
        if l.trim_start().starts_with("-- TODO(rehearse):") {
            after_todo = true;
            continue;
        }
        let l = match after_todo {
            true if l.trim().trim_end_matches(',') == q("country") => {
                l.replace(&q("country"), &format!("COALESCE({}, 'LK')", q("country")))
            }
            true => l.replace("= NULL WHERE", "= 'LK' WHERE"),
            false => l.to_string(),
        };
        after_todo = false;
        out.push(l);
    }
    let decided = out.join("\n") + "\n";
    assert!(decided.contains("'LK'"), "the drafted backfill was not found:\n{script}");
    decided
}

/// The whole story on one engine; `dump` reads live (or the test copy) as comparable text.
fn guard_story(engine: Engine, server: Option<&Server>) {
    let st = Story::new(engine, server, LIVE, TARGET, None);
    let (out, r) = st.run_json(&[]);
    assert_eq!(out.code, Some(3), "2 NULLs without a default: a human decides\n{}", out.describe());
    assert_eq!(r["rehearsal"]["status"], "not_run", "{r:#}");
    let script = st.script();
    let marker = line_of(&script, MARKER).unwrap_or_else(|| panic!("no `{MARKER}` in the script:\n{script}"));
    let select = script.lines().nth(marker).unwrap().trim();
    assert!(select.starts_with("SELECT count(*) - count(") && select.ends_with(';'), "{select}");
    let todo = script.lines().position(|l| l.trim_start().starts_with("-- TODO(rehearse):")).unwrap() + 1;
    assert!(marker < todo, "the guard opens the section, above the TODO it protects:\n{script}");

    // (a) The sysadmin decides; the edited script, guards included, passes on the same data.
    let edited = st.tmp.path().join("edited.sql");
    std::fs::write(&edited, decide_backfill(&script, engine)).unwrap();
    let (out, r) = st.run_json(&["--script", edited.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "the guards hold on the rehearsed data\n{}\n{r:#}", out.describe());
    assert_eq!(r["rehearsal"]["status"], "passed", "{r:#}");

    // (b) Live moves: one more NULL than the decision was made for.
    st.live.load("INSERT INTO gis_location VALUES (5, 'Jaffna', NULL);").unwrap();
    let moved = st.live.dump().unwrap();
    let want = "guard failed: the rehearsal counted 2 NULL values in gis_location.country, the database now has 3";

    // --live: the verdict is still `human` (the read-only re-probe lets it through); the guard
    // stops the script on live, which is left exactly as it was.
    let out = st.run(&["--live", "--yes"]);
    assert_eq!(out.code, Some(4), "a guard fails the promotion like a failed statement\n{}", out.describe());
    assert!(
        out.stderr.contains(&format!("line {}: {want}", marker + 1)) && out.stderr.contains("rehearse again"),
        "{}",
        out.describe()
    );
    assert_eq!(st.live.dump().unwrap(), moved, "live changed by a promotion its guard stopped");

    // The edited script rehearsed again on a fresh copy of the moved live: it fails at the guard,
    // the copy is rolled back (MySQL: restored), and nothing is recorded for --live.
    let (out, r) = st.run_json(&["--script", edited.to_str().unwrap()]);
    assert_eq!(out.code, Some(4), "{}\n{r:#}", out.describe());
    let reh = &r["rehearsal"];
    assert_eq!(reh["status"], "failed", "{r:#}");
    assert_eq!(reh["failed_line"].as_u64(), Some(marker as u64 + 1), "the guard's SELECT is the failing line");
    assert!(reh["error"].as_str().unwrap_or_default().contains(want), "{r:#}");
    let rows = "SELECT id, name, country FROM gis_location ORDER BY id";
    assert_eq!(st.live.query_test_copy(&st.workdir, rows).unwrap(), st.live_rows(rows), "the copy was not rolled back");
    assert!(!st.workdir.join("rehearsal.json").exists(), "a record for a script whose guard failed");

    // Deleting the marker line drops the check: the backfill decided "every NULL", so it passes.
    let unguarded: String = std::fs::read_to_string(&edited)
        .unwrap()
        .lines()
        .filter(|l| l.trim() != MARKER)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&edited, unguarded).unwrap();
    let (out, r) = st.run_json(&["--script", edited.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}\n{r:#}", out.describe());
    let lk = st.live.query_test_copy(&st.workdir, "SELECT count(*) FROM gis_location WHERE country = 'LK'").unwrap();
    assert_eq!(lk, [["4"]], "the decided backfill ran on every NULL");
}

#[test]
fn sqlite_guard_holds_on_the_rehearsed_data_and_stops_live_and_a_rerun_once_live_moved() {
    guard_story(Engine::Sqlite, None);
}

#[test]
fn postgres_guard_holds_on_the_rehearsed_data_and_stops_live_and_a_rerun_once_live_moved() {
    let Some(s) = server_for(Engine::Postgres) else { return };
    guard_story(Engine::Postgres, Some(&s));
}

#[test]
fn mysql_guard_holds_on_the_rehearsed_data_and_stops_live_and_a_rerun_once_live_moved() {
    let Some(s) = server_for(Engine::Mysql) else { return };
    guard_story(Engine::Mysql, Some(&s));
}

/// Zero figures are guarded too (here: no NULL in a column that becomes NOT NULL, on a table the
/// script renames, and no orphan for a foreign key whose parent column the script renames). Their
/// queries name things as they were cloned, so they run in the guards block before the renames,
/// and the generated script passes: a misplaced guard would fail the rehearsal.
fn renamed_story(engine: Engine, server: Option<&Server>) {
    let live = "CREATE TABLE region (id INTEGER PRIMARY KEY, nm VARCHAR(32));
        INSERT INTO region VALUES (1, 'North'), (2, 'South');
        CREATE TABLE site (id INTEGER PRIMARY KEY, region_code INTEGER, label VARCHAR(32));
        CREATE TABLE zone (code INTEGER PRIMARY KEY, title VARCHAR(32));
        INSERT INTO zone VALUES (1, 'a'), (2, 'b');
        INSERT INTO site VALUES (1, 1, 'x'), (2, 2, 'y'), (3, NULL, 'z');";
    let target = "CREATE TABLE area (id INTEGER PRIMARY KEY, nm VARCHAR(32) NOT NULL);
        CREATE TABLE zone (zone_no INTEGER PRIMARY KEY, title VARCHAR(32));
        CREATE TABLE site (id INTEGER PRIMARY KEY, region_code INTEGER REFERENCES zone (zone_no), label VARCHAR(32));";
    let hints = "renames:\n  tables: { region: area }\n  columns: { \"zone.code\": zone_no }\n";
    let st = Story::new(engine, server, live, target, Some(hints));
    let (out, r) = st.run_json(&[]);
    assert_eq!(out.code, Some(0), "{}\n{r:#}", out.describe());
    assert_eq!(r["rehearsal"]["status"], "passed", "{r:#}");
    let script = st.script();
    let block = line_of(&script, "-- == guards: figures the rehearsal measured, checked before anything changes ==")
        .unwrap_or_else(|| panic!("no guards block:\n{script}"));
    let nulls = line_of(&script, "-- guard(rehearse): expect 0 NULL values in region.nm")
        .unwrap_or_else(|| panic!("no guard for the NULLs of the renamed table:\n{script}"));
    let orphans = script
        .lines()
        .position(|l| {
            l.starts_with("-- guard(rehearse): expect 0 rows of site whose (region_code) point at no zone row")
        })
        .unwrap_or_else(|| panic!("no guard for the orphans:\n{script}"))
        + 1;
    let rename = script.lines().position(|l| l.contains("RENAME")).unwrap() + 1;
    assert!(block < nulls && block < orphans && nulls < rename && orphans < rename, "{script}");
}

#[test]
fn sqlite_guards_whose_query_a_rename_would_break_run_first_and_hold() {
    renamed_story(Engine::Sqlite, None);
}

#[test]
fn postgres_guards_whose_query_a_rename_would_break_run_first_and_hold() {
    let Some(s) = server_for(Engine::Postgres) else { return };
    renamed_story(Engine::Postgres, Some(&s));
}

/// The report and `--format json` are unchanged by guards: evidence has no new keys.
#[test]
fn guards_add_nothing_to_the_json_evidence() {
    let st = Story::new(Engine::Sqlite, None, LIVE, TARGET, None);
    let (_, r) = st.run_json(&[]);
    let ev = r["findings"][0]["evidence"].as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(ev, ["nulls", "probe_sql", "rows", "samples"], "{r:#}");
}
