//! `rehearse generate`: the man pages and shell completions, made from the clap definitions so
//! they never drift from `--help`.

use clap::{CommandFactory, Subcommand};
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  rehearse generate man --dir /usr/local/share/man/man1\n  \
rehearse generate completions bash > /etc/bash_completion.d/rehearse")]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Write rehearse.1 and one page per command (rehearse-run.1, ...) into a folder
    Man {
        /// Folder to write the pages into (created when missing)
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Print the completion script for a shell on stdout
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let cmd = super::Cli::command();
    match a.what {
        What::Man { dir } => {
            fs_err::create_dir_all(&dir)
                .map_err(|e| anyhow::anyhow!("cannot create the folder {}: {e}", dir.display()))?;
            clap_mangen::generate_to(cmd, &dir)
                .map_err(|e| anyhow::anyhow!("cannot write the man pages into {}: {e}", dir.display()))?;
            eprintln!("rehearse: man pages written into {}", dir.display());
        }
        What::Completions { shell } => {
            let mut cmd = cmd;
            clap_complete::generate(shell, &mut cmd, "rehearse", &mut std::io::stdout());
        }
    }
    Ok(0)
}
