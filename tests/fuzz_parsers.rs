//! Property tests ("fuzzing" within a bounded time) for every text the project parses itself:
//! SQL splitting, TODO detection, script shape checks, config and hints YAML. None may panic on any
//! input, and splitting must never lose or invent a statement's text. Failing cases are kept by
//! proptest in tests/fuzz_parsers.proptest-regressions (the corpus) and replayed first.

use proptest::prelude::*;
use rehearse::engine::Dialect;
use rehearse::{config, hints, runner, sqltext};

fn dialects() -> impl Strategy<Value = Dialect> {
    prop_oneof![Just(Dialect::Sqlite), Just(Dialect::Postgres), Just(Dialect::Mysql)]
}

/// SQL-ish text: keywords, quotes, comments, semicolons, dollar quotes, brackets and noise.
fn sqlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("SELECT 1".to_string()),
        Just(";".to_string()),
        Just("'a;b'".to_string()),
        Just("\"x;y\"".to_string()),
        Just("`t;`".to_string()),
        Just("[c;d]".to_string()),
        Just("-- note; here\n".to_string()),
        Just("/* c; */".to_string()),
        Just("$$ x; $$".to_string()),
        Just("$tag$ y; $tag$".to_string()),
        Just("CREATE TRIGGER t AFTER INSERT ON x BEGIN".to_string()),
        Just("END".to_string()),
        Just("CASE WHEN 1 THEN 2 END".to_string()),
        Just("\n".to_string()),
        Just("-- TODO(rehearse): decide\n".to_string()),
        Just("\n-- guard(rehearse): expect 1 rows in t\n".to_string()),
        Just("-- guard(rehearse): expect x\n".to_string()),
        "[ -~]{0,12}".prop_map(|s| s),
        any::<char>().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(token, 0..40).prop_map(|v| v.join(" "))
}

fn non_space(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::Direct(
            "tests/fuzz_parsers.proptest-regressions"
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn splitting_never_panics_and_keeps_every_statement_in_order(sql in sqlish(), d in dialects()) {
        let stmts = sqltext::split(&sql, d);
        let total_lines = sql.lines().count().max(1);
        let mut cursor = 0usize;
        for s in &stmts {
            prop_assert!(!s.sql.trim().is_empty());
            prop_assert!(s.line >= 1 && s.line <= total_lines + 1, "line {} of {}", s.line, total_lines);
            // Each statement is a piece of the input, found after the previous one.
            let found = sql[cursor..].find(&s.sql);
            prop_assert!(found.is_some(), "statement {:?} is not in the input after byte {}", s.sql, cursor);
            cursor += found.unwrap() + s.sql.len();
        }
    }

    #[test]
    fn plain_statements_split_exactly(parts in prop::collection::vec("[a-z][a-z0-9 ]{0,20}", 1..10), d in dialects()) {
        let script = parts.iter().map(|p| format!("{p};")).collect::<Vec<_>>().join("\n");
        let stmts = sqltext::split(&script, d);
        let want: Vec<String> = parts.iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect();
        let got: Vec<String> = stmts.iter().map(|s| s.sql.clone()).collect();
        prop_assert_eq!(non_space(&got.join("")), non_space(&want.join("")));
    }

    #[test]
    fn a_todo_marker_anywhere_stops_the_script(sql in sqlish(), d in dialects()) {
        let with_todo = format!("{sql}\n-- TODO(rehearse): decide\n");
        prop_assert!(runner::prepare(&with_todo, d).is_err());
        prop_assert!(!sqltext::todo_lines(&with_todo).is_empty());
    }

    #[test]
    fn guard_markers_never_make_preparing_panic_and_each_one_guards_a_select_or_is_refused(sql in sqlish(), d in dialects()) {
        if let Ok(p) = runner::prepare(&sql, d) {
            let guarded = p.body.iter().filter(|s| s.guard.is_some()).count();
            prop_assert_eq!(guarded, sqltext::guard_lines(&sql).len());
            for s in p.body.iter().filter(|s| s.guard.is_some()) {
                prop_assert!(s.sql.to_ascii_uppercase().starts_with("SELECT"));
            }
        }
    }

    #[test]
    fn hints_parsing_never_panics(text in "[ -~\n]{0,200}") {
        let _ = hints::Hints::parse(&text, std::path::Path::new("fuzz.yaml"));
    }

    #[test]
    fn hints_shaped_yaml_never_panics(
        key in "[a-z_.]{1,12}", val in "[ -~]{0,12}", section in prop_oneof![
            Just("renames"), Just("values"), Just("defaults"), Just("accept_loss"), Just("split"), Just("merge")]
    ) {
        let text = format!("{section}:\n  {key}: {val}\n");
        let _ = hints::Hints::parse(&text, std::path::Path::new("fuzz.yaml"));
        let text = format!("{section}:\n  - {val}\n");
        let _ = hints::Hints::parse(&text, std::path::Path::new("fuzz.yaml"));
    }

    #[test]
    fn config_parsing_never_panics(text in "[ -~\n]{0,200}") {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("upgrade.yaml");
        std::fs::write(&p, &text).unwrap();
        let _ = config::resolve(Some(&p), &config::Overrides::default());
    }
}
