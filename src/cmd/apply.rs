//! `rehearse apply`: upgrade an SQLite client from a bundle, roll it back, or settle an interrupted
//! run. Needs no config and no git. The work is in `crate::bundle::apply`.

use crate::bundle::apply::{self, Mode, Options};
use crate::exit;
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(after_help = concat!(
    "Examples:\n",
    "  rehearse apply upgrade-1a2b3c4d5e6f-0f1e2d3c4b5a.rhb --db C:\\App\\app.db --code-dir C:\\App\\program\n",
    "  rehearse apply --rollback --db /srv/app/app.db\n",
    "  rehearse apply --recover --db /srv/app/app.db\n\n",
    "Stop the program first. Every step is written in plain words to FILE.upgrade.log beside the\n",
    "database; send that file back when asked. The previous database is kept as FILE.pre-upgrade and the\n",
    "previous program folder as DIR.pre-upgrade, for --rollback. An apply that was interrupted (power\n",
    "cut, killed) is finished or undone by the next `rehearse apply`, whatever its arguments.\n\n",
    "Exit codes:\n",
    "  0  done: upgraded, already upgraded, rolled back, recovered, or nothing to do\n",
    "  1  unexpected error: read the log, then run --recover\n",
    "  2  usage error; nothing done\n",
    "  4  the upgrade failed (on the working copy, or putting it in place); all is as before\n",
    "  5  refused: another version, database busy, nothing to roll back; nothing done\n",
    "  6  the upgrade file is damaged or altered; nothing done: ask for it again"))]
pub struct Args {
    /// The upgrade file (.rhb) made by `rehearse bundle`
    #[arg(value_name = "BUNDLE", required_unless_present_any = ["rollback", "recover"])]
    pub bundle: Option<PathBuf>,
    /// The SQLite database file to upgrade
    #[arg(long, value_name = "FILE")]
    pub db: PathBuf,
    /// The program's folder: replaced by the bundle's code (kept as DIR.pre-upgrade)
    #[arg(long, value_name = "DIR")]
    pub code_dir: Option<PathBuf>,
    /// Put the database (and program folder) back as they were before the last upgrade
    #[arg(long, conflicts_with_all = ["bundle", "recover"])]
    pub rollback: bool,
    /// Only finish or undo an interrupted upgrade or rollback, then stop
    #[arg(long, conflicts_with = "bundle")]
    pub recover: bool,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let mode = match (a.bundle, a.rollback, a.recover) {
        (Some(b), false, false) => Mode::Apply(b),
        (None, true, false) => Mode::Rollback,
        (None, false, true) => Mode::Recover,
        _ => return Err(exit::UsageError("give a BUNDLE, or --rollback, or --recover".into()).into()),
    };
    let outcome = apply::run(&Options { db: a.db, code_dir: a.code_dir, mode })?;
    println!("{}", outcome.message);
    Ok(exit::OK)
}
