//! The command line as a sysadmin meets it, on SQLite: every bad input gets its documented exit
//! code and one clear line on stderr starting `rehearse:` that names the problem, never a panic or
//! a backtrace; live stays byte-for-byte unchanged; and the next good run still works. Then the
//! good paths: the JSON contract, private files, the demo, `report`, `snapshot`/`diff`, `--help`.
//!
//! Exit codes (src/exit.rs): 0 passed, 1 error (a failing child process, the new code's own
//! schema not applying, an unreachable server), 2 usage/config error (a bad flag, config key or
//! value, URL, path, revision or hints file: fix the config; nothing was done), 3 needs a human,
//! 4 rehearsal failed, 5 refused by a safety guard (something rehearse did not make is in its way).

mod common;

use common::{git, rehearse, Fixture, Output};
use serde_json::Value as Json;
use std::ffi::OsStr;
use std::path::Path;

/// The story every bad-input test starts from: automatic, passes, exit 0.
fn good() -> Fixture {
    Fixture::story("add-nullable-column")
}

/// One clear line: every stderr line is rehearse's own (progress or the error), the last names
/// the problem with all of `words`; no panic, nothing on stdout.
fn assert_clean_failure(out: &Output, code: i32, words: &[&str]) {
    let d = out.describe();
    assert!(!out.panicked(), "panic or backtrace\n{d}");
    assert_eq!(out.code, Some(code), "wrong exit code\n{d}");
    assert!(out.stdout.trim().is_empty(), "an error must print nothing on stdout\n{d}");
    let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = lines.last().copied().unwrap_or_default();
    assert!(last.starts_with("rehearse: "), "the error line must start with `rehearse: `\n{d}");
    for l in &lines {
        assert!(l.starts_with("rehearse: "), "stderr must be rehearse's own lines, one per message; got {l:?}\n{d}");
    }
    for w in words {
        assert!(last.contains(w), "the error line does not say {w:?}: {last}");
    }
}

/// Run with the config as it is now, check the failure and that live did not change; then put
/// the good config back and check a good run passes.
fn bad_input(fx: &Fixture, extra: &[&str], code: i32, words: &[&str]) -> Output {
    let before = fx.live.fingerprint().unwrap();
    let out = fx.run_json(extra);
    assert_clean_failure(&out, code, words);
    assert_eq!(fx.live.fingerprint().unwrap().changed_from(&before), None, "live changed");
    out
}

fn then_a_good_run_works(fx: &Fixture) {
    fx.write_config(&fx.config_value());
    let out = fx.run_json(&[]);
    assert_eq!(out.code, Some(0), "the good run after a bad one fails\n{}", out.describe());
    assert_eq!(out.json().unwrap().pointer("/rehearsal/status"), Some(&Json::from("passed")));
}

/// A new commit of the app tagged `tag`, with `files` (path inside the repo, content) changed.
fn tag_variant(fx: &Fixture, tag: &str, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = fx.repo.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    git(&fx.repo, &["add", "-A"]).unwrap();
    git(&fx.repo, &["commit", "-q", "-m", tag]).unwrap();
    git(&fx.repo, &["tag", tag]).unwrap();
}

fn live_url_line(fx: &Fixture) -> String {
    format!("live: {{ url: {:?} }}\n", fx.live.url)
}

fn app_line(fx: &Fixture) -> String {
    format!("app: {{ repo: {:?}, revision: v2 }}\n", fx.repo.to_str().unwrap())
}

#[test]
fn malformed_yaml_is_a_config_error_naming_the_file_and_line() {
    let fx = good();
    fx.write_config_text(&format!("{}{}schema:\n  sql: db/schema.sql\n bad: [1\n", live_url_line(&fx), app_line(&fx)));
    bad_input(&fx, &[], 2, &["upgrade.yaml", "line 5"]);
    then_a_good_run_works(&fx);
}

#[test]
fn unknown_config_key_is_named_with_its_line() {
    let fx = good();
    fx.write_config_text(&format!(
        "{}{}schema: {{ sql: db/schema.sql }}\nworkdri: /tmp/elsewhere\n",
        live_url_line(&fx),
        app_line(&fx)
    ));
    bad_input(&fx, &[], 2, &["workdri", "line 4"]);
    then_a_good_run_works(&fx);
}

#[test]
fn config_value_of_the_wrong_type_is_named() {
    let fx = good();
    let mut cfg = fx.config_value();
    cfg["report"] = serde_json::json!({ "samples": "many" });
    fx.write_config(&cfg);
    bad_input(&fx, &[], 2, &["report.samples", "many"]);
    then_a_good_run_works(&fx);
}

#[test]
fn missing_live_url_says_how_to_set_it() {
    let fx = good();
    let mut cfg = fx.config_value();
    cfg.as_object_mut().unwrap().remove("live");
    fx.write_config(&cfg);
    bad_input(&fx, &[], 2, &["live.url"]);
    then_a_good_run_works(&fx);
}

#[test]
fn two_schema_sources_are_refused() {
    let fx = good();
    let mut cfg = fx.config_value();
    cfg["schema"]["snapshot"] = "snapshot.yaml".into();
    fx.write_config(&cfg);
    bad_input(&fx, &[], 2, &["schema", "more than one"]);
    then_a_good_run_works(&fx);
}

#[test]
fn url_with_an_unknown_scheme_is_named_without_its_password() {
    let fx = good();
    let mut cfg = fx.config_value();
    cfg["live"]["url"] = "oracle://scott:tiger@db.example/orcl".into();
    fx.write_config(&cfg);
    let out = bad_input(&fx, &[], 2, &["oracle", "scheme"]);
    assert!(!out.stderr.contains("tiger"), "the password is shown: {}", out.stderr);
    then_a_good_run_works(&fx);
}

#[test]

fn missing_sqlite_file_is_named_and_not_created() {
    let fx = good();
    let missing = fx.dir().join("no-such-live.db");
    let mut cfg = fx.config_value();
    cfg["live"]["url"] = format!("sqlite://{}", missing.display()).into();
    fx.write_config(&cfg);
    bad_input(&fx, &[], 2, &[missing.to_str().unwrap()]);
    assert!(!missing.exists(), "rehearse created the missing live file");
    then_a_good_run_works(&fx);
}

#[test]

fn file_that_is_not_a_database_is_a_config_error_and_left_alone() {
    let fx = good();
    let fake = fx.dir().join("notes.db");
    std::fs::write(&fake, "these are my notes, not a database\n").unwrap();
    let mut cfg = fx.config_value();
    cfg["live"]["url"] = format!("sqlite://{}", fake.display()).into();
    fx.write_config(&cfg);
    bad_input(&fx, &[], 2, &[fake.to_str().unwrap(), "SQLite"]);
    assert_eq!(std::fs::read_to_string(&fake).unwrap(), "these are my notes, not a database\n");
    then_a_good_run_works(&fx);
}

#[test]

fn repo_that_is_not_git_is_a_config_error() {
    let fx = good();
    let plain = fx.dir().join("plain-folder");
    std::fs::create_dir_all(&plain).unwrap();
    let mut cfg = fx.config_value();
    cfg["app"]["repo"] = plain.to_str().unwrap().into();
    fx.write_config(&cfg);
    bad_input(&fx, &[], 2, &["app.repo", "git"]);
    then_a_good_run_works(&fx);
}

#[test]

fn unknown_revision_is_a_config_error() {
    let fx = good();
    let mut cfg = fx.config_value();
    cfg["app"]["revision"] = "v9.9.9".into();
    fx.write_config(&cfg);
    bad_input(&fx, &[], 2, &["app.revision", "v9.9.9"]);
    then_a_good_run_works(&fx);
}

/// What holds today for the four inputs above whose exit code is pinned as a bug: they fail
/// without a panic, with rehearse's own lines only, touch nothing, and the next good run works.
#[test]
fn inputs_the_config_points_at_fail_cleanly_and_touch_nothing() {
    let fx = good();
    let missing = fx.dir().join("no-such-live.db");
    let fake = fx.dir().join("notes.db");
    std::fs::write(&fake, "my notes\n").unwrap();
    let plain = fx.dir().join("plain-folder");
    std::fs::create_dir_all(&plain).unwrap();
    let cases: Vec<(&str, &[&str], String)> = vec![
        ("/live/url", &["live", "url"], format!("sqlite://{}", missing.display())),
        ("/live/url", &["live", "url"], format!("sqlite://{}", fake.display())),
        ("/app/repo", &["app", "repo"], plain.to_str().unwrap().to_string()),
        ("/app/revision", &["app", "revision"], "v9.9.9".to_string()),
    ];
    let before = fx.live.fingerprint().unwrap();
    for (what, path, value) in cases {
        let mut cfg = fx.config_value();
        cfg[path[0]][path[1]] = value.clone().into();
        fx.write_config(&cfg);
        let out = fx.run_json(&[]);
        let d = format!("{what} = {value}\n{}", out.describe());
        assert!(matches!(out.code, Some(1 | 2)) && !out.panicked(), "{d}");
        assert!(out.stdout.is_empty(), "{d}");
        assert!(out.stderr.lines().all(|l| l.starts_with("rehearse: ")), "{d}");
    }
    assert!(!missing.exists(), "rehearse created the missing live file");
    assert_eq!(std::fs::read_to_string(&fake).unwrap(), "my notes\n");
    assert_eq!(fx.live.fingerprint().unwrap().changed_from(&before), None, "live changed");
    then_a_good_run_works(&fx);
}

#[test]

fn schema_sql_syntax_error_is_one_line_naming_the_file() {
    let fx = good();
    tag_variant(
        &fx,
        "broken",
        &[("db/schema.sql", "CREATE TABLE org_office (id INTEGER PRIMARY KEY,\n  name VARCHAR(64) NOT NULL);\nCREATE TABEL oops (id INTEGER);\n")],
    );
    let mut cfg = fx.config_value();
    cfg["app"]["revision"] = "broken".into();
    fx.write_config(&cfg);
    bad_input(&fx, &[], 1, &["schema.sql", "TABEL"]);
    then_a_good_run_works(&fx);
}

#[test]
fn failing_schema_command_shows_its_status_and_stderr() {
    let fx = good();
    let mut cfg = fx.config_value();
    cfg["schema"] =
        serde_json::json!({ "command": "echo building; echo 'migrations: table x is missing' >&2; exit 3" });
    fx.write_config(&cfg);
    bad_input(&fx, &[], 1, &["schema.command", "exit status 3", "table x is missing"]);
    then_a_good_run_works(&fx);
}

#[test]
fn hints_naming_an_unknown_column_are_refused() {
    let fx = good();
    tag_variant(
        &fx,
        "badhints",
        &[("db/upgrade-hints.yaml", "renames:\n  columns: { \"org_office.nope\": comments }\n")],
    );
    let mut cfg = fx.config_value();
    cfg["app"]["revision"] = "badhints".into();
    cfg["hints"] = "db/upgrade-hints.yaml".into();
    fx.write_config(&cfg);
    bad_input(&fx, &[], 2, &["hints", "org_office.nope"]);
    // The good config of this repo has no hints at v2.
    then_a_good_run_works(&fx);
}

#[test]
fn hints_of_the_wrong_shape_are_refused_with_the_key_and_line() {
    let fx = good();
    tag_variant(&fx, "badshape", &[("db/upgrade-hints.yaml", "defaults: {}\nrenames: [ fax, phone ]\n")]);
    let mut cfg = fx.config_value();
    cfg["app"]["revision"] = "badshape".into();
    cfg["hints"] = "db/upgrade-hints.yaml".into();
    fx.write_config(&cfg);
    bad_input(&fx, &[], 2, &["hints", "renames", "line 2"]);
    then_a_good_run_works(&fx);
}

#[test]
fn edited_script_with_a_todo_left_is_not_run() {
    let fx = Fixture::story("fk-with-orphans");
    assert_eq!(fx.run_json(&[]).code, Some(3));
    let edited = fx.dir().join("edited.sql");
    let generated = std::fs::read_to_string(fx.workdir.join("migration.sql")).unwrap();
    // Decided the draft, forgot the marker.
    std::fs::write(&edited, generated.replace("\n-- UPDATE ", "\nUPDATE ")).unwrap();
    let before = fx.live.fingerprint().unwrap();
    let out = fx.run_json(&["--script", edited.to_str().unwrap()]);
    assert_eq!(out.code, Some(3), "a TODO left means needs a human, nothing run\n{}", out.describe());
    assert!(!out.panicked());
    let r = out.json().unwrap();
    assert_eq!(r["rehearsal"]["status"], "not_run", "{r:#}");
    assert_eq!(r["todo_count"], 1, "{r:#}");
    assert!(r["rehearsal"]["reason"].as_str().unwrap_or_default().contains("TODO"), "{r:#}");
    assert_eq!(fx.live.dump_test_copy(&fx.workdir).unwrap(), fx.live.dump().unwrap(), "the test copy was changed");
    assert!(!fx.workdir.join("rehearsal.json").exists(), "a rehearsal record for a script that never ran");
    assert_eq!(fx.live.fingerprint().unwrap().changed_from(&before), None, "live changed");
    // Removing the marker is all it takes.
    let decided: String = std::fs::read_to_string(&edited)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-- TODO(rehearse):"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&edited, decided).unwrap();
    let out = fx.run_json(&["--script", edited.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.describe());
}

#[test]

fn existing_checkout_dir_rehearse_did_not_make_is_refused_and_left_alone() {
    let fx = good();
    let occupied = fx.dir().join("occupied");
    std::fs::create_dir_all(&occupied).unwrap();
    std::fs::write(occupied.join("keep-me.txt"), "mine\n").unwrap();
    let mut cfg = fx.config_value();
    cfg["app"]["checkout_dir"] = occupied.to_str().unwrap().into();
    fx.write_config(&cfg);
    bad_input(&fx, &[], 5, &["checkout_dir", occupied.to_str().unwrap()]);
    let left: Vec<_> = std::fs::read_dir(&occupied).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["keep-me.txt"], "the folder was changed");
    then_a_good_run_works(&fx);
}

#[test]
fn existing_checkout_dir_rehearse_did_not_make_is_left_alone() {
    // The part of the test above that holds today, kept running: whatever the exit code, the
    // sysadmin's folder survives and nothing runs.
    let fx = good();
    let occupied = fx.dir().join("occupied");
    std::fs::create_dir_all(&occupied).unwrap();
    std::fs::write(occupied.join("keep-me.txt"), "mine\n").unwrap();
    let mut cfg = fx.config_value();
    cfg["app"]["checkout_dir"] = occupied.to_str().unwrap().into();
    fx.write_config(&cfg);
    let out = fx.run_json(&[]);
    assert!(!out.panicked() && out.code != Some(0), "{}", out.describe());
    let left: Vec<_> = std::fs::read_dir(&occupied).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["keep-me.txt"], "the folder was changed");
    assert_eq!(std::fs::read_to_string(occupied.join("keep-me.txt")).unwrap(), "mine\n");
    then_a_good_run_works(&fx);
}

/// `--live` is not built yet: it must refuse (exit 5) and do nothing at all. When promotion lands,
/// this test becomes the guard tests of DESIGN.md's safety invariant 2.
#[test]
fn live_without_a_passed_rehearsal_is_refused_and_does_nothing() {
    for extra in [&["--live", "--yes"][..], &["--live"][..]] {
        let fx = good();
        bad_input(&fx, extra, 5, &["no passed rehearsal"]);
        assert!(!fx.workdir.exists(), "--live made a workdir although it refused");
        then_a_good_run_works(&fx);
    }
}

#[test]
fn json_report_has_the_contract_keys() {
    for (story, status) in [("add-not-null-without-default", "not_run"), ("rename-column", "passed")] {
        let fx = Fixture::story(story);
        let out = fx.run_json(&[]);
        let r = out.json().unwrap_or_else(|e| panic!("{story}: {e}"));
        let problems = common::scenario::contract_problems(&r);
        assert!(problems.is_empty(), "{story}: {problems:?}\n{r:#}");
        assert_eq!(r["rehearsal"]["status"], status, "{story}");
        let f = &r["findings"][0];
        for key in ["kind", "table", "verdict", "evidence", "message"] {
            assert!(f.get(key).is_some(), "{story}: finding has no {key}: {f}");
        }
        assert!(Path::new(r["script"].as_str().unwrap()).exists(), "{story}: the script path does not exist");
        if status == "passed" {
            let reh = &r["rehearsal"];
            assert_eq!(reh["verified"], true);
            assert_eq!(reh["rows_before"]["org_organisation"], 3, "{reh:#}");
            assert_eq!(reh["rows_after"]["org_organisation"], 3, "{reh:#}");
        } else {
            assert!(r["todo_count"].as_u64().unwrap() >= 1);
            assert_eq!(f["evidence"]["rows"], 3, "{f}");
        }
        // Progress goes to stderr, so stdout stays one JSON document; report.json is the same report.
        let saved: Json =
            serde_json::from_str(&std::fs::read_to_string(fx.workdir.join("report.json")).unwrap()).unwrap();
        assert_eq!(saved, r, "{story}: report.json differs from stdout");
    }
}

#[test]
#[cfg(unix)]
fn workdir_is_private_and_so_is_everything_rehearse_writes_in_it() {
    use common::mode;
    let fx = good();
    // The workdir does not exist yet: rehearse makes it, private. (An existing folder open to
    // others is refused and keeps its mode: `an_existing_open_workdir_is_refused_and_keeps_its_mode`.)
    assert!(!fx.workdir.exists());
    let out = fx.run_json(&[]);
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let r = out.json().unwrap();
    assert_eq!(mode(&fx.workdir), 0o700, "workdir");
    let backup = std::path::PathBuf::from(r["backup"].as_str().expect("the report names the backup"));
    assert!(backup.starts_with(&fx.workdir), "the backup {} is outside the workdir", backup.display());
    for f in [fx.workdir.join("report.json"), fx.workdir.join("migration.sql"), backup, fx.test_copy()] {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    // And every other file directly in the workdir (report.md, rehearsal.json, ...).
    for e in std::fs::read_dir(&fx.workdir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }
}

/// Full mode bits, sticky and setuid included.
fn full_mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Regression: an existing workdir (a shared 1777 folder, a 0755 one) was chmodded to 0700.
/// Rehearse never changes the mode of a folder it did not create: it refuses an open one with
/// one line (exit 2), and uses an existing folder that is already private as it is.
#[test]
fn an_existing_open_workdir_is_refused_and_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let fx = good();
    for (name, m) in [("shared", 0o1777), ("open", 0o755)] {
        let dir = fx.dir().join(name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(m)).unwrap();
        let mut cfg = fx.config_value();
        cfg["workdir"] = dir.to_str().unwrap().into();
        fx.write_config(&cfg);
        let mode = format!("{m:04o}");
        bad_input(&fx, &[], 2, &["workdir", dir.to_str().unwrap(), &mode, "does not exist yet"]);
        assert_eq!(full_mode(&dir), m, "the mode of {name} was changed");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "rehearse wrote into {name}");
    }
    // A folder that is already private to its owner is used as it is.
    let private = fx.dir().join("open");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut cfg = fx.config_value();
    cfg["workdir"] = private.to_str().unwrap().into();
    fx.write_config(&cfg);
    let out = fx.run_json(&[]);
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert_eq!(full_mode(&private), 0o700);
    assert!(private.join("report.json").exists());
    then_a_good_run_works(&fx);
}

/// Regression: a workdir inside the application repository left dumps of live in its working
/// tree. It is refused with one line (exit 2) before anything is written.
#[test]
fn a_workdir_inside_the_app_repository_is_refused() {
    let fx = good();
    for workdir in [fx.repo.join("rehearse-work"), fx.repo.clone()] {
        let mut cfg = fx.config_value();
        cfg["workdir"] = workdir.to_str().unwrap().into();
        fx.write_config(&cfg);
        bad_input(&fx, &[], 2, &["workdir", "inside the application repository", fx.repo.to_str().unwrap()]);
        assert!(!fx.repo.join("rehearse-work").exists(), "a workdir was made in the repository");
        assert_eq!(git(&fx.repo, &["status", "--porcelain", "--ignored"]).unwrap(), "", "the working tree changed");
    }
    then_a_good_run_works(&fx);
}

/// Regression: live's own folder given as workdir was chmodded to 0700 (locking the application
/// out of it) and filled with test copies beside live. It is refused (exit 2), and so is a folder
/// that contains live deeper down; the folder keeps its mode.
#[test]
fn a_workdir_that_is_lives_own_folder_or_contains_it_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let fx = good();
    let folder = fx.dir().to_path_buf();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
    let before: Vec<_> = std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().file_name()).collect();
    let mut cfg = fx.config_value();
    cfg["workdir"] = folder.to_str().unwrap().into();
    fx.write_config(&cfg);
    bad_input(&fx, &[], 2, &["workdir", "is live's own folder"]);
    assert_eq!(full_mode(&folder), 0o755, "live's folder changed mode");
    // Deeper: live in a sub-folder of the workdir.
    let sub = folder.join("srv");
    std::fs::create_dir(&sub).unwrap();
    let live = sub.join("app.db");
    std::fs::copy(fx.live.path.as_ref().unwrap(), &live).unwrap();
    cfg["live"]["url"] = format!("sqlite://{}", live.display()).into();
    fx.write_config(&cfg);
    bad_input(&fx, &[], 2, &["workdir", "contains live"]);
    std::fs::remove_dir_all(&sub).unwrap();
    let after: Vec<_> = std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(before, after, "rehearse wrote into live's folder");
    then_a_good_run_works(&fx);
}

/// The demo's live database, built the way the demo builds it (same SQL, same SQLite, same
/// calls), for comparison with what the demo leaves behind.
fn fresh_demo_live(path: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo");
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(&std::fs::read_to_string(root.join("schema-v1.sql")).unwrap()).unwrap();
    c.execute_batch(&std::fs::read_to_string(root.join("data.sql")).unwrap()).unwrap();
}

#[test]
fn demo_rehearses_without_touching_its_live_database() {
    let tmp = common::Temp::new("rehearse-demo-");
    let dir = tmp.path().join("demo");
    let out = rehearse([OsStr::new("demo"), dir.as_os_str()], tmp.path());
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert!(!out.panicked());
    let live = dir.join("eden.db");
    let expected = tmp.path().join("expected.db");
    fresh_demo_live(&expected);
    assert_eq!(
        common::db::sqlite_dump(&live).unwrap(),
        common::db::sqlite_dump(&expected).unwrap(),
        "the demo's live database is not what it was built as"
    );
    assert!(std::fs::read(&live).unwrap() == std::fs::read(&expected).unwrap(), "eden.db bytes changed");

    // The report names the duplicate emails (human) and the fax drop (lossy).
    let r: Json = serde_json::from_str(&std::fs::read_to_string(dir.join("work/report.json")).unwrap()).unwrap();
    let find = |kind: &str, table: &str| {
        r["findings"].as_array().unwrap().iter().find(|f| f["kind"] == kind && f["table"] == table).cloned()
    };
    let dups = find("unique_added", "pr_person").expect("a unique_added finding on pr_person");
    assert_eq!(dups["verdict"], "human", "{dups}");
    assert!(dups["evidence"]["duplicate_groups"].as_i64().unwrap_or(0) > 0, "{dups}");
    let fax = find("column_dropped", "org_office").expect("a column_dropped finding on org_office");
    assert_eq!((fax["column"].as_str(), fax["verdict"].as_str()), (Some("fax"), Some("lossy")), "{fax}");
    assert!(out.stdout.contains("email") && out.stdout.contains("duplicate"), "{}", out.stdout);
    assert!(out.stdout.contains("fax") && out.stdout.to_lowercase().contains("lossy"), "{}", out.stdout);

    // A second rehearsal of the demo's config leaves the live bytes as they are too.
    let before = std::fs::read(&live).unwrap();
    let cfg = dir.join("upgrade.yaml");
    let again = rehearse([OsStr::new("run"), OsStr::new("--config"), cfg.as_os_str()], tmp.path());
    assert_eq!(again.code, Some(3), "{}", again.describe());
    assert!(std::fs::read(&live).unwrap() == before, "a rehearsal changed eden.db");
}

#[test]
fn demo_refuses_a_folder_that_is_not_empty() {
    let tmp = common::Temp::new("rehearse-demo-");
    std::fs::write(tmp.path().join("mine.txt"), "mine\n").unwrap();
    let out = rehearse([OsStr::new("demo"), tmp.path().as_os_str()], tmp.path());
    assert!(out.code != Some(0) && !out.panicked(), "{}", out.describe());
    assert!(out.stderr.starts_with("rehearse: ") && out.stderr.contains("not empty"), "{}", out.stderr);
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["mine.txt"]);
}

#[test]
fn report_re_renders_the_last_run_as_text_markdown_and_json() {
    let fx = Fixture::story("drop-column-with-data");
    assert_eq!(fx.run_json(&[]).code, Some(3));
    let saved: Json = serde_json::from_str(&std::fs::read_to_string(fx.workdir.join("report.json")).unwrap()).unwrap();
    let report = |format: &str| {
        let out = rehearse(
            [
                OsStr::new("report"),
                OsStr::new("--config"),
                fx.config.as_os_str(),
                OsStr::new("--format"),
                OsStr::new(format),
            ],
            fx.dir(),
        );
        assert_eq!(out.code, Some(0), "report --format {format}\n{}", out.describe());
        out.stdout
    };
    let json: Json = serde_json::from_str(&report("json")).expect("report --format json is JSON");
    assert_eq!(json, saved);
    let md = report("md");
    assert!(md.trim_start().starts_with('#'), "Markdown starts with a heading:\n{md}");
    let text = report("text");
    for out in [&md, &text] {
        assert!(out.contains("fax") && out.to_lowercase().contains("lossy"), "{out}");
        assert!(!out.contains("\x1b["), "colour codes in a non-terminal rendering");
    }
    assert_ne!(md, text);

    // Without a report, it says to run first.
    let empty = common::Temp::new("rehearse-noreport-");
    let out = rehearse([OsStr::new("report"), OsStr::new("--workdir"), empty.path().as_os_str()], empty.path());
    assert_clean_failure(&out, 2, &["rehearse run"]);
}

#[test]
fn snapshot_diff_and_check() {
    let fx = Fixture::story("add-not-null-without-default");
    let snap = fx.dir().join("live.yaml");
    let before = fx.live.fingerprint().unwrap();
    let out = rehearse(
        [OsStr::new("snapshot"), OsStr::new("--url"), OsStr::new(&fx.live.url), OsStr::new("--out"), snap.as_os_str()],
        fx.dir(),
    );
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert_eq!(fx.live.fingerprint().unwrap().changed_from(&before), None, "snapshot changed live");
    let diff = |args: &[&OsStr]| {
        let mut a = vec![OsStr::new("diff")];
        a.extend_from_slice(args);
        rehearse(a, fx.dir())
    };

    let same = diff(&[snap.as_os_str(), snap.as_os_str()]);
    assert_eq!(same.code, Some(0), "{}", same.describe());
    assert!(same.stdout.contains("no changes"), "{}", same.stdout);
    let same = diff(&[snap.as_os_str(), snap.as_os_str(), OsStr::new("--check")]);
    assert_eq!(same.code, Some(0), "{}", same.describe());

    // The new code's schema, as a database: adding a NOT NULL column without default needs a human.
    let target = fx.dir().join("target.db");
    let ddl = std::fs::read_to_string(fx.repo.join("db/schema.sql")).unwrap();
    rusqlite::Connection::open(&target).unwrap().execute_batch(&ddl).unwrap();
    let target_url = format!("sqlite://{}", target.display());
    let plain = diff(&[snap.as_os_str(), OsStr::new(&target_url)]);
    assert_eq!(plain.code, Some(0), "without --check a diff reports and exits 0\n{}", plain.describe());
    assert!(plain.stdout.contains("code"), "{}", plain.stdout);
    let check = diff(&[snap.as_os_str(), OsStr::new(&target_url), OsStr::new("--check")]);
    assert_eq!(check.code, Some(3), "--check exits 3 when a change needs a human\n{}", check.describe());
    let json = diff(&[snap.as_os_str(), OsStr::new(&target_url), OsStr::new("--format"), OsStr::new("json")]);
    let v = json.json().unwrap();
    assert_eq!(v["verdict"], "human", "{v:#}");
    assert_eq!(v["findings"][0]["kind"], "column_added", "{v:#}");
    assert_eq!(fx.live.fingerprint().unwrap().changed_from(&before), None, "diff changed live");
}

/// Regression: `rehearse diff` (no data) printed "1 existing row needs a value" on a table of
/// 1,000 rows, and its JSON said rows 1, nulls 1: figures it never measured.
#[test]
fn diff_without_data_shows_no_figure_it_did_not_measure() {
    let tmp = common::Temp::new("rehearse-diff-blind-");
    let live = tmp.path().join("live.db");
    let conn = rusqlite::Connection::open(&live).unwrap();
    conn.execute_batch(
        "CREATE TABLE person (id INTEGER PRIMARY KEY, name TEXT, fax TEXT, email TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
         INSERT INTO person SELECT i, 'p' || i, NULL, 'p' || i || '@x' FROM n;",
    )
    .unwrap();
    drop(conn);
    let target = tmp.path().join("target.db");
    rusqlite::Connection::open(&target)
        .unwrap()
        .execute_batch(
            "CREATE TABLE person (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, code TEXT NOT NULL);
             CREATE TABLE org (id INTEGER PRIMARY KEY);",
        )
        .unwrap();
    let (from, to) = (format!("sqlite://{}", live.display()), format!("sqlite://{}", target.display()));
    let text = rehearse(["diff", from.as_str(), to.as_str()], tmp.path());
    assert_eq!(text.code, Some(0), "{}", text.describe());
    for invented in ["1 existing row", "1 row", "1 value", "1 NULL", "no row has NULL", "holds no values"] {
        assert!(!text.stdout.contains(invented), "diff printed {invented:?} without measuring it:\n{}", text.stdout);
    }
    let words = text.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains("every existing row needs a value"), "{}", text.stdout);
    let json = rehearse(["diff", from.as_str(), to.as_str(), "--format", "json"], tmp.path()).json().unwrap();
    let findings = json["findings"].as_array().unwrap();
    let kinds: Vec<&str> = findings.iter().map(|f| f["kind"].as_str().unwrap()).collect();
    for k in ["column_added", "column_dropped", "column_nullability_changed"] {
        assert!(kinds.contains(&k), "{k} missing: {json:#}");
    }
    for f in findings {
        let evidence = f["evidence"].as_object().unwrap();
        let figures: Vec<&String> = evidence.keys().filter(|k| *k != "unprobed").collect();
        assert!(figures.is_empty(), "{} has figures nobody measured: {figures:?}", f["kind"]);
        assert!(!f["message"].as_str().unwrap().contains(" 1 "), "{f:#}");
    }
    // Unknown data is the worst case: the NOT NULL column and the dropped column are not automatic.
    for (k, verdict) in
        [("column_added", "human"), ("column_dropped", "lossy"), ("column_nullability_changed", "human")]
    {
        let f = findings.iter().find(|f| f["kind"] == k).unwrap();
        assert_eq!(f["verdict"], verdict, "{f:#}");
    }
}

#[test]
fn every_subcommand_help_shows_an_example_and_the_exit_codes_where_they_matter() {
    let tmp = common::Temp::new("rehearse-help-");
    let help = |args: &[&str]| {
        let out = rehearse(args, tmp.path());
        assert_eq!(out.code, Some(0), "{args:?}\n{}", out.describe());
        out.stdout
    };
    let codes = ["0 passed", "1 error", "2 usage/config error", "3 needs a human", "4 rehearsal failed", "5 refused"];
    for args in [&["--help"][..], &["run", "--help"][..]] {
        let text = help(args).split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(text.contains("Examples:") && text.contains("rehearse run --config"), "{args:?}: {text}");
        for c in codes {
            assert!(text.contains(c), "{args:?} does not document exit code {c:?}: {text}");
        }
    }
    for sub in ["demo", "snapshot", "diff", "report"] {
        let text = help(&[sub, "--help"]);
        assert!(text.contains("Examples:") && text.contains(&format!("rehearse {sub}")), "{sub}: {text}");
    }
    assert!(help(&["diff", "--help"]).contains("exit 3"), "diff --help must say what --check exits with");
}

#[test]
fn bad_flags_are_usage_errors() {
    let tmp = common::Temp::new("rehearse-flags-");
    for args in [&["run", "--format", "xml"][..], &["run", "--no-such-flag"][..], &["frobnicate"][..]] {
        let out = rehearse(args, tmp.path());
        assert_eq!(out.code, Some(2), "{args:?}\n{}", out.describe());
        assert!(!out.panicked(), "{args:?}");
    }
}

#[test]
fn man_pages_and_completions_cover_every_command() {
    let bin = env!("CARGO_BIN_EXE_rehearse");
    let help = std::process::Command::new(bin).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    // The commands as --help lists them (indented name, then its summary).
    let commands: Vec<String> = help
        .split("Commands:")
        .nth(1)
        .unwrap()
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        // A command's line starts with two spaces and its name; wrapped summaries start deeper.
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 10 && commands.contains(&"run".to_string()), "{commands:?}");

    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin).args(["generate", "man", "--dir"]).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let main_page = std::fs::read_to_string(dir.path().join("rehearse.1")).unwrap();
    for c in &commands {
        let page = std::fs::read_to_string(dir.path().join(format!("rehearse-{c}.1")))
            .unwrap_or_else(|e| panic!("no man page for {c}: {e}"));
        assert!(page.contains(".TH"), "{c}: not a man page");
        assert!(main_page.contains(c.as_str()), "rehearse.1 does not list {c}");
    }

    let out = std::process::Command::new(bin).args(["generate", "completions", "bash"]).output().unwrap();
    let script = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    for c in &commands {
        assert!(script.contains(c.as_str()), "bash completion lacks {c}");
    }
    let out = std::process::Command::new(bin).args(["generate", "completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");
}

/// Sample values can be personal data: `report.samples: 0` (or `--samples 0`) keeps every one of
/// them out of the report in every format and out of the script, while the counts stay.
#[test]
fn samples_zero_keeps_values_out_of_reports_and_script() {
    let fx = Fixture::story("unique-with-duplicates");
    let files = |fx: &Fixture| -> String {
        ["report.json", "report.md", "report.html", "migration.sql"]
            .iter()
            .map(|f| std::fs::read_to_string(fx.workdir.join(f)).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let out = fx.run_json(&[]);
    assert_eq!(out.code, Some(3), "{}", out.describe());
    assert!(files(&fx).contains("c@example.org"), "samples are shown by default");

    for how in ["flag", "config"] {
        let extra: &[&str] = if how == "flag" {
            fx.write_config(&fx.config_value());
            &["--samples", "0"]
        } else {
            let mut cfg = fx.config_value();
            cfg["report"] = serde_json::json!({ "samples": 0 });
            fx.write_config(&cfg);
            &[]
        };
        let out = fx.run_json(extra);
        assert_eq!(out.code, Some(3), "{how}: {}", out.describe());
        assert!(!out.stdout.contains("example.org"), "{how}: a sample on stdout");
        assert!(!files(&fx).contains("example.org"), "{how}: a sample value is written in the workdir");
        let r = out.json().unwrap();
        let f = r["findings"].as_array().unwrap().iter().find(|f| f["kind"] == "unique_added").unwrap().clone();
        assert_eq!(f["evidence"]["duplicate_groups"], 2, "{how}: the counts stay: {f}");
    }
}

/// `rehearse hints`: on a terminal (a pty from util-linux `script`), the question about a NOT NULL
/// column without a default is answered, the answer lands in the sysadmin's hints file, and the
/// next rehearsal passes with it; without a terminal it refuses and names the file to edit.
#[test]
fn the_questioner_turns_answers_into_sysadmin_hints() {
    let fx = Fixture::story("add-not-null-without-default");
    assert_eq!(fx.run_json(&[]).code, Some(3));
    let hints_file = fx.dir().join("sysadmin-hints.yaml");

    let refused = rehearse(["hints", "--config", fx.config.to_str().unwrap()], fx.dir());
    assert_eq!(refused.code, Some(5), "{}", refused.describe());
    assert!(refused.stderr.contains("no terminal") && refused.stderr.contains("sysadmin-hints.yaml"));

    if std::process::Command::new("script").arg("--version").output().is_err() {
        panic!("util-linux `script` is needed to give the questioner a terminal (apt-get install bsdutils)");
    }
    let command = format!("{} hints --config {}", env!("CARGO_BIN_EXE_rehearse"), fx.config.display());
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &command, "/dev/null"]).current_dir(fx.dir());
    let out = common::run_command(cmd, Some(b"'OFF-' || id\n"), std::time::Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert!(out.stdout.contains("NOT NULL without a default"), "the question shows the finding\n{}", out.describe());
    let written = std::fs::read_to_string(&hints_file).unwrap();
    let parsed: serde_yaml::Value = serde_yaml::from_str(&written).unwrap();
    assert_eq!(parsed["defaults"]["org_office.code"].as_str(), Some("'OFF-' || id"), "{written}");

    let again = fx.run_json(&["--sysadmin-hints", hints_file.to_str().unwrap()]);
    assert_eq!(again.code, Some(0), "{}", again.describe());
    let rows = fx.live.query_test_copy(&fx.workdir, "SELECT code FROM org_office WHERE id = 2").unwrap();
    assert_eq!(rows, [["OFF-2"]]);
}
