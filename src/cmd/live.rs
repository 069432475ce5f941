//! `rehearse history`, `rehearse rollback --live`, `rehearse recover`: the commands around a
//! promotion to live (the promotion itself is `rehearse run --live`).

use crate::config::{self, Overrides, Resolved};
use crate::exit;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ConfigArgs {
    /// The upgrade config (default: ./upgrade.yaml when it exists)
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
}

impl ConfigArgs {
    pub(crate) fn resolve(&self) -> anyhow::Result<Resolved> {
        let path = super::config_path(self.config.clone());
        let cfg = config::resolve(path.as_deref(), &self.overrides).map_err(exit::usage)?;
        // pg_restore's or mysql's own words, in full, when a rollback or recover fails.
        crate::process::log_into(&cfg.workdir);
        Ok(cfg)
    }

    /// `resolve`, for a command that uses live: a live.url naming rehearse's own test copy is
    /// refused here.
    pub(crate) fn resolve_live(&self) -> anyhow::Result<Resolved> {
        let cfg = self.resolve()?;
        crate::marks::refuse_own_object_as_live(&cfg)?;
        Ok(cfg)
    }
}

#[derive(clap::Args)]
#[command(after_help = "Example:\n  rehearse history --config upgrade.yaml")]
pub struct HistoryArgs {
    #[command(flatten)]
    pub common: ConfigArgs,
}

#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  rehearse rollback --config upgrade.yaml --live\n\nExit codes: 0 rolled back, 2 usage (no --live, or a bad config), 5 refused (nothing done)."
)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub common: ConfigArgs,
    /// Required: rollback writes to live
    #[arg(long)]
    pub live: bool,
    /// Do not ask for confirmation
    #[arg(long)]
    pub yes: bool,
}

#[derive(clap::Args)]
#[command(after_help = "Example:\n  rehearse recover --config upgrade.yaml")]
pub struct RecoverArgs {
    #[command(flatten)]
    pub common: ConfigArgs,
}

pub fn history(a: HistoryArgs) -> anyhow::Result<i32> {
    let rows = crate::live::history(&a.common.resolve_live()?)?;
    if rows.is_empty() {
        println!("no promotion recorded in live yet");
    }
    for r in rows {
        let v: Vec<String> = r.into_iter().map(|v| v.unwrap_or_default()).collect();
        println!(
            "{}  {}  {} -> {}  script {}  {} ms  by {}",
            v[0],
            v[1],
            &v[2].get(..12).unwrap_or(&v[2]),
            &v[3].get(..12).unwrap_or(&v[3]),
            &v[4].get(..12).unwrap_or(&v[4]),
            v[5],
            v[6]
        );
    }
    Ok(exit::OK)
}

pub fn rollback(a: RollbackArgs) -> anyhow::Result<i32> {
    if !a.live {
        return Err(exit::UsageError("rollback writes to live: say so with --live".into()).into());
    }
    println!("{}", crate::live::rollback(&a.common.resolve_live()?, a.yes)?);
    Ok(exit::OK)
}

pub fn recover(a: RecoverArgs) -> anyhow::Result<i32> {
    println!("{}", crate::live::recover(&a.common.resolve_live()?)?);
    Ok(exit::OK)
}
