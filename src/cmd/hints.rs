//! `rehearse hints`: the "migration screen" as a terminal questioner. For each finding of the last
//! rehearsal that a hint can settle (a NOT NULL column without a default, NULLs in a column that
//! becomes NOT NULL, an ambiguous rename, values that will not convert, a loss not accepted), it
//! shows the evidence and asks; the answers go into the sysadmin's hints file, which overrides the
//! developers'. Without a terminal it refuses and names the file to edit instead.

use super::live::ConfigArgs;
use crate::exit::{self, Refused};
use crate::hints::Hints;
use serde_json::Value;
use std::io::{BufRead, IsTerminal, Write};

#[derive(clap::Args)]
#[command(after_help = "Example:\n  rehearse run --config upgrade.yaml     # needs a human\n  \
rehearse hints --config upgrade.yaml   # answer the questions\n  \
rehearse run --config upgrade.yaml     # again, with the answers\n\n\
Exit codes: 0 answers written (or nothing to ask), 2 usage, 5 refused (no terminal, no report).")]
pub struct Args {
    #[command(flatten)]
    pub common: ConfigArgs,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let cfg = a.common.resolve()?;
    let file = cfg.sysadmin_hints.clone().unwrap_or_else(|| cfg.base_dir.join("sysadmin-hints.yaml"));
    if !std::io::stdin().is_terminal() {
        return Err(Refused(format!(
            "no terminal to ask on: edit {} instead (docs/hints.md), then rehearse again",
            file.display()
        ))
        .into());
    }
    let report = crate::report::load(&cfg.workdir)
        .map_err(|_| Refused("there is no report to answer yet: run `rehearse run --config ...` first".into()))?;
    let mut out = std::io::stderr();
    let answers = ask(&report, &mut std::io::stdin().lock(), &mut out)?;
    if answers == Hints::default() {
        writeln!(out, "rehearse: nothing written")?;
        return Ok(exit::OK);
    }
    let merged = match file.exists() {
        true => Hints::load(&file).map_err(exit::usage)?.overridden_by(answers),
        false => answers,
    };
    crate::fsutil::write_private(&file, serde_yaml::to_string(&merged)?.as_bytes())?;
    writeln!(out, "rehearse: answers written to {}", file.display())?;
    if cfg.sysadmin_hints.is_none() {
        writeln!(
            out,
            "rehearse: add `sysadmin_hints: {}` to the config (or pass --sysadmin-hints), then rehearse again",
            file.display()
        )?;
    } else {
        writeln!(out, "rehearse: rehearse again to see their effect")?;
    }
    Ok(exit::OK)
}

/// Ask about every finding of `report` a hint can settle; return the answers as hints.
pub fn ask(report: &Value, input: &mut dyn BufRead, out: &mut dyn Write) -> anyhow::Result<Hints> {
    let mut h = Hints::default();
    let findings = report["findings"].as_array().cloned().unwrap_or_default();
    let mut line = |prompt: &str, out: &mut dyn Write| -> anyhow::Result<String> {
        write!(out, "  {prompt}: ")?;
        out.flush()?;
        let mut s = String::new();
        input.read_line(&mut s)?;
        Ok(s.trim().to_string())
    };
    for f in &findings {
        let (kind, table) = (f["kind"].as_str().unwrap_or(""), f["table"].as_str().unwrap_or(""));
        let column = f["column"].as_str();
        let (verdict, accepted) = (f["verdict"].as_str().unwrap_or(""), f["accepted"].as_bool().unwrap_or(false));
        let message = f["message"].as_str().unwrap_or("");
        let key = match column {
            Some(c) => format!("{table}.{c}"),
            None => table.to_string(),
        };
        let renamed_from = f["renamed_from"].as_str();
        let candidates: Vec<&str> =
            f["candidates"].as_array().map(|c| c.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        let settle = match (kind, verdict) {
            ("column_renamed" | "table_renamed", "human") if renamed_from.is_some() => "confirm",
            ("column_added" | "table_added", "human") if !candidates.is_empty() => "rename",
            ("column_added" | "column_nullability_changed", "human") => "default",
            // Values that will not convert, or codes that would be stored as their digits: a
            // value map settles both (read from the evidence, never from the message's words).
            ("column_type_changed", "human")
                if f["evidence"]["cast_failures"].as_i64().unwrap_or(0) > 0
                    || f["evidence"]["distinct"].as_i64().unwrap_or(0) > 0 =>
            {
                "values"
            }
            (_, "lossy") if !accepted => "loss",
            _ => continue,
        };
        writeln!(out, "\n{} {kind} {key}\n  {message}", verdict.to_uppercase())?;
        if let Some(samples) = f["evidence"]["samples"].as_array().filter(|s| !s.is_empty()) {
            let s: Vec<&str> = samples.iter().filter_map(Value::as_str).collect();
            writeln!(out, "  samples: {}", s.join("; "))?;
        }
        match settle {
            "default" => {
                let v = line("SQL expression for the rows that have no value (empty: skip)", out)?;
                if !v.is_empty() {
                    h.defaults.insert(key, v);
                }
            }
            "confirm" => {
                // Like Django's questioner: "did you rename A to B?" Yes carries the data, no
                // drops A and adds B; both are remembered, so the question is not asked again.
                let old = renamed_from.unwrap_or_default();
                let prompt = match column {
                    Some(c) => format!("did you rename {table}.{old} to {table}.{c}? [y/n, empty: skip]"),
                    None => format!("did you rename table {old} to {table}? [y/n, empty: skip]"),
                };
                let v = line(&prompt, out)?.to_ascii_lowercase();
                let answer = match v.as_str() {
                    "y" | "yes" => Some(&mut h.renames),
                    "n" | "no" => Some(&mut h.not_renames),
                    _ => None,
                };
                if let Some(r) = answer {
                    match column {
                        Some(c) => r.columns.insert(format!("{table}.{old}"), c.to_string()),
                        None => r.tables.insert(old.to_string(), table.to_string()),
                    };
                }
            }
            "rename" => {
                let what = if column.is_some() { "column" } else { "table" };
                let prompt = format!("the old {what} it replaces, one of {} (empty: it is new)", candidates.join(", "));
                let v = line(&prompt, out)?;
                if v.is_empty() {
                } else if !candidates.contains(&v.as_str()) {
                    writeln!(out, "  {v} is not a candidate; skipped")?;
                } else if let Some(c) = column {
                    h.renames.columns.insert(format!("{table}.{v}"), c.to_string());
                } else {
                    h.renames.tables.insert(v, table.to_string());
                }
            }
            "values" => {
                let v = line("value map as old=new pairs separated by ';' (empty: skip)", out)?;
                let map: std::collections::BTreeMap<String, String> = v
                    .split(';')
                    .filter_map(|p| p.split_once('='))
                    .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
                    .collect();
                if !map.is_empty() {
                    h.values.insert(key, map);
                }
            }
            _ => {
                let v = line("accept this loss? [y/N]", out)?;
                if matches!(v.to_ascii_lowercase().as_str(), "y" | "yes") {
                    h.accept_loss.push(key);
                }
            }
        }
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    #[test]
    fn answers_become_hints_and_skipped_questions_leave_nothing() {
        let report = serde_json::json!({ "findings": [
            { "kind": "column_added", "table": "org", "column": "code", "verdict": "human",
              "message": "new column `org.code` is NOT NULL without a default and 3 existing rows need a value", "evidence": {} },
            { "kind": "column_added", "table": "org", "column": "phone", "verdict": "human",
              "message": "ambiguous rename: `org.phone` may be the renamed `phone1` (candidates: phone1, phone2)",
              "candidates": ["phone1", "phone2"], "evidence": {} },
            { "kind": "column_renamed", "table": "org", "column": "notes", "verdict": "human", "renamed_from": "fax",
              "message": "did you rename `org.fax` to `org.notes`?", "evidence": {} },
            { "kind": "table_renamed", "table": "client", "verdict": "human", "renamed_from": "customer",
              "message": "did you rename table `customer` to `client`?", "evidence": {} },
            { "kind": "column_renamed", "table": "org", "column": "title", "verdict": "auto", "renamed_from": "name",
              "message": "renamed", "evidence": {} },
            { "kind": "column_type_changed", "table": "org", "column": "kind", "verdict": "human",
              "message": "`org.kind` changes type from integer to text: 2 distinct values would be stored as their digits; if they are codes, give a value map (values hint)",
              "evidence": { "distinct": 2, "samples": ["1 (4 rows)", "2 (1 row)"] } },
            { "kind": "column_type_changed", "table": "org", "column": "size", "verdict": "human",
              "message": "whether every value converts is not measured", "evidence": {} },
            { "kind": "column_dropped", "table": "org", "column": "fax", "verdict": "lossy", "message": "drops `org.fax`", "evidence": {} },
            { "kind": "table_dropped", "table": "old", "verdict": "lossy", "accepted": true, "message": "drops `old`", "evidence": {} },
            { "kind": "unique_added", "table": "org", "verdict": "human", "message": "duplicates", "evidence": {} },
            { "kind": "column_nullability_changed", "table": "org", "column": "name", "verdict": "human", "message": "2 rows have NULL", "evidence": {} }
        ]});
        let input = "'UNKNOWN'\nphone1\nn\nyes\n1=First; 2 = Second\ny\n\n";
        let mut out = Vec::new();
        let h = super::ask(&report, &mut input.as_bytes(), &mut out).unwrap();
        assert_eq!(h.defaults.get("org.code").map(String::as_str), Some("'UNKNOWN'"));
        assert_eq!(h.renames.columns.get("org.phone1").map(String::as_str), Some("phone"));
        assert_eq!(h.not_renames.columns.get("org.fax").map(String::as_str), Some("notes"), "no is remembered");
        assert_eq!(h.renames.tables.get("customer").map(String::as_str), Some("client"));
        assert!(!h.renames.columns.contains_key("org.name"), "an automatic rename is not asked about");
        assert_eq!(h.values["org.kind"].get("2").map(String::as_str), Some("Second"));
        assert_eq!(h.accept_loss, ["org.fax"], "the accepted loss is not asked again");
        assert!(!h.defaults.contains_key("org.name"), "an empty answer skips");
        let shown = String::from_utf8(out).unwrap();
        assert!(shown.contains("samples: 1 (4 rows); 2 (1 row)"), "{shown}");
        assert!(!shown.contains("duplicates"), "a finding no hint can settle is not asked about");
    }
}
