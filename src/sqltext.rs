//! Splitting a SQL script into statements, each with the line it starts on, so a failure can name
//! its line; finding the `-- TODO(rehearse):` markers that stop a script from running; and reading
//! the `-- guard(rehearse):` markers that turn the statement below them into a guard.
//!
//! It understands quotes, comments, PostgreSQL dollar quoting and SQLite trigger bodies. It never
//! changes a statement's text: what runs is exactly what the sysadmin read (a guard's marker is a
//! comment beside its statement, not part of it).

use crate::engine::Dialect;

pub const TODO_MARKER: &str = "-- TODO(rehearse):";
pub const GUARD_MARKER: &str = "-- guard(rehearse):";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Statement {
    /// 1-based line of the statement's first character (comments before it excluded).
    pub line: usize,
    pub sql: String,
    /// Set when a guard marker sits on the line directly above: the statement is a query whose one
    /// value must equal the figure the rehearsal measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard: Option<Guard>,
}

impl Statement {
    pub fn new(line: usize, sql: impl Into<String>) -> Statement {
        Statement { line, sql: sql.into(), guard: None }
    }
}

/// A guard's expectation, read from its marker line:
/// `-- guard(rehearse): expect 12 NULL values in users.email`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Guard {
    /// 1-based line of the marker.
    pub line: usize,
    /// The figure the rehearsal measured.
    pub expect: i64,
    /// What is counted, in words, for the failure message.
    pub label: String,
}

impl Guard {
    /// The marker line a script writes above a guard's query. One line whatever the label holds:
    /// a line break in it would end the comment and turn the rest into SQL.
    pub fn marker(expect: i64, label: &str) -> String {
        let label: String = label
            .split(|c: char| c.is_whitespace() || c.is_control())
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        format!("{GUARD_MARKER} expect {expect} {label}").trim_end().to_string()
    }

    /// Read a marker line (`line` is its 1-based number): None when the line is no guard marker,
    /// an error (for the sysadmin) when it is one that cannot be read.
    pub fn parse(line: usize, text: &str) -> Option<Result<Guard, String>> {
        let rest = text.trim_start().strip_prefix(GUARD_MARKER)?.trim();
        let Some(after) = rest.strip_prefix("expect").filter(|a| a.is_empty() || a.starts_with(char::is_whitespace))
        else {
            return Some(Err(format!("the guard(rehearse) marker must read \"{GUARD_MARKER} expect <count> <what>\"")));
        };
        let after = after.trim_start();
        let (number, label) = after.split_once(char::is_whitespace).unwrap_or((after, ""));
        Some(match number.parse::<i64>() {
            Ok(expect) => Ok(Guard { line, expect, label: label.trim().to_string() }),
            Err(_) => Err(format!("the guard(rehearse) marker expects {number:?}, which is not a whole number")),
        })
    }

    /// Judge a guard query's result: its one value must equal `expect`. NULL counts as 0 and a
    /// decimal is truncated, as the probes read their figures (an empty table's `sum` is NULL).
    pub fn check(&self, rows: &[crate::engine::Row]) -> Result<(), String> {
        let value = match rows {
            [row] if row.len() == 1 => &row[0],
            _ => {
                return Err(format!(
                    "guard failed: its query must return one number, and it returned {} row(s) of {} column(s)",
                    rows.len(),
                    rows.first().map(|r| r.len()).unwrap_or(0)
                ))
            }
        };
        let Some(now) = crate::probe::figure_value(value.as_deref()) else {
            return Err(format!(
                "guard failed: its query returned {:?}, which is not a number",
                value.as_deref().unwrap_or("")
            ));
        };
        if now == self.expect {
            return Ok(());
        }
        let what = if self.label.is_empty() { String::new() } else { format!(" {}", self.label) };
        Err(format!(
            "guard failed: the rehearsal counted {}{what}, the database now has {now}: the data moved since the rehearsal (or a statement above changed it); rehearse again",
            self.expect
        ))
    }
}

/// Lines that carry a guard marker (1-based), attached to a statement or not.
pub fn guard_lines(script: &str) -> Vec<usize> {
    script.lines().enumerate().filter(|(_, l)| l.trim_start().starts_with(GUARD_MARKER)).map(|(i, _)| i + 1).collect()
}

/// Lines that carry a TODO marker (1-based line numbers).
pub fn todo_lines(script: &str) -> Vec<usize> {
    script.lines().enumerate().filter(|(_, l)| l.trim_start().starts_with(TODO_MARKER)).map(|(i, _)| i + 1).collect()
}

/// Split a script into statements. Empty statements (only comments) are dropped. A statement that
/// starts on the line right after a readable guard marker (a `--` comment alone on its line) gets
/// that guard.
pub fn split(script: &str, dialect: Dialect) -> Vec<Statement> {
    let chars: Vec<char> = script.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let mut start: Option<(usize, usize)> = None; // (char index, line) of the first code char
    let mut marker: Option<Guard> = None; // the last guard marker seen
    let mut guard: Option<Guard> = None; // the current statement's
    let mut depth = 0i32; // BEGIN/CASE nesting inside a trigger body
    let mut word = String::new();
    let mut words_seen: Vec<String> = Vec::new();

    let flush_word = |word: &mut String, words_seen: &mut Vec<String>, depth: &mut i32| {
        if word.is_empty() {
            return;
        }
        let w = word.to_ascii_uppercase();
        if words_seen.len() < 4 {
            words_seen.push(w.clone());
        }
        let is_trigger = words_seen.first().map(|s| s == "CREATE").unwrap_or(false)
            && words_seen.iter().skip(1).take(2).any(|s| s == "TRIGGER");
        if is_trigger {
            match w.as_str() {
                "BEGIN" | "CASE" => *depth += 1,
                "END" => *depth -= 1,
                _ => {}
            }
        }
        word.clear();
    };

    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        // Comments: skipped for statement start, kept in the text.
        if c == '-' && next == Some('-') {
            let from = i;
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            let alone = chars[..from].iter().rev().take_while(|c| **c != '\n').all(|c| c.is_whitespace());
            if alone {
                let text: String = chars[from..i].iter().collect();
                if let Some(Ok(g)) = Guard::parse(line, &text) {
                    marker = Some(g);
                }
            }
            continue;
        }
        if c == '#' && dialect == Dialect::Mysql {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            flush_word(&mut word, &mut words_seen, &mut depth);
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                if chars[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
            i = (i + 2).min(chars.len());
            continue;
        }
        if c == '\n' {
            flush_word(&mut word, &mut words_seen, &mut depth);
            line += 1;
            i += 1;
            continue;
        }
        if c.is_whitespace() {
            flush_word(&mut word, &mut words_seen, &mut depth);
            i += 1;
            continue;
        }
        if start.is_none() && c != ';' {
            start = Some((i, line));
            guard = marker.take().filter(|g| g.line + 1 == line);
        }
        // Quoted text: skip to the closing quote (an unclosed one runs to the end).
        if let Some(q) = quote_close(c, dialect) {
            flush_word(&mut word, &mut words_seen, &mut depth);
            let end = quoted_end(&chars, i, q, dialect).unwrap_or(chars.len());
            line += chars[i..end].iter().filter(|&&ch| ch == '\n').count();
            i = end + 1;
            continue;
        }
        if c == '$' && dialect == Dialect::Postgres {
            // $tag$ ... $tag$
            let mut j = i + 1;
            while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            if j < chars.len() && chars[j] == '$' && !word.chars().last().is_some_and(|p| p.is_alphanumeric()) {
                let tag: String = chars[i..=j].iter().collect();
                let tag_chars: Vec<char> = tag.chars().collect();
                i = j + 1;
                while i < chars.len() && chars[i..].iter().take(tag_chars.len()).ne(tag_chars.iter()) {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
                i = (i + tag_chars.len()).min(chars.len());
                continue;
            }
        }
        if c == ';' {
            flush_word(&mut word, &mut words_seen, &mut depth);
            if depth <= 0 {
                if let Some((s, l)) = start.take() {
                    let sql: String = chars[s..i].iter().collect();
                    out.push(Statement { line: l, sql: sql.trim().to_string(), guard: guard.take() });
                }
                words_seen.clear();
                depth = 0;
            }
            i += 1;
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush_word(&mut word, &mut words_seen, &mut depth);
        }
        i += 1;
    }
    if let Some((s, l)) = start {
        let sql: String = chars[s..].iter().collect();
        let sql = sql.trim().to_string();
        if !sql.is_empty() {
            out.push(Statement { line: l, sql, guard });
        }
    }
    out
}

/// The quote that closes a quoted text `c` opens in `dialect` (strings and identifiers), if any.
fn quote_close(c: char, dialect: Dialect) -> Option<char> {
    match c {
        '\'' | '"' => Some(c),
        '`' if dialect == Dialect::Mysql => Some('`'),
        '[' if dialect == Dialect::Sqlite => Some(']'),
        _ => None,
    }
}

/// The index of the quote `q` that closes the quoted text opened at `open`, or None when it is
/// never closed. A doubled quote stays inside (not `]`), and so does a MySQL backslash escape.
fn quoted_end(chars: &[char], open: usize, q: char, dialect: Dialect) -> Option<usize> {
    let mut i = open + 1;
    while i < chars.len() {
        if dialect == Dialect::Mysql && q == '\'' && chars[i] == '\\' {
            i += 2;
            continue;
        }
        if chars[i] == q {
            if chars.get(i + 1) == Some(&q) && q != ']' {
                i += 2;
                continue;
            }
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Why `expr` (a hint's SQL text, pasted into the script where a value goes) is not one scalar
/// expression, or Ok. It is read by the same rules `split` reads a script by, because that split
/// decides what runs as a statement: no `;` outside quotes, no comment (it would swallow what the
/// script writes after the value), no unclosed quote, parentheses that never close more than they
/// opened and end balanced, no comma outside parentheses (a list, not one value), and exactly one
/// statement once wrapped as `SELECT (<expr>)`.
pub fn one_expression(expr: &str, dialect: Dialect) -> Result<(), String> {
    if expr.trim().is_empty() {
        return Err("it is empty".into());
    }
    let chars: Vec<char> = expr.chars().collect();
    let mut depth = 0i32;
    let mut i = 0;
    let mut prev_word_char = false;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if (c == '-' && next == Some('-')) || (c == '/' && next == Some('*')) || (c == '#' && dialect == Dialect::Mysql)
        {
            return Err("it holds a comment, which would swallow the rest of the script's line".into());
        }
        if let Some(q) = quote_close(c, dialect) {
            let Some(end) = quoted_end(&chars, i, q, dialect) else {
                return Err(format!("a quote ({c}) is not closed"));
            };
            i = end + 1;
            prev_word_char = false;
            continue;
        }
        if c == '$' && dialect == Dialect::Postgres && !prev_word_char {
            let mut j = i + 1;
            while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            if j < chars.len() && chars[j] == '$' {
                let tag: Vec<char> = chars[i..=j].to_vec();
                let body = j + 1;
                let end = (body..=chars.len().saturating_sub(tag.len())).find(|&k| chars[k..k + tag.len()] == tag[..]);
                match end {
                    Some(k) => {
                        i = k + tag.len();
                        prev_word_char = false;
                        continue;
                    }
                    None => return Err("a dollar quote is not closed".into()),
                }
            }
        }
        match c {
            ';' => return Err("it holds a `;`, which would end the statement and start another".into()),
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(
                        "a `)` closes more than the expression opened, so the rest would be SQL of its own".into()
                    );
                }
            }
            ',' if depth == 0 => return Err("it is a list (a comma outside parentheses), not one value".into()),
            _ => {}
        }
        prev_word_char = c.is_alphanumeric() || c == '_';
        i += 1;
    }
    if depth != 0 {
        return Err("its parentheses are not balanced".into());
    }
    if split(&format!("SELECT ({expr})"), dialect).len() != 1 {
        return Err("it reads as more than one statement".into());
    }
    Ok(())
}

/// What a statement does to the transaction, if anything.
#[derive(Debug, PartialEq, Eq)]
pub enum TxControl {
    Begin,
    Commit,
    Rollback,
    None,
}

pub fn tx_control(sql: &str) -> TxControl {
    let first: String = sql.split_whitespace().next().unwrap_or("").trim_end_matches(';').to_ascii_uppercase();
    match first.as_str() {
        "BEGIN" | "START" => TxControl::Begin,
        "COMMIT" | "END" => TxControl::Commit,
        "ROLLBACK" | "SAVEPOINT" | "RELEASE" => TxControl::Rollback,
        _ => TxControl::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semicolons_inside_quotes_and_comments_do_not_split() {
        let s = "-- a; comment\nSELECT 'a;b', \"c;d\";\n/* x; */ SELECT 2;";
        let st = split(s, Dialect::Sqlite);
        assert_eq!(st.len(), 2);
        assert_eq!(st[0].sql, "SELECT 'a;b', \"c;d\"");
        assert_eq!(st[0].line, 2);
        assert_eq!(st[1].line, 3);
    }

    #[test]
    fn sqlite_trigger_body_stays_one_statement() {
        let s = "CREATE TRIGGER t AFTER INSERT ON x BEGIN\n UPDATE x SET a = CASE WHEN 1 THEN 2 END;\n INSERT INTO y VALUES (1);\nEND;\nSELECT 1;";
        let st = split(s, Dialect::Sqlite);
        assert_eq!(st.len(), 2, "{st:?}");
        assert!(st[0].sql.ends_with("END"));
        assert_eq!(st[1].line, 5);
    }

    #[test]
    fn postgres_dollar_quotes_hide_semicolons() {
        let s = "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\nSELECT 2;";
        assert_eq!(split(s, Dialect::Postgres).len(), 2);
    }

    #[test]
    fn empty_statements_between_semicolons_are_dropped() {
        // Found by tests/fuzz_parsers.rs: a lone `;` used to start an empty statement.
        let st = split("SELECT 1 ; ;\n;", Dialect::Sqlite);
        assert_eq!(st.len(), 1);
    }

    #[test]
    fn todo_markers_are_found_by_line() {
        let s = "SELECT 1;\n  -- TODO(rehearse): decide\nSELECT 2;";
        assert_eq!(todo_lines(s), vec![2]);
        assert!(todo_lines("-- todo later").is_empty());
    }

    #[test]
    fn a_guard_marker_attaches_to_the_statement_on_the_next_line_only() {
        let s = "-- guard(rehearse): expect 12 NULL values in users.email\nSELECT count(*) - count(\"email\") FROM \"users\";\n\
                 -- guard(rehearse): expect 0 rows in t\n\nSELECT count(*) FROM t;\n\
                 UPDATE t SET a = 1; -- guard(rehearse): expect 1 x\nSELECT 2;";
        let st = split(s, Dialect::Postgres);
        assert_eq!(st.len(), 4, "{st:?}");
        let g = st[0].guard.as_ref().expect("directly above: a guard");
        assert_eq!((g.line, g.expect, g.label.as_str()), (1, 12, "NULL values in users.email"));
        assert_eq!(st[0].sql, "SELECT count(*) - count(\"email\") FROM \"users\"");
        assert_eq!(st[1].guard, None, "a blank line between marker and statement: not attached");
        assert_eq!(st[3].guard, None, "a marker after code on its line is an ordinary comment");
    }

    #[test]
    fn a_guard_marker_inside_a_string_or_block_comment_is_not_one() {
        let s = "SELECT '\n-- guard(rehearse): expect 1 x\n';\nSELECT 1;\n/*\n-- guard(rehearse): expect 1 y\n*/\nSELECT 2;";
        assert!(split(s, Dialect::Sqlite).iter().all(|st| st.guard.is_none()));
    }

    #[test]
    fn guard_markers_round_trip_and_bad_ones_say_why() {
        let m = Guard::marker(3, "values of t.c\nthat do not convert");
        assert_eq!(m, "-- guard(rehearse): expect 3 values of t.c that do not convert", "one line, always");
        assert_eq!(
            Guard::parse(7, &m),
            Some(Ok(Guard { line: 7, expect: 3, label: "values of t.c that do not convert".into() }))
        );
        assert_eq!(Guard::parse(1, "-- expect 3"), None);
        assert_eq!(Guard::parse(1, "  -- guard(rehearse): expect 0").unwrap().unwrap().label, "");
        assert!(Guard::parse(1, "-- guard(rehearse): 3 rows").unwrap().unwrap_err().contains("expect <count>"));
        assert!(Guard::parse(1, "-- guard(rehearse): expectations").unwrap().is_err());
        assert!(Guard::parse(1, "-- guard(rehearse): expect 1.5 rows").unwrap().unwrap_err().contains("whole number"));
    }

    #[test]
    fn a_guard_passes_on_its_figure_and_fails_in_one_line_otherwise() {
        let g = Guard { line: 41, expect: 12, label: "NULL values in users.email".into() };
        let one = |v: Option<&str>| vec![vec![v.map(str::to_string)]];
        assert_eq!(g.check(&one(Some("12"))), Ok(()));
        assert_eq!(g.check(&one(Some("12.0"))), Ok(()), "MySQL's sum() is a decimal");
        let e = g.check(&one(Some("13"))).unwrap_err();
        assert_eq!(
            e,
            "guard failed: the rehearsal counted 12 NULL values in users.email, the database now has 13: the data moved since the rehearsal (or a statement above changed it); rehearse again"
        );
        let zero = Guard { line: 1, expect: 0, label: "values too long".into() };
        assert_eq!(zero.check(&one(None)), Ok(()), "sum() over no rows is NULL: the probe read it as 0");
        assert!(g.check(&[]).unwrap_err().contains("one number"));
        assert!(g.check(&[vec![Some("1".into()), Some("2".into())]]).unwrap_err().contains("2 column(s)"));
        assert!(g.check(&one(Some("many"))).unwrap_err().contains("not a number"));
    }

    #[test]
    fn a_hint_expression_must_be_one_scalar_expression() {
        for ok in ["'UNKNOWN'", "lower(name)", "CURRENT_TIMESTAMP", "coalesce(a, b)", "'a;b' || '--'", "(1 + 2) * 3"] {
            for d in [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql] {
                assert_eq!(one_expression(ok, d), Ok(()), "{ok} on {d:?}");
            }
        }
        assert_eq!(one_expression("$x$a;b$x$", Dialect::Postgres), Ok(()));
        let bad = |e: &str, d: Dialect| one_expression(e, d).unwrap_err();
        assert!(bad("'x'); UPDATE t SET other = 'pwned'; --", Dialect::Sqlite).contains("`)`"));
        assert!(bad("'x' WHERE 1 = 1; UPDATE t SET other = 'pwned'", Dialect::Sqlite).contains("`;`"));
        assert!(bad("'x' -- the rest", Dialect::Postgres).contains("comment"));
        assert!(bad("'x' /* the rest", Dialect::Postgres).contains("comment"));
        assert!(bad("'x' # the rest", Dialect::Mysql).contains("comment"));
        assert!(bad("'x') FROM t UNION SELECT (1", Dialect::Sqlite).contains("`)`"));
        assert!(bad("'x', 'y'", Dialect::Sqlite).contains("list"));
        assert!(bad("'unclosed", Dialect::Sqlite).contains("quote"));
        assert!(bad("$$open", Dialect::Postgres).contains("dollar"));
        assert!(bad("(1", Dialect::Postgres).contains("balanced"));
        assert!(bad("  ", Dialect::Postgres).contains("empty"));
        // MySQL reads a backslash as an escape, PostgreSQL does not: the same text is one string
        // literal there and three statements here.
        assert_eq!(one_expression("'a\\'; DROP TABLE t; '", Dialect::Mysql), Ok(()));
        assert!(bad("'a\\'; DROP TABLE t; '", Dialect::Postgres).contains("`;`"));
    }

    #[test]
    fn transaction_control_is_recognised() {
        assert_eq!(tx_control("BEGIN"), TxControl::Begin);
        assert_eq!(tx_control("commit"), TxControl::Commit);
        assert_eq!(tx_control("SELECT 1"), TxControl::None);
    }
}
