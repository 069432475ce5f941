//! `rehearse run`: the rehearsal (default), an edited script (`--script`), or promotion (`--live`).

use crate::config::{self, Overrides};
use crate::exit;
use crate::rehearsal::{self, Options};
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(after_help = concat!(
    "Examples:\n",
    "  rehearse run --config upgrade.yaml                      rehearse; print the report\n",
    "  rehearse run --config upgrade.yaml --format json        the report as JSON on stdout\n",
    "  rehearse run --config upgrade.yaml --script edited.sql  rehearse your edited script\n",
    "  rehearse run --config upgrade.yaml --live --yes         promote the rehearsed script\n\n",
    "Every config key can also be set by a REHEARSE_* variable or a flag (flag > environment > file).\n",
    "Exit codes: 0 passed, 1 error, 2 usage/config error, 3 needs a human (nothing run),\n",
    "4 rehearsal failed (rolled back), 5 refused by a safety guard."))]
pub struct Args {
    /// The upgrade config (default: ./upgrade.yaml when it exists)
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Output on stdout: text report, Markdown, the JSON contract, or the HTML page
    #[arg(long, default_value = "text", value_parser = ["text", "md", "json", "html"])]
    pub format: String,
    /// Rehearse this edited script instead of the generated one
    #[arg(long, value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// Apply the rehearsed, verified script to live
    #[arg(long)]
    pub live: bool,
    /// With --live: do not ask for confirmation
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub overrides: Overrides,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let path = super::config_path(a.config);
    let cfg = config::resolve(path.as_deref(), &a.overrides).map_err(exit::usage)?;
    crate::marks::refuse_own_object_as_live(&cfg)?;
    crate::process::log_into(&cfg.workdir);
    if a.live {
        let state_of = cfg.clone();
        let outcome = crate::live::promote(&crate::live::Options { cfg, script: a.script, yes: a.yes })
            .map_err(|e| with_live_state(e, &state_of))?;
        if a.format == "json" {
            println!("{}", serde_json::to_string_pretty(&outcome)?);
        } else {
            println!("{}", outcome.message);
        }
        return Ok(exit::OK);
    }
    let outcome = rehearsal::rehearse(&Options { cfg, script: a.script })?;
    let value = serde_json::to_value(&outcome.report)?;
    let colour = a.format == "text" && crate::report::use_colour();
    crate::report::render(&value, &a.format, colour, &mut std::io::stdout().lock())?;
    Ok(outcome.exit_code)
}

/// A `--live` error that is not already a refusal, a usage error or a failure that says what state
/// live is in (a full disk, a child that failed, a lost server): the state of live is added, read
/// from the promotion's journal and live itself, so the message never leaves the sysadmin guessing.
fn with_live_state(e: anyhow::Error, cfg: &config::Resolved) -> anyhow::Error {
    if exit::code_of(&e) != exit::ERROR {
        return e;
    }
    let state = match crate::live::recover_state(cfg) {
        Ok(Some(state)) => format!("{state}; run `rehearse recover --config ...` before anything else"),
        Ok(None) => "live was not changed by this run".to_string(),
        Err(_) => "the state of live could not be read: run `rehearse recover --config ...` to settle it".to_string(),
    };
    anyhow::anyhow!("{e:#}; {state}")
}
