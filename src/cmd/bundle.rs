//! `rehearse bundle`: seal the last passed rehearsal (and the new code) into one upgrade file for
//! offline SQLite clients. The work is in `crate::bundle`.

use crate::bundle::{self, CodeSource};
use crate::config::{self, Overrides};
use crate::exit;
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(after_help = concat!(
    "Examples:\n",
    "  rehearse bundle --config upgrade.yaml --code-rev\n",
    "  rehearse bundle --config upgrade.yaml --out upgrade-v1-v2.rhb --code build/app\n\n",
    "The bundle holds the rehearsed script, the rehearsal record (schemas and fingerprints, script SHA-256),\n",
    "the hints, the verification figures and optionally the new code; it is sealed with a SHA-256 and its\n",
    "length, and refuses to load when altered. On the client: rehearse apply BUNDLE --db FILE [--code-dir DIR]\n",
    "(see docs/bundles.md).\n\n",
    "Exit codes: 0 written, 1 error, 2 usage/config error, 5 refused (no passed rehearsal, or not SQLite)."))]
pub struct Args {
    /// The upgrade config whose workdir holds the passed rehearsal (default: ./upgrade.yaml)
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where to write the bundle [default: ./upgrade-<from>-<to>.rhb, from the schema fingerprints]
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Carry this folder as the new code (a .git folder in it is left out)
    #[arg(long, value_name = "DIR", conflicts_with = "code_rev")]
    pub code: Option<PathBuf>,
    /// Carry the new code at the rehearsed revision: `git archive` of the commit in the record
    #[arg(long)]
    pub code_rev: bool,
    #[command(flatten)]
    pub overrides: Overrides,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let path = super::config_path(a.config);
    let cfg = config::resolve(path.as_deref(), &a.overrides).map_err(exit::usage)?;
    crate::marks::refuse_own_object_as_live(&cfg)?;
    crate::process::log_into(&cfg.workdir);
    let code = match (a.code, a.code_rev) {
        (Some(dir), _) => CodeSource::Folder(dir),
        (None, true) => CodeSource::Revision,
        (None, false) => CodeSource::None,
    };
    let built = bundle::build(&bundle::Options { cfg, out: a.out, code })?;
    let m = &built.manifest;
    println!("wrote {} ({} bytes, SHA-256 {})", built.path.display(), built.bytes, built.sha256);
    println!("  upgrades schema {} to {}", &m.from_fingerprint[..12], &m.to_fingerprint[..12]);
    match &m.code {
        Some(c) => println!("  new code: {} files, {} bytes ({})", c.files, c.bytes, c.source),
        None => println!("  no code (the client's program folder is left alone)"),
    }
    println!(
        "on the client: rehearse apply {} --db FILE{}",
        built.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        if m.code.is_some() { " --code-dir DIR" } else { "" }
    );
    Ok(exit::OK)
}
