//! Running a script on a database in one transaction, with rollback on the first failure.
//!
//! The script may carry its own `BEGIN` at the top and `COMMIT` at the end (so a sysadmin can run
//! it by hand); the runner owns the transaction either way and refuses a script that commits or
//! rolls back in the middle, or that still has a TODO marker, or a guard marker that guards no
//! query. Nothing runs before those checks.

use crate::engine::{Connection, Dialect, StatementFailure, StatementTiming};
use crate::sqltext::{self, Statement, TxControl};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RunError {
    #[error("the script still has {count} TODO(rehearse) marker(s) (first at line {first}): decide them, remove the markers, and rehearse the edited script with --script")]
    TodoLeft { count: usize, first: usize },
    #[error("the script must be one transaction: line {line} has {what} in the middle; keep BEGIN at the top and COMMIT at the end only")]
    Shape { line: usize, what: String },
    #[error("line {line}: {what}")]
    Guard { line: usize, what: String },
    #[error("{0}")]
    Failed(StatementFailure),
}

/// The script split into session settings (before BEGIN) and the transaction body.
pub struct Prepared {
    pub prelude: Vec<Statement>,
    pub body: Vec<Statement>,
}

pub fn prepare(script: &str, dialect: Dialect) -> Result<Prepared, RunError> {
    let todos = sqltext::todo_lines(script);
    if let Some(first) = todos.first() {
        return Err(RunError::TodoLeft { count: todos.len(), first: *first });
    }
    let stmts = sqltext::split(script, dialect);
    check_guards(script, &stmts)?;
    let begin = stmts.iter().position(|s| sqltext::tx_control(&s.sql) == TxControl::Begin);
    let (prelude, rest): (Vec<Statement>, Vec<Statement>) = match begin {
        Some(i) => {
            for s in &stmts[..i] {
                if !is_session_setting(&s.sql) {
                    return Err(RunError::Shape {
                        line: s.line,
                        what: "a statement before BEGIN that is not a session setting".into(),
                    });
                }
            }
            (stmts[..i].to_vec(), stmts[i + 1..].to_vec())
        }
        None => (vec![], stmts),
    };
    let mut body = rest;
    if let Some(last) = body.last() {
        if sqltext::tx_control(&last.sql) == TxControl::Commit {
            body.pop();
        }
    }
    for s in &body {
        let tc = sqltext::tx_control(&s.sql);
        if tc != TxControl::None {
            return Err(RunError::Shape {
                line: s.line,
                what: format!("{:?}", s.sql.split_whitespace().next().unwrap_or("")),
            });
        }
    }
    Ok(Prepared { prelude, body })
}

/// Every guard marker must sit directly above the SELECT it guards, inside the transaction. A
/// marker whose SELECT was deleted must not make the next statement a guard, nor be ignored: the
/// sysadmin deletes the marker line to drop a check.
fn check_guards(script: &str, stmts: &[Statement]) -> Result<(), RunError> {
    let lines: Vec<&str> = script.lines().collect();
    for line in sqltext::guard_lines(script) {
        if let Some(Err(what)) = sqltext::Guard::parse(line, lines[line - 1]) {
            return Err(RunError::Guard { line, what });
        }
        let Some(st) = stmts.iter().find(|s| s.guard.as_ref().is_some_and(|g| g.line == line)) else {
            return Err(RunError::Guard {
                line,
                what: "this guard(rehearse) marker is not directly above a statement: put its SELECT on the next line, or delete the marker to drop the check".into(),
            });
        };
        let first = st.sql.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        if first != "SELECT" {
            return Err(RunError::Guard {
                line,
                what: format!("this guard(rehearse) marker is above a {first} statement, not a SELECT: a guard is one SELECT that counts; restore it, or delete the marker to drop the check"),
            });
        }
    }
    Ok(())
}

fn is_session_setting(sql: &str) -> bool {
    let first = sql.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
    matches!(first.as_str(), "PRAGMA" | "SET")
}

/// Run the prepared script; `before_commit` verifies the result inside the transaction.
pub fn run(
    conn: &mut dyn Connection,
    p: &Prepared,
    before_commit: &mut dyn FnMut(&mut dyn Connection) -> anyhow::Result<()>,
) -> Result<Vec<StatementTiming>, RunError> {
    conn.run_in_transaction(&p.prelude, &p.body, before_commit).map_err(RunError::Failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_todo_marker_stops_the_script_before_anything_runs() {
        let e = prepare("BEGIN;\n-- TODO(rehearse): decide\nCOMMIT;", Dialect::Sqlite).err().unwrap();
        assert!(matches!(e, RunError::TodoLeft { count: 1, first: 2 }));
    }

    #[test]
    fn commit_in_the_middle_is_refused() {
        let e = prepare("BEGIN;\nSELECT 1;\nCOMMIT;\nSELECT 2;\nCOMMIT;", Dialect::Sqlite).err().unwrap();
        assert!(matches!(e, RunError::Shape { line: 3, .. }), "{e}");
    }

    #[test]
    fn a_guard_marker_makes_the_select_below_it_a_guard() {
        let p = prepare(
            "BEGIN;\n-- guard(rehearse): expect 2 NULL values in t.c\nSELECT count(*) - count(\"c\") FROM \"t\";\nCOMMIT;",
            Dialect::Sqlite,
        )
        .ok()
        .unwrap();
        let g = p.body[0].guard.as_ref().expect("a guard");
        assert_eq!((g.line, g.expect, g.label.as_str()), (2, 2, "NULL values in t.c"));
        assert_eq!(p.body[0].sql, "SELECT count(*) - count(\"c\") FROM \"t\"", "the statement is what was read");
    }

    #[test]
    fn a_guard_marker_without_its_select_is_refused_before_anything_runs() {
        // The SELECT was deleted: the ALTER below must not become a guard, nor the marker be ignored.
        let e = prepare(
            "BEGIN;\n-- guard(rehearse): expect 0 rows in t\nALTER TABLE t ADD c int;\nCOMMIT;",
            Dialect::Sqlite,
        )
        .err()
        .unwrap();
        assert!(matches!(e, RunError::Guard { line: 2, .. }), "{e}");
        assert!(e.to_string().contains("not a SELECT"), "{e}");
        // A blank line between the marker and its SELECT.
        let e = prepare(
            "BEGIN;\n-- guard(rehearse): expect 0 rows in t\n\nSELECT count(*) FROM t;\nCOMMIT;",
            Dialect::Sqlite,
        )
        .err()
        .unwrap();
        assert!(matches!(e, RunError::Guard { line: 2, .. }), "{e}");
        // A marker that cannot be read.
        let e = prepare("BEGIN;\n-- guard(rehearse): expect some\nSELECT 1;\nCOMMIT;", Dialect::Sqlite).err().unwrap();
        assert!(matches!(e, RunError::Guard { line: 2, .. }) && e.to_string().contains("whole number"), "{e}");
    }

    #[test]
    fn deleting_the_marker_line_leaves_a_plain_select() {
        let p = prepare("BEGIN;\nSELECT count(*) FROM t;\nCOMMIT;", Dialect::Postgres).ok().unwrap();
        assert_eq!(p.body[0].guard, None);
    }

    #[test]
    fn pragmas_before_begin_are_the_prelude() {
        let p = prepare("PRAGMA foreign_keys = OFF;\nBEGIN;\nSELECT 1;\nCOMMIT;", Dialect::Sqlite).ok().unwrap();
        assert_eq!(p.prelude.len(), 1);
        assert_eq!(p.body.len(), 1);
        assert_eq!(p.body[0].line, 3);
    }
}
