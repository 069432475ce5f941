//! `rehearse snapshot`: a database's schema as YAML or JSON (read-only).

use crate::engine::{self, Access};
use crate::exit;
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  rehearse snapshot --url sqlite:///srv/eden/eden.db > schema.yaml\n  rehearse snapshot --url postgres://eden@127.0.0.1/eden --format json --out schema.json"
)]
pub struct Args {
    /// The database to read (opened read-only)
    #[arg(long, value_name = "URL")]
    pub url: String,
    #[arg(long, default_value = "yaml", value_parser = ["yaml", "json"])]
    pub format: String,
    /// Write to this file instead of stdout
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let db = engine::from_url(&a.url, Access::ReadOnly).map_err(exit::usage)?;
    let schema = db.connect()?.introspect()?;
    let text = if a.format == "json" {
        serde_json::to_string_pretty(&schema)? + "\n"
    } else {
        serde_yaml::to_string(&schema)?
    };
    match a.out {
        Some(p) => fs_err::write(&p, text)?,
        None => print!("{text}"),
    }
    Ok(exit::OK)
}
