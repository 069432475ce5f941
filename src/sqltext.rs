//! Splitting a SQL script into statements, each with the line it starts on, so a failure can name
//! its line, and finding the `-- TODO(rehearse):` markers that stop a script from running.
//!
//! It understands quotes, comments, PostgreSQL dollar quoting and SQLite trigger bodies. It never
//! changes a statement's text: what runs is exactly what the sysadmin read.

use crate::engine::Dialect;

pub const TODO_MARKER: &str = "-- TODO(rehearse):";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Statement {
    /// 1-based line of the statement's first character (comments before it excluded).
    pub line: usize,
    pub sql: String,
}

/// Lines that carry a TODO marker (1-based line numbers).
pub fn todo_lines(script: &str) -> Vec<usize> {
    script.lines().enumerate().filter(|(_, l)| l.trim_start().starts_with(TODO_MARKER)).map(|(i, _)| i + 1).collect()
}

/// Split a script into statements. Empty statements (only comments) are dropped.
pub fn split(script: &str, dialect: Dialect) -> Vec<Statement> {
    let chars: Vec<char> = script.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let mut start: Option<(usize, usize)> = None; // (char index, line) of the first code char
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
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
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
        }
        // Quoted text: skip to the closing quote (doubled quotes stay inside).
        let close = match c {
            '\'' | '"' => Some(c),
            '`' if dialect == Dialect::Mysql => Some('`'),
            '[' if dialect == Dialect::Sqlite => Some(']'),
            _ => None,
        };
        if let Some(q) = close {
            flush_word(&mut word, &mut words_seen, &mut depth);
            i += 1;
            while i < chars.len() {
                if chars[i] == '\n' {
                    line += 1;
                }
                if dialect == Dialect::Mysql && q == '\'' && chars[i] == '\\' {
                    i += 2;
                    continue;
                }
                if chars[i] == q {
                    if chars.get(i + 1) == Some(&q) && q != ']' {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i += 1;
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
                    out.push(Statement { line: l, sql: sql.trim().to_string() });
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
            out.push(Statement { line: l, sql });
        }
    }
    out
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
    fn transaction_control_is_recognised() {
        assert_eq!(tx_control("BEGIN"), TxControl::Begin);
        assert_eq!(tx_control("commit"), TxControl::Commit);
        assert_eq!(tx_control("SELECT 1"), TxControl::None);
    }
}
