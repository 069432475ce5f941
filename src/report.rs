//! The report: the JSON contract of DESIGN.md (`report.json`, and stdout with `--format json`),
//! and its text (terminal, 80 columns) and Markdown renderings from `templates/report/`.
//!
//! Every rendering is made from the JSON value, so `rehearse report` re-renders exactly what the
//! run wrote. Renderers write to `&mut impl Write`. Never holds a password.

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
}

#[derive(Debug, Clone, Serialize)]
pub struct Slow {
    pub line: usize,
    pub millis: f64,
    pub rows: u64,
    pub statement: String,
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
        }
    }
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
}

pub const FORMATS: &[&str] = &["text", "md", "json"];

fn tera() -> anyhow::Result<tera::Tera> {
    let mut t = tera::Tera::default();
    t.add_raw_templates(vec![
        ("report.txt", include_str!("../templates/report/report.txt.tera")),
        ("report.md", include_str!("../templates/report/report.md.tera")),
    ])?;
    t.autoescape_on(vec![]);
    t.register_filter("wrap", wrap_filter);
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
    if format == "json" {
        serde_json::to_writer_pretty(&mut *out, value)?;
        writeln!(out)?;
        return Ok(());
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
    let text = std::fs::read_to_string(&p)
        .with_context(|| format!("no report in {}: run `rehearse run` first", workdir.display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// Write report.json and report.md into the workdir (0600: they hold sample values).
pub fn save(workdir: &Path, value: &serde_json::Value) -> anyhow::Result<()> {
    crate::fsutil::write_private(&workdir.join("report.json"), serde_json::to_string_pretty(value)?.as_bytes())?;
    let mut md = Vec::new();
    render(value, "md", false, &mut md)?;
    crate::fsutil::write_private(&workdir.join("report.md"), &md)
}

#[cfg(test)]
mod tests {
    #[test]
    fn wrap_keeps_lines_within_width() {
        let w = super::wrap("one two three four five six seven eight nine ten", 20, "  ");
        assert!(w.lines().all(|l| l.chars().count() <= 20), "{w}");
        assert!(w.lines().nth(1).unwrap().starts_with("  "));
    }
}
