//! The sysadmin's loop, end to end on SQLite: rehearse, read the generated `migration.sql`, decide
//! its TODOs (here: programmatically, the way a sysadmin would with an editor), rehearse the
//! edited script with `--script`, and find the edit's effect in the test copy. And the other way
//! round: an edited script that breaks must fail at its line, roll everything back, and leave no
//! record that `--live` could trust.

mod common;

use common::{db::sha256_hex, Fixture};
use serde_json::Value as Json;
use std::path::Path;

const TODO: &str = "-- TODO(rehearse):";

/// Decide the TODOs the way a sysadmin does: delete the marker lines and turn the drafted
/// statement that starts with `draft` (e.g. "DELETE FROM", "UPDATE") from a comment into SQL.
/// Panics when the script has no such draft: the product promised one.
fn resolve(script: &str, draft: &str) -> String {
    let commented = format!("-- {draft}");
    let mut uncommented = 0;
    let lines: Vec<String> = script
        .lines()
        .filter(|l| !l.trim_start().starts_with(TODO))
        .map(|l| match l.strip_prefix("-- ") {
            Some(sql) if l.starts_with(&commented) => {
                uncommented += 1;
                sql.to_string()
            }
            _ => l.to_string(),
        })
        .collect();
    assert!(uncommented > 0, "no drafted `{draft}` statement in the script:\n{script}");
    lines.join("\n") + "\n"
}

fn first_run_needs_a_human(fx: &Fixture) -> String {
    let out = fx.run_json(&[]);
    assert_eq!(out.code, Some(3), "a human story must exit 3 (needs a human)\n{}", out.describe());
    let r = out.json().unwrap();
    assert_eq!(r.pointer("/rehearsal/status"), Some(&Json::from("not_run")), "{r:#}");
    assert!(r["todo_count"].as_u64().unwrap_or(0) >= 1, "{r:#}");
    std::fs::read_to_string(fx.workdir.join("migration.sql")).expect("the generated script")
}

fn run_edited(fx: &Fixture, edited: &Path) -> (common::Output, Json) {
    let out = fx.run_json(&["--script", edited.to_str().unwrap()]);
    assert!(!out.panicked(), "{}", out.describe());
    let r = out.json().unwrap_or_else(|e| panic!("{e}"));
    (out, r)
}

#[test]
fn fk_orphans_cleared_by_the_drafted_update_pass_and_the_test_copy_shows_it() {
    let fx = Fixture::story("fk-with-orphans");
    let script = first_run_needs_a_human(&fx);
    let edited = fx.dir().join("edited.sql");
    std::fs::write(&edited, resolve(&script, "UPDATE ")).unwrap();
    let live_before = fx.live.fingerprint().unwrap();

    let (out, r) = run_edited(&fx, &edited);
    assert_eq!(out.code, Some(0), "the edited script must pass\n{}", out.describe());
    assert_eq!(r.pointer("/rehearsal/status"), Some(&Json::from("passed")), "{r:#}");
    assert_eq!(r.pointer("/rehearsal/verified"), Some(&Json::Bool(true)), "{r:#}");
    assert_eq!(r["todo_count"], 0);
    assert_eq!(r["script"].as_str(), Some(edited.to_str().unwrap()), "the report names the script that ran");
    // What --live will trust is exactly the file the sysadmin edited.
    let sha = sha256_hex(&std::fs::read(&edited).unwrap());
    assert_eq!(r["script_sha256"].as_str(), Some(sha.as_str()));
    let record: Json =
        serde_json::from_str(&std::fs::read_to_string(fx.workdir.join("rehearsal.json")).unwrap()).unwrap();
    assert_eq!(record["script_sha256"].as_str(), Some(sha.as_str()), "{record:#}");

    let copy = fx.test_copy();
    let q = |sql: &str| common::db::sqlite_query(&copy, sql).unwrap();
    assert_eq!(q("SELECT id FROM hrm_staff WHERE office_id IS NULL ORDER BY id"), [["2"], ["4"], ["5"]]);
    assert_eq!(q("SELECT count(*) FROM hrm_staff"), [["5"]]);
    assert_eq!(
        q("SELECT \"table\", \"from\", \"to\" FROM pragma_foreign_key_list('hrm_staff')"),
        [["org_office", "office_id", "id"]]
    );
    assert_eq!(fx.live.fingerprint().unwrap().changed_from(&live_before), None, "live changed");
}

/// The orphan draft of a new foreign key runs after the parent's own section (foreign-key order),
/// which renamed the referenced column: the draft must name it by its new name.
#[test]
fn the_orphan_draft_names_a_parent_column_renamed_earlier_in_the_script() {
    let fx = Fixture::sqlite(
        "CREATE TABLE parent(id INTEGER PRIMARY KEY, code text UNIQUE);
         INSERT INTO parent VALUES (1, 'a'), (2, 'b');
         CREATE TABLE child(id INTEGER PRIMARY KEY, pcode text);
         INSERT INTO child VALUES (1, 'a'), (2, 'zz'), (3, NULL);",
        "CREATE TABLE parent(id INTEGER PRIMARY KEY, ref_code text UNIQUE, extra text);
         CREATE TABLE child(id INTEGER PRIMARY KEY, pcode text REFERENCES parent(ref_code));",
        Some("renames:\n  columns: { \"parent.code\": ref_code }\n"),
    );
    let script = first_run_needs_a_human(&fx);
    let edited = fx.dir().join("edited.sql");
    std::fs::write(&edited, resolve(&script, "UPDATE ")).unwrap();
    let (out, r) = run_edited(&fx, &edited);
    assert_eq!(out.code, Some(0), "the drafted UPDATE must run as drafted\n{}", out.describe());
    assert_eq!(r.pointer("/rehearsal/verified"), Some(&Json::Bool(true)), "{r:#}");
    let q = |sql: &str| common::db::sqlite_query(&fx.test_copy(), sql).unwrap();
    assert_eq!(q("SELECT id FROM child WHERE pcode IS NULL ORDER BY id"), [["2"], ["3"]]);
}

#[test]
fn duplicates_removed_by_the_drafted_delete_pass_once_the_sysadmin_accepts_the_loss() {
    let fx = Fixture::story("unique-with-duplicates");
    let script = first_run_needs_a_human(&fx);
    let edited = fx.dir().join("edited.sql");
    std::fs::write(&edited, resolve(&script, "DELETE FROM")).unwrap();
    // Rows removed on purpose are a loss that verification accepts only when the sysadmin says so.
    let sysadmin = fx.dir().join("sysadmin-hints.yaml");
    std::fs::write(&sysadmin, "accept_loss: [ pr_contact ]\n").unwrap();
    let mut cfg = fx.config_value();
    cfg["sysadmin_hints"] = sysadmin.to_str().unwrap().into();
    fx.write_config(&cfg);
    let live_before = fx.live.fingerprint().unwrap();

    let (out, r) = run_edited(&fx, &edited);
    assert_eq!(out.code, Some(0), "the edited script must pass\n{}", out.describe());
    assert_eq!(r.pointer("/rehearsal/status"), Some(&Json::from("passed")), "{r:#}");
    let copy = fx.test_copy();
    let q = |sql: &str| common::db::sqlite_query(&copy, sql).unwrap();
    // The draft keeps the first row of each duplicate group.
    assert_eq!(
        q("SELECT id, email FROM pr_contact ORDER BY id"),
        [["1", "a@example.org"], ["2", "b@example.org"], ["4", "c@example.org"]]
    );
    assert_eq!(q("SELECT count(*) FROM pragma_index_list('pr_contact') WHERE \"unique\" = 1"), [["1"]]);
    assert_eq!(fx.live.fingerprint().unwrap().changed_from(&live_before), None, "live changed");
}

#[test]
fn broken_edited_script_fails_at_its_line_rolls_back_and_leaves_no_record() {
    let fx = Fixture::story("add-nullable-column");
    let out = fx.run_json(&[]);
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert!(fx.workdir.join("rehearsal.json").exists(), "a passed rehearsal writes its record");
    let script = std::fs::read_to_string(fx.workdir.join("migration.sql")).unwrap();

    // A write right after BEGIN, the generated DDL, then a typo just before the end.
    let mut lines: Vec<String> = Vec::new();
    let mut broken_line = 0;
    for l in script.lines() {
        if l.trim() == "PRAGMA foreign_key_check;" {
            lines.push("SELEC 'a typo';".into());
            broken_line = lines.len();
        }
        lines.push(l.to_string());
        if l.trim() == "BEGIN;" {
            lines.push("UPDATE org_office SET name = 'clobbered';".into());
        }
    }
    assert!(broken_line > 0, "the generated script ends with PRAGMA foreign_key_check:\n{script}");
    let broken = fx.dir().join("broken.sql");
    std::fs::write(&broken, lines.join("\n") + "\n").unwrap();
    let live_before = fx.live.fingerprint().unwrap();
    let live_dump = fx.live.dump().unwrap();

    let (out, r) = run_edited(&fx, &broken);
    assert_eq!(out.code, Some(4), "a failing script exits 4 (rehearsal failed)\n{}", out.describe());
    let reh = &r["rehearsal"];
    assert_eq!(reh["status"], "failed", "{r:#}");
    assert_eq!(reh["verified"], false, "{r:#}");
    assert_eq!(reh["failed_line"].as_u64(), Some(broken_line as u64), "{r:#}");
    let error = reh["error"].as_str().unwrap_or_default();
    assert!(error.contains(&format!("line {broken_line}")) && error.contains("SELEC"), "{error}");

    // Rolled back: the test copy is the clone of live it was before the script ran.
    let copy_dump = fx.live.dump_test_copy(&fx.workdir).unwrap();
    assert_eq!(copy_dump, live_dump, "the test copy is not as it was before the failed script");
    assert_eq!(fx.live.fingerprint().unwrap().changed_from(&live_before), None, "live changed");
    // The earlier passed record is gone: --live must never trust a script that just failed.
    assert!(!fx.workdir.join("rehearsal.json").exists(), "a failed rehearsal left a rehearsal record behind");
}

/// The report's "Next" steps say: edit <workdir>/migration.sql, then `rehearse run --script
/// <workdir>/migration.sql`. That run writes the freshly generated script over the very file it
/// was asked to run, so the sysadmin's decisions are lost and the TODO is back.
#[test]

fn editing_the_generated_script_in_place_as_the_next_steps_say_keeps_the_edit() {
    let fx = Fixture::story("fk-with-orphans");
    let script = first_run_needs_a_human(&fx);
    let in_place = fx.workdir.join("migration.sql");
    let decided = resolve(&script, "UPDATE ");
    std::fs::write(&in_place, &decided).unwrap();

    let (out, r) = run_edited(&fx, &in_place);
    let now = std::fs::read_to_string(&in_place).unwrap();
    assert!(
        now == decided,
        "the sysadmin's edited script was overwritten by the run (TODO marker back: {})",
        now.contains(TODO)
    );
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert_eq!(r.pointer("/rehearsal/status"), Some(&Json::from("passed")), "{r:#}");
}

/// A two-column foreign key with orphans: the script drafts `SET ("site_id", "sku") = (NULL)`,
/// which SQLite refuses ("2 columns assigned 1 values").
#[test]

fn composite_fk_drafted_update_is_valid_sql() {
    let fx = Fixture::story("composite-fk-orphans");
    let script = first_run_needs_a_human(&fx);
    let edited = fx.dir().join("edited.sql");
    std::fs::write(&edited, resolve(&script, "UPDATE ")).unwrap();
    let (out, r) = run_edited(&fx, &edited);
    assert_eq!(out.code, Some(0), "{}\n{r:#}", out.describe());
    let rows = common::db::sqlite_query(&fx.test_copy(), "SELECT id FROM inv_line WHERE sku IS NULL ORDER BY id");
    assert_eq!(rows.unwrap(), [["2"], ["4"]], "only the two orphans lose their reference");
}

/// The probe counts 2 orphans (a row with a NULL in the key is not one: MATCH SIMPLE), but the
/// drafted `DELETE ... WHERE (site_id, sku) NOT IN (SELECT ...)` also deletes the row whose
/// site_id is NULL, because a row value with a NULL is "NOT IN" a list it differs from elsewhere.
#[test]

fn composite_fk_drafted_delete_removes_only_the_orphans_the_probe_counted() {
    let fx = Fixture::story("composite-fk-orphans");
    let script = first_run_needs_a_human(&fx);
    let edited = fx.dir().join("edited.sql");
    std::fs::write(&edited, resolve(&script, "DELETE FROM")).unwrap();
    let sysadmin = fx.dir().join("sysadmin-hints.yaml");
    std::fs::write(&sysadmin, "accept_loss: [ inv_line ]\n").unwrap();
    let mut cfg = fx.config_value();
    cfg["sysadmin_hints"] = sysadmin.to_str().unwrap().into();
    fx.write_config(&cfg);
    let (out, r) = run_edited(&fx, &edited);
    assert_eq!(out.code, Some(0), "{}\n{r:#}", out.describe());
    let rows = common::db::sqlite_query(&fx.test_copy(), "SELECT id FROM inv_line ORDER BY id").unwrap();
    assert_eq!(rows, [["1"], ["3"], ["5"], ["6"]], "the drafted DELETE removed more than the 2 orphans");
}

/// Regression: a failed rehearsal printed "Downtime: about N s" (an estimate of a script that did
/// not run through) and "Verdict: AUTO" above FAILED without saying the run failed.
#[test]
fn a_failed_rehearsal_shows_no_downtime_estimate_and_says_beside_the_verdict_that_it_failed() {
    let fx = Fixture::story("add-nullable-column");
    assert_eq!(fx.run_json(&[]).code, Some(0));
    let script = std::fs::read_to_string(fx.workdir.join("migration.sql")).unwrap();
    let broken = fx.dir().join("broken.sql");
    std::fs::write(&broken, script.replace("COMMIT;", "SELEC 'a typo';\nCOMMIT;")).unwrap();
    let (out, r) = run_edited(&fx, &broken);
    assert_eq!(out.code, Some(4), "{}", out.describe());
    assert_eq!(r["verdict"], "auto", "{r:#}");
    for format in ["text", "md", "html"] {
        let shown =
            common::rehearse(["report", "--workdir", fx.workdir.to_str().unwrap(), "--format", format], fx.dir());
        let text = shown.stdout;
        assert!(!text.contains("Downtime:") && !text.contains("Expected downtime"), "{format}: an estimate\n{text}");
        assert!(text.contains("not a downtime estimate"), "{format}: the time is not labelled\n{text}");
        assert!(
            text.contains("rehearsal FAILED")
                || text.contains("rehearsal **FAILED**")
                || text.contains("The rehearsal failed"),
            "{format}: the verdict does not say the run failed\n{text}"
        );
    }
}
