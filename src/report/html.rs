//! What the HTML report needs beyond the JSON value: findings grouped per table, the findings
//! that wait for a human, the migration script as numbered lines (TODO and failing lines marked),
//! the slowest statements, and the verification table with its differences.
//!
//! Everything here is derived from the JSON value and the script file, so `rehearse report
//! --format html` rebuilds exactly what the run wrote. It never escapes: the template does
//! (autoescape is on for `report.html`), except in [`code_spans`], which escapes first itself.

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The migration script as the report can show it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ScriptView {
    /// The file named by `script`, whose SHA-256 is still the report's `script_sha256`.
    Shown {
        path: String,
        lines: Vec<Line>,
    },
    /// The file exists but was edited after the report: showing it would misreport.
    Changed {
        path: String,
    },
    Missing {
        path: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub n: usize,
    pub text: String,
    pub todo: bool,
    pub comment: bool,
    pub failed: bool,
}

/// Read the script the report names, trying the path as written, then inside the workdir, then
/// the rehearsed copy (`--live` keeps one there after a passed rehearsal).
pub fn read_script(value: &Value) -> ScriptView {
    let named = str_at(value, "script");
    let workdir = PathBuf::from(str_at(value, "workdir"));
    let sha = str_at(value, "script_sha256");
    let mut candidates = vec![PathBuf::from(&named)];
    if Path::new(&named).is_relative() {
        candidates.push(workdir.join(&named));
    }
    candidates.push(workdir.join(crate::record::SCRIPT));
    let mut changed = false;
    for path in candidates.iter().filter(|p| !p.as_os_str().is_empty()) {
        let Ok(text) = fs_err::read_to_string(path) else { continue };
        if crate::schema::sha256_hex(text.as_bytes()) == sha {
            let failed = value.pointer("/rehearsal/failed_line").and_then(Value::as_u64).map(|n| n as usize);
            return ScriptView::Shown { path: named, lines: lines(&text, failed) };
        }
        changed |= *path == candidates[0];
    }
    if changed {
        ScriptView::Changed { path: named }
    } else {
        ScriptView::Missing { path: named }
    }
}

fn lines(text: &str, failed: Option<usize>) -> Vec<Line> {
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            let t = l.trim_start();
            Line {
                n: i + 1,
                text: l.to_string(),
                todo: t.starts_with("-- TODO(rehearse):"),
                comment: t.starts_with("--"),
                failed: failed == Some(i + 1),
            }
        })
        .collect()
}

#[derive(Debug, Serialize)]
pub struct Extras {
    words: Words,
    groups: Vec<Group>,
    /// Findings that wait for a person: every `human` one and every loss not yet accepted.
    attention: Vec<Value>,
    /// Lossy findings not accepted yet.
    lossy_open: usize,
    /// The script ran although findings needed a human: the sysadmin's edited script decided them.
    script_decided: bool,
    slowest: Vec<Slow>,
    total_millis: f64,
    statements: usize,
    downtime: Option<String>,
    rows: Vec<RowCount>,
    rows_differ: usize,
    next_steps: Vec<Step>,
    script: ScriptView,
    /// Line numbers of the `-- TODO(rehearse):` markers in the shown script.
    todo_lines: Vec<usize>,
}

/// The words the page shows for verdicts and statuses: always beside their colour, never instead.
#[derive(Debug, Serialize)]
struct Words {
    verdict: BTreeMap<&'static str, &'static str>,
    meaning: BTreeMap<&'static str, &'static str>,
    status: BTreeMap<&'static str, &'static str>,
}

impl Words {
    fn new() -> Words {
        Words {
            verdict: [("auto", "AUTO"), ("lossy", "LOSSY"), ("human", "HUMAN")].into(),
            meaning: [
                ("auto", "generated and safe on this data"),
                ("lossy", "generated, but destroys data"),
                ("human", "needs a decision only a person can make"),
            ]
            .into(),
            status: [("passed", "PASSED"), ("failed", "FAILED"), ("not_run", "NOT RUN")].into(),
        }
    }
}

/// The findings of one table, in the report's (foreign-key) order.
#[derive(Debug, Serialize)]
struct Group {
    table: String,
    worst: String,
    findings: Vec<Value>,
}

#[derive(Debug, Serialize)]
struct Slow {
    line: u64,
    millis: f64,
    share: f64,
    /// Width of the bar that shows `share` (0..=120 pixels).
    bar_px: u32,
    rows: u64,
    statement: String,
    /// `copy; rewrites t`: how the engine ran it, when it said (crate::report::how).
    how: String,
}

#[derive(Debug, Serialize)]
struct RowCount {
    table: String,
    before: Option<i64>,
    after: Option<i64>,
    delta: Option<i64>,
    differs: bool,
}

/// A next step split into its prose and the command to copy, when it has one.
#[derive(Debug, Serialize)]
struct Step {
    text: String,
    command: Option<String>,
}

/// Evidence figures in reading order, with the words a sysadmin would use. `notable` figures are
/// problems when above zero.
const FIGURES: &[(&str, &str, bool)] = &[
    ("rows", "rows in the table", false),
    ("non_null", "values that would be lost", true),
    ("nulls", "NULL values", true),
    ("distinct", "distinct values", false),
    ("cast_failures", "values that fail the conversion", true),
    ("too_long", "values too long for the new type", true),
    ("duplicate_groups", "groups of duplicate values", true),
    ("orphans", "references to missing rows", true),
    ("violations", "rows failing the new check", true),
];

fn str_at(value: &Value, key: &str) -> String {
    value.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn rank(verdict: &str) -> u8 {
    match verdict {
        "human" => 2,
        "lossy" => 1,
        _ => 0,
    }
}

pub fn extras(value: &Value, script: ScriptView) -> Extras {
    let empty = Vec::new();
    let findings = value.get("findings").and_then(Value::as_array).unwrap_or(&empty);
    let mut groups: Vec<Group> = Vec::new();
    let mut attention = Vec::new();
    for (i, f) in findings.iter().enumerate() {
        let mut f = f.clone();
        let verdict = str_at(&f, "verdict");
        let accepted = f.get("accepted").and_then(Value::as_bool).unwrap_or(false);
        let evidence = f.get("evidence").cloned().unwrap_or(Value::Null);
        let figures: Vec<Value> = FIGURES
            .iter()
            .filter_map(|(key, label, notable)| {
                let n = evidence.get(*key)?.as_i64()?;
                Some(serde_json::json!({ "key": key, "label": label, "value": n, "notable": *notable && n > 0 }))
            })
            .collect();
        f["id"] = Value::String(format!("f{}", i + 1));
        f["figures"] = Value::Array(figures);
        if verdict == "human" || (verdict == "lossy" && !accepted) {
            attention.push(f.clone());
        }
        let table = str_at(&f, "table");
        match groups.iter_mut().find(|g| g.table == table) {
            Some(g) => {
                if rank(&verdict) > rank(&g.worst) {
                    g.worst = verdict;
                }
                g.findings.push(f);
            }
            None => groups.push(Group { table, worst: verdict, findings: vec![f] }),
        }
    }

    let rehearsal = value.get("rehearsal").cloned().unwrap_or(Value::Null);
    let timings = rehearsal.get("timings").and_then(Value::as_array).cloned().unwrap_or_default();
    let total_millis: f64 = timings.iter().filter_map(|t| t.get("millis")?.as_f64()).sum();
    let statement_at = |line: u64| match &script {
        ScriptView::Shown { lines, .. } => {
            lines.get((line as usize).saturating_sub(1)).map(|l| truncate(l.text.trim(), 90)).unwrap_or_default()
        }
        _ => String::new(),
    };
    let mut slowest: Vec<Slow> = timings
        .iter()
        .map(|t| {
            let line = t.get("line").and_then(Value::as_u64).unwrap_or(0);
            let millis = t.get("millis").and_then(Value::as_f64).unwrap_or(0.0);
            let share = if total_millis > 0.0 { 100.0 * millis / total_millis } else { 0.0 };
            Slow {
                line,
                millis,
                share,
                bar_px: (share * 1.2).round().clamp(2.0, 120.0) as u32,
                rows: t.get("rows").and_then(Value::as_u64).unwrap_or(0),
                statement: statement_at(line),
                how: crate::report::how(
                    &t.get("rewrote")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect::<Vec<_>>())
                        .unwrap_or_default(),
                    t.get("algorithm").and_then(Value::as_str),
                ),
            }
        })
        .collect();
    slowest.sort_by(|a, b| b.millis.total_cmp(&a.millis).then(a.line.cmp(&b.line)));
    slowest.truncate(5);

    let counts = |key: &str| -> BTreeMap<String, i64> {
        rehearsal
            .get(key)
            .and_then(Value::as_object)
            .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_i64()?))).collect())
            .unwrap_or_default()
    };
    let (before, after) = (counts("rows_before"), counts("rows_after"));
    let mut tables: Vec<&String> = before.keys().chain(after.keys()).collect();
    tables.sort();
    tables.dedup();
    let rows: Vec<RowCount> = tables
        .into_iter()
        .map(|t| {
            let (b, a) = (before.get(t).copied(), after.get(t).copied());
            let delta = b.zip(a).map(|(b, a)| a - b);
            // No "after" at all means the script did not run or was rolled back: nothing differs.
            let differs = !after.is_empty() && (delta.is_some_and(|d| d != 0) || a.is_none() || b.is_none());
            RowCount { table: t.clone(), before: b, after: a, delta, differs }
        })
        .collect();
    let rows_differ = rows.iter().filter(|r| r.differs).count();
    let lossy_open = attention.iter().filter(|f| f.get("verdict").and_then(Value::as_str) == Some("lossy")).count();
    let todo_count = value.get("todo_count").and_then(Value::as_u64).unwrap_or(0);
    let ran = rehearsal.get("status").and_then(Value::as_str).is_some_and(|s| s != "not_run");

    let next_steps = value
        .get("next_steps")
        .and_then(Value::as_array)
        .map(|steps| steps.iter().filter_map(Value::as_str).map(step).collect())
        .unwrap_or_default();

    let todo_lines = match &script {
        ScriptView::Shown { lines, .. } => lines.iter().filter(|l| l.todo).map(|l| l.n).collect(),
        _ => vec![],
    };
    Extras {
        words: Words::new(),
        todo_lines,
        groups,
        attention,
        lossy_open,
        script_decided: ran && todo_count == 0,
        slowest,
        total_millis,
        statements: timings.len(),
        downtime: rehearsal.get("seconds").and_then(Value::as_f64).map(duration),
        rows,
        rows_differ,
        next_steps,
        script,
    }
}

fn step(s: &str) -> Step {
    match s.find("rehearse ") {
        Some(0) => Step { text: String::new(), command: Some(s.to_string()) },
        Some(i) if s[..i].trim_end().ends_with(':') => {
            Step { text: s[..i].trim_end().to_string(), command: Some(s[i..].to_string()) }
        }
        _ => Step { text: s.to_string(), command: None },
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max - 1).collect();
    format!("{cut}…")
}

/// Seconds as a person reads them: `under 0.01 s`, `0.03 s`, `12.4 s`, `3 min 12 s`, `1 h 05 min`.
pub fn duration(seconds: f64) -> String {
    if seconds < 0.005 {
        "under 0.01 s".to_string()
    } else if seconds < 10.0 {
        format!("{seconds:.2} s")
    } else if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else if seconds < 3600.0 {
        let s = seconds.round() as u64;
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        let m = (seconds / 60.0).round() as u64;
        format!("{} h {:02} min", m / 60, m % 60)
    }
}

/// `{{ text | code_spans | safe }}`: escape, then show `backticked` words as `<code>`.
pub fn code_spans(value: &Value, _: &std::collections::HashMap<String, Value>) -> tera::Result<Value> {
    let text = value.as_str().unwrap_or_default();
    let mut out = String::with_capacity(text.len() + 16);
    let mut parts = text.split('`').peekable();
    let mut inside = false;
    while let Some(part) = parts.next() {
        // An unmatched last backtick stays a backtick.
        if inside && parts.peek().is_none() {
            out.push('`');
            out.push_str(&tera::escape_html(part));
            break;
        }
        if inside {
            out.push_str("<code>");
            out.push_str(&tera::escape_html(part));
            out.push_str("</code>");
        } else {
            out.push_str(&tera::escape_html(part));
        }
        inside = !inside;
    }
    Ok(Value::String(out))
}

/// `{{ n | thousands }}`: 1234567 as `1 234 567` (thin spaces: unambiguous in every locale).
pub fn thousands(value: &Value, _: &std::collections::HashMap<String, Value>) -> tera::Result<Value> {
    let Some(n) = value.as_i64() else { return Ok(value.clone()) };
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    Ok(Value::String(if n < 0 { format!("−{out}") } else { out }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn code_spans_escape_before_marking_code() {
        let v = code_spans(&Value::from("drop `a<b>` & `<script>` and `x"), &HashMap::new()).unwrap();
        assert_eq!(v.as_str().unwrap(), "drop <code>a&lt;b&gt;</code> &amp; <code>&lt;script&gt;</code> and `x");
    }

    #[test]
    fn thousands_groups_digits_with_thin_spaces() {
        let v = thousands(&Value::from(-1234567), &HashMap::new()).unwrap();
        assert_eq!(v.as_str().unwrap(), "−1\u{202f}234\u{202f}567");
        assert_eq!(thousands(&Value::from(999), &HashMap::new()).unwrap().as_str().unwrap(), "999");
    }

    #[test]
    fn next_step_commands_are_split_from_their_prose() {
        let s = step("When satisfied: rehearse run --config u.yaml --live");
        assert_eq!(s.text, "When satisfied:");
        assert_eq!(s.command.as_deref(), Some("rehearse run --config u.yaml --live"));
        assert!(step("Point the new code at the test copy (rehearse x).").command.is_none());
    }

    #[test]
    fn rows_differ_only_when_the_script_ran() {
        let v = serde_json::json!({ "rehearsal": { "rows_before": { "t": 3 }, "rows_after": {} } });
        let e = extras(&v, ScriptView::Missing { path: String::new() });
        assert_eq!(e.rows_differ, 0);
        let v =
            serde_json::json!({ "rehearsal": { "rows_before": { "t": 3, "u": 1 }, "rows_after": { "t": 2, "u": 1 } } });
        let e = extras(&v, ScriptView::Missing { path: String::new() });
        assert_eq!(e.rows_differ, 1);
        assert_eq!(e.rows[0].delta, Some(-1));
    }

    #[test]
    fn duration_reads_like_a_person_says_it() {
        assert_eq!(duration(0.001), "under 0.01 s");
        assert_eq!(duration(0.031), "0.03 s");
        assert_eq!(duration(12.44), "12.4 s");
        assert_eq!(duration(192.0), "3 min 12 s");
        assert_eq!(duration(3900.0), "1 h 05 min");
    }
}
