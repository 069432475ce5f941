//! The report: the JSON contract of DESIGN.md (`report.json`, and stdout with `--format json`),
//! and its text (terminal, 80 columns), Markdown and HTML renderings from `templates/report/`.
//!
//! Every rendering is made from the JSON value, so `rehearse report` re-renders exactly what the
//! run wrote; the HTML one also shows the migration script, read from the file the report names
//! and only while its SHA-256 is still the one reported. Renderers write to `&mut impl Write`.
//! Never holds a password. The HTML template is the only one with autoescape on: identifiers,
//! sample values and SQL come from live data and may hold markup.

mod html;

use crate::findings::Finding;
use crate::verify::Verification;
use anyhow::Context;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed,
    NotRun,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rehearsal {
    pub status: Status,
    pub verified: bool,
    pub rows_before: BTreeMap<String, i64>,
    pub rows_after: BTreeMap<String, i64>,
    /// Why the script was not run, or why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_statement: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timings: Vec<crate::engine::StatementTiming>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// The slowest statements of the run (up to 5), with their text: what live will wait on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub slowest: Vec<Slow>,
    /// Rows the run deleted from kept tables (the hints accepted it), table by table.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rows_lost: BTreeMap<String, i64>,
    /// The losses in words, one per table: how many rows, from where, and where they are kept
    /// (`rehearse_archive_*` tables the script made, or only the backup).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub losses: Vec<String>,
    /// A run whose statements all ran but whose verification failed: what to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Slow {
    pub line: usize,
    pub millis: f64,
    pub rows: u64,
    pub statement: String,
    /// Tables the statement rewrote whole (PostgreSQL: new relfilenode; MySQL: new table id).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rewrote: Vec<String>,
    /// MySQL's way of running a DDL statement: copy, inplace or instant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    /// `rewrote` and `algorithm` in words (how).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub how: String,
}

/// How a statement ran, for the slowest-statements tables: `copy; rewrites t`, `instant`, or
/// empty when the engine said nothing.
pub fn how(rewrote: &[String], algorithm: Option<&str>) -> String {
    let rewrites = (!rewrote.is_empty()).then(|| format!("rewrites {}", rewrote.join(", ")));
    algorithm.map(String::from).into_iter().chain(rewrites).collect::<Vec<_>>().join("; ")
}

impl Rehearsal {
    pub fn not_run(reason: impl Into<String>) -> Rehearsal {
        Rehearsal {
            status: Status::NotRun,
            verified: false,
            rows_before: BTreeMap::new(),
            rows_after: BTreeMap::new(),
            reason: Some(reason.into()),
            error: None,
            failed_line: None,
            failed_statement: None,
            verification: None,
            timings: vec![],
            seconds: None,
            slowest: vec![],
            rows_lost: BTreeMap::new(),
            losses: vec![],
            advice: None,
        }
    }
}

/// How the tables that keep a table's deleted rows are named: `rehearse_archive_<table><suffix>`
/// (the de-duplication draft writes `_duplicates`; a sysadmin's own clean-up may use the others).
pub const ROW_ARCHIVES: &[&str] = &["_duplicates", "_deleted", "_orphans"];

/// The report's lost-rows lines: for each table that lost rows, how many, and where they are kept
/// (the archive tables named after it among `archives`, else only the backup of live).
pub fn losses(rows_lost: &BTreeMap<String, i64>, archives: &[String]) -> Vec<String> {
    rows_lost
        .iter()
        .map(|(t, n)| {
            let kept: Vec<&str> = archives
                .iter()
                .filter(|a| ROW_ARCHIVES.iter().any(|suffix| **a == format!("rehearse_archive_{t}{suffix}")))
                .map(String::as_str)
                .collect();
            format!(
                "{n} row{} deleted from {t} (accepted in the hints); {}",
                if *n == 1 { "" } else { "s" },
                match kept.as_slice() {
                    [] => "not archived: the backup of live is their only copy".to_string(),
                    k => format!("archived in {}", k.join(", ")),
                }
            )
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tool: String,
    pub generated_at: String,
    pub engine: String,
    pub live: String,
    pub test_copy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub verdict: String,
    pub counts: BTreeMap<String, usize>,
    pub findings: Vec<Finding>,
    pub script: String,
    pub todo_count: usize,
    pub script_sha256: String,
    pub backup: String,
    pub workdir: String,
    pub live_fingerprint: String,
    pub target_fingerprint: String,
    pub rehearsal: Rehearsal,
    pub next_steps: Vec<String>,
    /// An engine switch (test.url): what the copy of live onto the other engine changed (types
    /// mapped, precision lost), one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub switch_notes: Vec<String>,
}

pub const FORMATS: &[&str] = &["text", "md", "json", "html"];

fn tera() -> anyhow::Result<tera::Tera> {
    let mut t = tera::Tera::default();
    t.add_raw_templates(vec![
        ("report.txt", include_str!("../templates/report/report.txt.tera")),
        ("report.md", include_str!("../templates/report/report.md.tera")),
        ("report.html", include_str!("../templates/report/report.html.tera")),
    ])?;
    // Only the HTML report is escaped: the text and Markdown ones must show values as they are.
    t.autoescape_on(vec![".html"]);
    t.register_filter("wrap", wrap_filter);
    t.register_filter("code_spans", html::code_spans);
    t.register_filter("thousands", html::thousands);
    Ok(t)
}

/// `{{ text | wrap(width=76, indent="    ") }}`: word-wrap for the 80-column terminal report.
fn wrap_filter(
    value: &tera::Value,
    args: &std::collections::HashMap<String, tera::Value>,
) -> tera::Result<tera::Value> {
    let text = value.as_str().unwrap_or_default();
    let width = args.get("width").and_then(|v| v.as_u64()).unwrap_or(76) as usize;
    let indent = args.get("indent").and_then(|v| v.as_str()).unwrap_or("");
    Ok(tera::Value::String(wrap(text, width, indent)))
}

/// Greedy word wrap; continuation lines start with `indent`.
pub fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let limit = if lines.is_empty() { width } else { width.saturating_sub(indent.chars().count()) };
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > limit {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines.join(&format!("\n{indent}"))
}

/// Terminal colours: only on a tty and without NO_COLOR.
pub fn use_colour() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

pub fn render(value: &serde_json::Value, format: &str, colour: bool, out: &mut impl Write) -> anyhow::Result<()> {
    match format {
        "json" => {
            serde_json::to_writer_pretty(&mut *out, value)?;
            writeln!(out)?;
            return Ok(());
        }
        "html" => return render_html(value, html::read_script(value), out),
        _ => {}
    }
    let mut ctx = tera::Context::from_value(value.clone())?;
    let codes: BTreeMap<&str, &str> = if colour {
        [("auto", "\x1b[32m"), ("lossy", "\x1b[33m"), ("human", "\x1b[31m"), ("bold", "\x1b[1m"), ("reset", "\x1b[0m")]
            .into()
    } else {
        [("auto", ""), ("lossy", ""), ("human", ""), ("bold", ""), ("reset", "")].into()
    };
    ctx.insert("c", &codes);
    let name = if format == "md" { "report.md" } else { "report.txt" };
    let text = tera()?.render(name, &ctx).context("cannot render the report")?;
    let mut text = text.replace("\n\n\n", "\n\n");
    while text.contains("\n\n\n") {
        text = text.replace("\n\n\n", "\n\n");
    }
    out.write_all(text.as_bytes())?;
    Ok(())
}

pub fn load(workdir: &Path) -> anyhow::Result<serde_json::Value> {
    let p = workdir.join("report.json");
    let text = fs_err::read_to_string(&p)
        .with_context(|| format!("no report in {}: run `rehearse run` first", workdir.display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// The self-contained HTML page (`templates/report/report.html.tera`): no external assets, readable
/// without JavaScript, printable. `script` is the migration script as it can be shown.
fn render_html(value: &serde_json::Value, script: html::ScriptView, out: &mut impl Write) -> anyhow::Result<()> {
    let mut ctx = tera::Context::from_value(value.clone())?;
    ctx.insert("html", &html::extras(value, script));
    let text = tera()?.render("report.html", &ctx).context("cannot render the HTML report")?;
    out.write_all(text.as_bytes())?;
    Ok(())
}

/// Write report.json, report.md and report.html into the workdir (0600: they hold sample values).
/// The script's text goes into the HTML page only, never into the JSON contract.
pub fn save(workdir: &Path, value: &serde_json::Value) -> anyhow::Result<()> {
    crate::fsutil::write_private(&workdir.join("report.json"), serde_json::to_string_pretty(value)?.as_bytes())?;
    let mut md = Vec::new();
    render(value, "md", false, &mut md)?;
    crate::fsutil::write_private(&workdir.join("report.md"), &md)?;
    let mut page = Vec::new();
    render_html(value, html::read_script(value), &mut page)?;
    crate::fsutil::write_private(&workdir.join("report.html"), &page)
}

#[cfg(test)]
mod tests {
    fn sample() -> serde_json::Value {
        serde_json::json!({
            "tool": "rehearse 0", "generated_at": "2026-01-01T00:00:00Z", "engine": "sqlite",
            "live": "SQLite file live.db", "test_copy": "SQLite file t.db", "verdict": "lossy",
            "counts": { "lossy": 1 }, "script": "/nonexistent/migration.sql", "todo_count": 0,
            "script_sha256": "x", "backup": "b", "workdir": "/nonexistent", "live_fingerprint": "l",
            "target_fingerprint": "t", "next_steps": ["When satisfied: rehearse run --live"],
            "findings": [ { "code": "RH202", "kind": "column_dropped", "table": "a&b", "column": "c",
                "verdict": "lossy", "accepted": true, "message": "drops `a&b.c`",
                "evidence": { "rows": 1200, "non_null": 3, "samples": ["<i>x</i>"], "probe_sql": "SELECT 1 < 2" } } ],
            "rehearsal": { "status": "passed", "verified": true, "seconds": 1.5,
                "rows_before": { "a&b": 1200, "k": 5 }, "rows_after": { "a&b": 1199, "k": 5 },
                "timings": [ { "line": 1, "millis": 1.0, "rows": 0 }, { "line": 2, "millis": 9.0, "rows": 0 },
                    { "line": 3, "millis": 3.0, "rows": 0 }, { "line": 4, "millis": 7.0, "rows": 0 },
                    { "line": 5, "millis": 5.0, "rows": 0 }, { "line": 6, "millis": 0.5, "rows": 0 } ] }
        })
    }

    #[test]
    fn html_escapes_values_that_markdown_keeps_as_they_are() {
        let mut html = Vec::new();
        super::render(&sample(), "html", false, &mut html).unwrap();
        let html = String::from_utf8(html).unwrap();
        assert!(html.contains("&lt;i&gt;x&lt;&#x2F;i&gt;") && !html.contains("<i>x</i>"), "{html}");
        assert!(html.contains("<code>a&amp;b.c</code>"), "backticks become <code>, escaped inside");
        assert!(html.contains("SELECT 1 &lt; 2"));
        let mut md = Vec::new();
        super::render(&sample(), "md", false, &mut md).unwrap();
        assert!(String::from_utf8(md).unwrap().contains("<i>x</i>"));
    }

    #[test]
    fn html_shows_downtime_slowest_statements_and_row_differences() {
        let mut html = Vec::new();
        super::render(&sample(), "html", false, &mut html).unwrap();
        let html = String::from_utf8(html).unwrap();
        assert!(html.contains("Expected downtime: <strong>1.50 s</strong>"));
        assert!(html.contains("measured on the test copy"));
        let slow: Vec<usize> =
            [2, 4, 5, 3, 1].iter().map(|n| html.find(&format!("href=\"#L{n}\"")).expect("listed")).collect();
        assert!(slow.windows(2).all(|w| w[0] < w[1]), "slowest first, top five only");
        assert!(!html.contains("href=\"#L6\""), "the sixth statement is not listed");
        assert_eq!(html.matches("<tr class=\"differs\">").count(), 1, "only a&b changed row count");
        assert!(html.contains("loss accepted"));
        assert!(html.contains("is not readable from here"), "a missing script is said, not hidden");
    }

    #[test]
    fn a_run_with_nothing_to_do_renders_in_every_format() {
        let mut v = sample();
        v["findings"] = serde_json::json!([]);
        v["counts"] = serde_json::json!({});
        v["verdict"] = "auto".into();
        let r = v["rehearsal"].as_object_mut().unwrap();
        r.remove("timings");
        r.insert("rows_before".into(), serde_json::json!({}));
        r.insert("rows_after".into(), serde_json::json!({}));
        for format in ["text", "md", "html"] {
            let mut out = Vec::new();
            super::render(&v, format, false, &mut out).unwrap_or_else(|e| panic!("{format}: {e:#}"));
            assert!(String::from_utf8(out).unwrap().to_lowercase().contains("passed"), "{format}");
        }
    }

    #[test]
    fn wrap_keeps_lines_within_width() {
        let w = super::wrap("one two three four five six seven eight nine ten", 20, "  ");
        assert!(w.lines().all(|l| l.chars().count() <= 20), "{w}");
        assert!(w.lines().nth(1).unwrap().starts_with("  "));
    }
}
