//! `rehearse report`: re-render the last report of a workdir.

use crate::config::{self, Overrides};
use crate::exit;
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  rehearse report --config upgrade.yaml\n  rehearse report --workdir /var/lib/rehearse/eden --format md\n  rehearse report --config upgrade.yaml --format html > report.html"
)]
pub struct Args {
    /// The upgrade config whose workdir holds the report
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The workdir (instead of --config)
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    #[arg(long, default_value = "text", value_parser = ["text", "md", "json", "html"])]
    pub format: String,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let workdir = match a.workdir {
        Some(w) => w,
        None => {
            let path = super::config_path(a.config);
            config::resolve(path.as_deref(), &Overrides::default()).map_err(exit::usage)?.workdir
        }
    };
    let value = crate::report::load(&workdir).map_err(exit::usage)?;
    let colour = a.format == "text" && crate::report::use_colour();
    crate::report::render(&value, &a.format, colour, &mut std::io::stdout().lock())?;
    Ok(exit::OK)
}
