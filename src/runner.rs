//! Running a script on a database in one transaction, with rollback on the first failure.
//!
//! The script may carry its own `BEGIN` at the top and `COMMIT` at the end (so a sysadmin can run
//! it by hand); the runner owns the transaction either way and refuses a script that commits or
//! rolls back in the middle, or that still has a TODO marker. Nothing runs before those checks.

use crate::engine::{Connection, Dialect, StatementFailure, StatementTiming};
use crate::sqltext::{self, Statement, TxControl};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RunError {
    #[error("the script still has {count} TODO(rehearse) marker(s) (first at line {first}): decide them, remove the markers, and rehearse the edited script with --script")]
    TodoLeft { count: usize, first: usize },
    #[error("the script must be one transaction: line {line} has {what} in the middle; keep BEGIN at the top and COMMIT at the end only")]
    Shape { line: usize, what: String },
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
    fn pragmas_before_begin_are_the_prelude() {
        let p = prepare("PRAGMA foreign_keys = OFF;\nBEGIN;\nSELECT 1;\nCOMMIT;", Dialect::Sqlite).ok().unwrap();
        assert_eq!(p.prelude.len(), 1);
        assert_eq!(p.body.len(), 1);
        assert_eq!(p.body[0].line, 3);
    }
}
