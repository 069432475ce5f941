//! The bad-input corpus: every way a sysadmin's input can be wrong, each run through the binary
//! from a good SQLite story with one thing broken. Each case must end with its documented exit
//! code (docs/exit-codes.md) and one `rehearse:` line naming the problem, no panic or backtrace,
//! live byte-for-byte unchanged, and no leftover that blocks the next good run, which must pass.
//! Server cases (unreachable, wrong user, missing database, a test copy rehearse did not make)
//! run against the PostgreSQL and MariaDB test servers.

mod common;

use common::db::{server_for, Engine};
use common::{git, Fixture, Output};
use serde_json::Value as Json;

/// What a broken input must produce.
enum Expect {
    /// An error: exit code, and words the last stderr line must contain.
    Error(i32, &'static [&'static str]),
    /// A report on stdout with this exit code and `rehearsal.status`.
    Report(i32, &'static str),
    /// A command-line error in clap's own words (exit 2, `error:` naming the flag).
    Usage(&'static [&'static str]),
}

struct Case {
    name: &'static str,
    /// Break one thing; returns the extra arguments of `rehearse run`.
    setup: fn(&Fixture) -> Vec<String>,
    expect: Expect,
}

fn cfg_set(fx: &Fixture, path: &[&str], value: Json) {
    let mut v = fx.config_value();
    let mut at = &mut v;
    for (i, k) in path.iter().enumerate() {
        if i + 1 == path.len() {
            at[*k] = value.clone();
        } else {
            at = &mut at[*k];
        }
    }
    fx.write_config(&v);
}

fn cfg_text(fx: &Fixture, f: impl FnOnce(String) -> String) {
    let text = serde_yaml::to_string(&fx.config_value()).unwrap();
    fx.write_config_text(&f(text));
}

/// Commit `files` to the app repository and point the config at the new tag `v3`.
fn new_revision(fx: &Fixture, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = fx.repo.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    git(&fx.repo, &["add", "-A"]).unwrap();
    git(&fx.repo, &["commit", "-q", "-m", "v3"]).unwrap();
    git(&fx.repo, &["tag", "v3"]).unwrap();
    cfg_set(fx, &["app", "revision"], "v3".into());
}

fn hints(fx: &Fixture, text: &str) {
    let p = fx.dir().join("sysadmin-hints.yaml");
    std::fs::write(&p, text).unwrap();
    cfg_set(fx, &["hints"], p.to_str().unwrap().into());
}

fn script(fx: &Fixture, text: &str) -> Vec<String> {
    let p = fx.dir().join("edited.sql");
    std::fs::write(&p, text).unwrap();
    vec!["--script".into(), p.to_str().unwrap().into()]
}

fn none(_: &Fixture) -> Vec<String> {
    vec![]
}

const TARGET_TABLE: &str = "CREATE TABLE org_office (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL)";

fn cases() -> Vec<Case> {
    use Expect::{Error, Report, Usage};
    vec![
        // --- the config file
        Case {
            name: "malformed YAML",
            setup: |fx| {
                fx.write_config_text("live: { url: [unclosed\n");
                vec![]
            },
            expect: Error(2, &["upgrade.yaml", "line"]),
        },
        Case {
            name: "a tab where YAML wants spaces",
            setup: |fx| {
                cfg_text(fx, |t| t.replacen("  url", "\turl", 1));
                vec![]
            },
            expect: Error(2, &["upgrade.yaml"]),
        },
        Case {
            name: "unknown top-level key",
            setup: |fx| {
                cfg_text(fx, |t| format!("{t}livee: {{ url: x }}\n"));
                vec![]
            },
            expect: Error(2, &["livee"]),
        },
        Case {
            name: "misspelled nested key",
            setup: |fx| {
                cfg_text(fx, |t| t.replacen("url:", "ulr:", 1));
                vec![]
            },
            expect: Error(2, &["ulr"]),
        },
        Case {
            name: "value of the wrong type",
            setup: |fx| {
                cfg_set(fx, &["report"], serde_json::json!({ "samples": "many" }));
                vec![]
            },
            expect: Error(2, &["samples"]),
        },
        Case {
            name: "live.url missing",
            setup: |fx| {
                let mut v = fx.config_value();
                v.as_object_mut().unwrap().remove("live");
                fx.write_config(&v);
                vec![]
            },
            expect: Error(2, &["live.url"]),
        },
        Case {
            name: "two schema sources",
            setup: |fx| {
                cfg_set(fx, &["schema", "command"], "true".into());
                vec![]
            },
            expect: Error(2, &["schema"]),
        },
        Case {
            name: "no schema source",
            setup: |fx| {
                let mut v = fx.config_value();
                v.as_object_mut().unwrap().remove("schema");
                fx.write_config(&v);
                vec![]
            },
            expect: Error(2, &["schema"]),
        },
        Case {
            name: "empty config file",
            setup: |fx| {
                fx.write_config_text("");
                vec![]
            },
            expect: Error(2, &["live.url"]),
        },
        Case {
            name: "config file that does not exist",
            setup: |fx| {
                std::fs::remove_file(&fx.config).unwrap();
                vec![]
            },
            expect: Error(2, &["upgrade.yaml"]),
        },
        Case {
            name: "a bad flag value",
            setup: |_| vec!["--samples=many".into()],
            expect: Usage(&["many", "--samples"]),
        },
        Case { name: "a flag that does not exist", setup: |_| vec!["--dry-run".into()], expect: Usage(&["--dry-run"]) },
        // --- live
        Case {
            name: "unknown URL scheme",
            setup: |fx| {
                cfg_set(fx, &["live", "url"], "ftp://user:hunter2@example.org/db".into());
                vec![]
            },
            expect: Error(2, &["scheme"]),
        },
        Case {
            name: "SQLite file that does not exist",
            setup: |fx| {
                cfg_set(fx, &["live", "url"], format!("sqlite://{}/no-such.db", fx.dir().display()).into());
                vec![]
            },
            expect: Error(2, &["no-such.db"]),
        },
        Case {
            name: "SQLite path that is a folder",
            setup: |fx| {
                let d = fx.dir().join("a-folder.db");
                std::fs::create_dir_all(&d).unwrap();
                cfg_set(fx, &["live", "url"], format!("sqlite://{}", d.display()).into());
                vec![]
            },
            expect: Error(2, &["a-folder.db"]),
        },
        Case {
            name: "file that is not a database",
            setup: |fx| {
                let p = fx.dir().join("notes.db");
                std::fs::write(&p, "my notes, not a database\n").unwrap();
                cfg_set(fx, &["live", "url"], format!("sqlite://{}", p.display()).into());
                vec![]
            },
            expect: Error(2, &["notes.db"]),
        },
        Case {
            name: "empty live file (0 bytes)",
            setup: |fx| {
                let p = fx.dir().join("empty.db");
                std::fs::write(&p, "").unwrap();
                cfg_set(fx, &["live", "url"], format!("sqlite://{}", p.display()).into());
                vec![]
            },
            expect: Error(2, &["empty.db", "0 bytes", "live.url"]),
        },
        Case {
            name: "live locked by another process for the whole run",
            setup: |fx| {
                let path = fx.live.path.clone().unwrap();
                // A writer that holds an exclusive lock and never lets go (killed by `unlock`, by
                // pid: a setup returns only arguments).
                #[allow(clippy::zombie_processes)]
                let mut child = std::process::Command::new("python3")
                    .arg("-c")
                    .arg(format!(
                        "import sqlite3,time,sys; c=sqlite3.connect({:?}, isolation_level=None); c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(60)",
                        path.display().to_string()
                    ))
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                let mut out = child.stdout.take().unwrap();
                let mut buf = [0u8; 6];
                std::io::Read::read_exact(&mut out, &mut buf).unwrap();
                std::fs::write(fx.dir().join("locker.pid"), child.id().to_string()).unwrap();
                std::mem::forget(out);
                vec![]
            },
            expect: Error(1, &["locked", "another process"]),
        },
        // --- the new code
        Case {
            name: "repo that is not git",
            setup: |fx| {
                let p = fx.dir().join("plain");
                std::fs::create_dir_all(&p).unwrap();
                cfg_set(fx, &["app", "repo"], p.to_str().unwrap().into());
                vec![]
            },
            expect: Error(2, &["app.repo", "git"]),
        },
        Case {
            name: "repo that does not exist",
            setup: |fx| {
                cfg_set(fx, &["app", "repo"], fx.dir().join("gone").to_str().unwrap().into());
                vec![]
            },
            expect: Error(2, &["gone"]),
        },
        Case {
            name: "unknown revision",
            setup: |fx| {
                cfg_set(fx, &["app", "revision"], "v9.9.9".into());
                vec![]
            },
            expect: Error(2, &["v9.9.9"]),
        },
        Case {
            name: "checkout folder rehearse did not make",
            setup: |fx| {
                let d = fx.dir().join("checkout");
                std::fs::create_dir_all(&d).unwrap();
                std::fs::write(d.join("precious.txt"), "mine").unwrap();
                vec![]
            },
            expect: Error(5, &["checkout", "not made by rehearse"]),
        },
        Case {
            name: "schema.sql missing in the new code",
            setup: |fx| {
                cfg_set(fx, &["schema", "sql"], "db/nope.sql".into());
                vec![]
            },
            expect: Error(2, &["db/nope.sql"]),
        },
        Case {
            name: "schema.sql with a syntax error",
            setup: |fx| {
                new_revision(
                    fx,
                    &[("db/schema.sql", "CREATE TABLE org_office (id INTEGER PRIMARY KEY,\n  name TEXT,,\n);\n")],
                );
                vec![]
            },
            expect: Error(1, &["schema.sql", "line 1"]),
        },
        Case {
            name: "schema.sql with no tables",
            setup: |fx| {
                new_revision(fx, &[("db/schema.sql", "-- nothing here yet\n")]);
                vec![]
            },
            expect: Error(2, &["no tables", "every table of live would be dropped", "schema.sql db/schema.sql"]),
        },
        Case {
            name: "schema command that fails",
            setup: |fx| {
                let mut v = fx.config_value();
                v["schema"] = serde_json::json!({ "command": "echo 'models broken' >&2; exit 3" });
                fx.write_config(&v);
                vec![]
            },
            expect: Error(1, &["schema.command", "models broken"]),
        },
        Case {
            name: "schema command that does not exist",
            setup: |fx| {
                let mut v = fx.config_value();
                v["schema"] = serde_json::json!({ "command": "./no-such-tool --migrate" });
                fx.write_config(&v);
                vec![]
            },
            expect: Error(1, &["schema.command"]),
        },
        Case {
            name: "schema snapshot that is not a snapshot",
            setup: |fx| {
                let p = fx.dir().join("snap.yaml");
                std::fs::write(&p, "hello: world\n").unwrap();
                let mut v = fx.config_value();
                v["schema"] = serde_json::json!({ "snapshot": p });
                fx.write_config(&v);
                vec![]
            },
            expect: Error(2, &["snap.yaml", "snapshot"]),
        },
        // --- hints
        Case {
            name: "hints file missing",
            setup: |fx| {
                cfg_set(fx, &["hints"], fx.dir().join("no-hints.yaml").to_str().unwrap().into());
                vec![]
            },
            expect: Error(2, &["no-hints.yaml"]),
        },
        Case {
            name: "hints that are not YAML",
            setup: |fx| {
                hints(fx, "renames: { columns: [oops\n");
                vec![]
            },
            expect: Error(2, &["sysadmin-hints.yaml"]),
        },
        Case {
            name: "hints with an unknown key",
            setup: |fx| {
                hints(fx, "renamez: {}\n");
                vec![]
            },
            expect: Error(2, &["renamez"]),
        },
        Case {
            name: "hints renaming an unknown table",
            setup: |fx| {
                hints(fx, "renames: { tables: { no_such_table: org_office } }\n");
                vec![]
            },
            expect: Error(2, &["no_such_table"]),
        },
        Case {
            name: "hints renaming an unknown column",
            setup: |fx| {
                hints(fx, "renames: { columns: { org_office.no_such_column: name } }\n");
                vec![]
            },
            expect: Error(2, &["no_such_column"]),
        },
        Case {
            name: "hints accepting deletions from an unknown table",
            setup: |fx| {
                hints(fx, "accept_delete: { no_such_table: 3 }\n");
                vec![]
            },
            expect: Error(2, &["accept_delete", "no_such_table"]),
        },
        Case {
            name: "hints of the wrong shape",
            setup: |fx| {
                hints(fx, "defaults: [1, 2, 3]\n");
                vec![]
            },
            expect: Error(2, &["defaults"]),
        },
        // --- the edited script
        Case {
            name: "edited script that does not exist",
            setup: |fx| vec!["--script".into(), fx.dir().join("nope.sql").to_str().unwrap().into()],
            expect: Error(1, &["nope.sql"]),
        },
        Case {
            name: "edited script with a syntax error",
            setup: |fx| {
                script(fx, "BEGIN;\nALTER TABLE org_office ADD COLUMN phone TEXT;\nALTER TABLE org_office ADD COLUM x;\nCOMMIT;\n")
            },
            expect: Report(4, "failed"),
        },
        Case {
            name: "edited script with a TODO left",
            setup: |fx| {
                script(
                    fx,
                    "BEGIN;\n-- TODO(rehearse): decide\nALTER TABLE org_office ADD COLUMN phone TEXT;\nCOMMIT;\n",
                )
            },
            expect: Report(3, "not_run"),
        },
        Case {
            name: "edited script that commits half-way",
            setup: |fx| script(fx, "BEGIN;\nALTER TABLE org_office ADD COLUMN phone TEXT;\nCOMMIT;\nBEGIN;\nCOMMIT;\n"),
            expect: Report(3, "not_run"),
        },
        Case {
            name: "edited script that does the wrong thing",
            setup: |fx| script(fx, "BEGIN;\nALTER TABLE org_office ADD COLUMN fax TEXT;\nCOMMIT;\n"),
            expect: Report(4, "failed"),
        },
        // --- the workdir
        Case {
            name: "workdir that is a file",
            setup: |fx| {
                let p = fx.dir().join("work-file");
                std::fs::write(&p, "x").unwrap();
                cfg_set(fx, &["workdir"], p.to_str().unwrap().into());
                vec![]
            },
            expect: Error(1, &["work-file"]),
        },
        Case {
            name: "workdir under a file",
            setup: |fx| {
                let p = fx.dir().join("blocker");
                std::fs::write(&p, "x").unwrap();
                cfg_set(fx, &["workdir"], p.join("work").to_str().unwrap().into());
                vec![]
            },
            expect: Error(1, &["blocker"]),
        },
        Case {
            name: "test copy file rehearse did not make",
            setup: |fx| {
                std::fs::create_dir_all(&fx.workdir).unwrap();
                // Private, so the workdir itself is usable (an open one is refused first).
                std::fs::set_permissions(&fx.workdir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
                std::fs::write(fx.test_copy(), "someone's file").unwrap();
                vec![]
            },
            expect: Error(5, &["upgradetest"]),
        },
        // --- commands in the wrong order
        Case {
            name: "--live with no passed rehearsal",
            setup: |_| vec!["--live".into(), "--yes".into()],
            expect: Error(5, &["rehears"]),
        },
        Case { name: "nothing wrong (the corpus checks itself)", setup: none, expect: Report(0, "passed") },
        Case {
            name: "live with no tables (a first install) is rehearsed, with a note",
            setup: |fx| {
                let p = fx.dir().join("fresh.db");
                rusqlite::Connection::open(&p).unwrap().execute_batch("PRAGMA user_version = 1").unwrap();
                cfg_set(fx, &["live", "url"], format!("sqlite://{}", p.display()).into());
                vec![]
            },
            expect: Report(0, "passed"),
        },
    ]
}

/// The last stderr line of a failure: rehearse's own, naming the problem.
fn check_error(out: &Output, code: i32, words: &[&str]) -> Result<(), String> {
    if out.panicked() {
        return Err("panic or backtrace".into());
    }
    if out.code != Some(code) {
        return Err(format!("exit {:?}, want {code}", out.code));
    }
    if !out.stdout.trim().is_empty() {
        return Err("an error printed something on stdout".into());
    }
    let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    if let Some(l) = lines.iter().find(|l| !l.starts_with("rehearse: ")) {
        return Err(format!("a stderr line that is not rehearse's own: {l:?}"));
    }
    let last = lines.last().copied().unwrap_or_default();
    if last.contains("hunter2") {
        return Err("the password is shown".into());
    }
    for w in words {
        if !last.contains(w) {
            return Err(format!("the error line does not say {w:?}: {last}"));
        }
    }
    Ok(())
}

fn check_usage(out: &Output, words: &[&str]) -> Result<(), String> {
    if out.panicked() || out.code != Some(2) {
        return Err(format!("exit {:?}, want 2 without a panic", out.code));
    }
    let first = out.stderr.lines().next().unwrap_or_default();
    if !first.starts_with("error: ") || !words.iter().all(|w| first.contains(w)) {
        return Err(format!("the first line does not name {words:?}: {first}"));
    }
    Ok(())
}

fn check_report(out: &Output, code: i32, status: &str) -> Result<(), String> {
    if out.panicked() {
        return Err("panic or backtrace".into());
    }
    if out.code != Some(code) {
        return Err(format!("exit {:?}, want {code}", out.code));
    }
    let r = out.json()?;
    match r.pointer("/rehearsal/status").and_then(Json::as_str) {
        Some(s) if s == status => Ok(()),
        other => Err(format!("rehearsal.status {other:?}, want {status}")),
    }
}

fn unlock(fx: &Fixture) {
    if let Ok(pid) = std::fs::read_to_string(fx.dir().join("locker.pid")) {
        let _ = std::process::Command::new("kill").arg("-9").arg(pid.trim()).status();
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn every_bad_input_gets_its_exit_code_and_one_line_and_the_next_run_passes() {
    let cases = cases();
    assert!(cases.len() > 40, "the corpus has {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let fx = Fixture::story("add-nullable-column");
        let before = fx.live.fingerprint().unwrap();
        let extra = (case.setup)(&fx);
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let out = fx.run_json(&extra);
        unlock(&fx);
        let verdict = match case.expect {
            Expect::Error(code, words) => check_error(&out, code, words),
            Expect::Report(code, status) => check_report(&out, code, status),
            Expect::Usage(words) => check_usage(&out, words),
        };
        if let Err(e) = verdict {
            failures.push(format!("{}: {e}\n{}", case.name, common::tail(&out.stderr, 600)));
            continue;
        }
        if let Some(change) = fx.live.fingerprint().unwrap().changed_from(&before) {
            failures.push(format!("{}: live changed: {change}", case.name));
            continue;
        }
        if case.name == "test copy file rehearse did not make" {
            // Kept as it was; the sysadmin moves it away, as the message says.
            assert_eq!(std::fs::read_to_string(fx.test_copy()).unwrap(), "someone's file");
            std::fs::remove_file(fx.test_copy()).unwrap();
        }
        // Nothing left behind blocks the next good run.
        fx.write_config(&fx.config_value());
        let _ = std::fs::remove_dir_all(fx.dir().join("checkout"))
            .or_else(|_| std::fs::remove_file(fx.dir().join("checkout")));
        let good = fx.run_json(&[]);
        if good.code != Some(0) {
            failures.push(format!("{}: the good run after it fails: {}", case.name, common::tail(&good.stderr, 400)));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases:\n\n{}", failures.len(), cases.len(), failures.join("\n\n"));
}

#[test]
fn server_inputs_that_cannot_work_are_named() {
    for engine in [Engine::Postgres, Engine::Mysql] {
        let Some(server) = server_for(engine) else { continue };
        let fx = Fixture::story("add-nullable-column");
        let scheme = if engine == Engine::Postgres { "postgres" } else { "mysql" };
        let user = if engine == Engine::Postgres { "postgres" } else { "root" };
        let live_db = format!("badin_{}_{}", engine.name(), std::process::id());
        server.create_database(&live_db).unwrap();
        server.execute(Some(&live_db), TARGET_TABLE).unwrap();
        let url_of = server.url_of(&live_db);
        let cases: Vec<(&str, String, i32, Vec<String>)> = vec![
            (
                "unreachable port",
                format!("{scheme}://{user}:hunter2@127.0.0.1:1/{live_db}"),
                1,
                vec!["127.0.0.1:1".into()],
            ),
            (
                "unknown host",
                format!("{scheme}://{user}@no-such-host.invalid/{live_db}"),
                1,
                vec!["no-such-host.invalid".into()],
            ),
            (
                "unknown user",
                url_of.replacen(&format!("{user}@"), "nobody_here:hunter2@", 1),
                1,
                vec!["nobody_here".into()],
            ),
            ("missing database", server.url_of("no_such_db_here"), 1, vec!["no_such_db_here".into()]),
        ];
        for (name, url, code, words) in cases {
            let mut cfg = fx.config_value();
            cfg["live"]["url"] = url.clone().into();
            fx.write_config(&cfg);
            let out = fx.run_json(&[]);
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            if let Err(e) = check_error(&out, code, &words) {
                panic!("{} {name}: {e}\n{}", engine.name(), out.describe());
            }
            assert!(!out.stderr.contains("hunter2"), "{name}: the password is shown");
        }
        // A database named like the test copy that rehearse did not make is refused and kept.
        let copy = format!("{live_db}upgradetest");
        server.create_database(&copy).unwrap();
        server.execute(Some(&copy), "CREATE TABLE precious (id INTEGER PRIMARY KEY)").unwrap();
        let mut cfg = fx.config_value();
        cfg["live"]["url"] = url_of.clone().into();
        fx.write_config(&cfg);
        let out = fx.run_json(&[]);
        if let Err(e) = check_error(&out, 5, &[&copy]) {
            panic!("{} foreign test copy: {e}\n{}", engine.name(), out.describe());
        }
        assert_eq!(server.query(&copy, "SELECT count(*) FROM precious").unwrap(), [["0"]], "kept as it was");
        let _ = server.drop_database(&copy);
        let _ = server.drop_database(&live_db);
    }
}
