//! `rehearse diff A B`: changes between two schemas (snapshot files or database URLs), judged as if
//! every table held data, since nothing is probed. It must never show a figure it did not measure.
//! `--check` makes it a gate for hooks and CI.

use crate::diff::diff;
use crate::engine::{self, Access};
use crate::exit;
use crate::findings::{self, Verdict};
use crate::hints::Hints;
use crate::probe::Evidence;
use crate::schema::Schema;
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  rehearse diff old.yaml new.yaml\n  rehearse diff sqlite:///srv/eden.db new.yaml --check   (exit 3 when a change needs a human)"
)]
pub struct Args {
    /// The current schema: a snapshot file or a database URL
    pub from: String,
    /// The new schema: a snapshot file or a database URL
    pub to: String,
    /// Hints file to apply
    #[arg(long, value_name = "FILE")]
    pub hints: Option<PathBuf>,
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// Exit 3 when any change needs a human
    #[arg(long)]
    pub check: bool,
}

fn load(spec: &str) -> anyhow::Result<Schema> {
    if spec.contains("://") || spec.starts_with("sqlite:") {
        let db = engine::from_url(spec, Access::ReadOnly).map_err(exit::usage)?;
        return db.connect()?.introspect();
    }
    crate::target::load_snapshot(std::path::Path::new(spec)).map_err(exit::usage)
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let (from, to) = (load(&a.from)?, load(&a.to)?);
    let hints = match &a.hints {
        Some(p) => Hints::load(p).map_err(exit::usage)?,
        None => Hints::default(),
    };
    let d = diff(&from, &to, &hints).map_err(exit::usage)?;
    // Nothing is probed: no figure is measured, so none is shown (text and JSON), and each verdict
    // takes the worst the data could hold (rows in every table, NULLs, duplicates, orphans).
    let unmeasured = Evidence::not_measured("no data was probed; `rehearse run` measures it");
    let found: Vec<_> = d.changes.iter().map(|c| findings::judge(c, &unmeasured, &hints)).collect();
    let verdict = findings::overall(&found);
    if a.format == "json" {
        let v = serde_json::json!({ "verdict": verdict, "findings": found, "probed": false });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if found.is_empty() {
        println!("no changes: the schemas are equal");
    } else {
        for f in &found {
            println!(
                "{:<6} {} {}{}",
                f.verdict.as_str().to_uppercase(),
                f.kind.as_str(),
                f.table,
                f.column.as_ref().map(|c| format!(".{c}")).unwrap_or_default()
            );
            println!("       {}", crate::report::wrap(&f.message, 72, "       "));
        }
        println!("verdict: {} (no data probed: run `rehearse run` for measured evidence)", verdict.as_str());
    }
    Ok(if a.check && verdict == Verdict::Human { exit::NEEDS_HUMAN } else { exit::OK })
}
