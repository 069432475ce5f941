//! `rehearse demo [DIR]`: build the sample deployment and rehearse its upgrade.

use std::path::PathBuf;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  rehearse demo\n  rehearse demo /tmp/eden-demo")]
pub struct Args {
    /// Folder to create (default: a new folder rehearse-demo-N in the current directory)
    pub dir: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    crate::demo::demo(a.dir)
}
