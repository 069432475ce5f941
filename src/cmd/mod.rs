//! The command line: one module per command, each with its clap args and a `run` that builds
//! options and calls the library. No database work here.

pub mod apply;
pub mod backup;
pub mod bundle;
pub mod copy;
pub mod demo;
pub mod diff;
pub mod generate;
pub mod hints;
pub mod live;
pub mod report;
pub mod run;
pub mod snapshot;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "rehearse",
    version,
    about = "Rehearse a database schema upgrade on a copy of live, prove it, then apply exactly that to live.",
    long_about = "rehearse clones the live database into <db>upgradetest, checks out the new code, diffs the schema \
it expects against live, probes the real data, writes a feasibility report and a migration script, runs the \
script on the test copy with rollback on failure, and verifies the result. Live is only ever read without --live.",
    after_help = concat!("Examples:\n  rehearse demo\n  rehearse run --config upgrade.yaml\n  rehearse run --config upgrade.yaml --format json\n\n",
        "Exit codes: 0 passed, 1 error, 2 usage/config error, 3 needs a human (nothing run), 4 rehearsal failed (rolled back), 5 refused by a safety guard, 6 upgrade bundle damaged or altered.")
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Rehearse the upgrade on a test copy of live (never writes to live)
    Run(Box<run::Args>),
    /// Build a sample live SQLite database and git repository, and rehearse its upgrade
    Demo(demo::Args),
    /// Print the schema of a database as a snapshot (YAML or JSON)
    Snapshot(snapshot::Args),
    /// Compare two schemas (snapshot files or database URLs): changes and verdicts, without probes
    Diff(diff::Args),
    /// Show the last report again, as text, Markdown, JSON or one HTML page
    Report(report::Args),
    /// List the promotions recorded in live's rehearse_history table
    History(live::HistoryArgs),
    /// Copy tables and rows between engines or to/from a folder of JSON-lines files, verified
    Copy(copy::Args),
    /// Back live up into a new local SQLite file (any engine), verified table by table
    Backup(backup::Args),
    /// Put live back to its state before the last promotion from the backup the promotion took (SQLite: written back into the file in one transaction)
    Rollback(live::RollbackArgs),
    /// Settle a promotion that was interrupted (crash, kill): say what state live is in
    Recover(live::RecoverArgs),
    /// Seal the last passed rehearsal (and the new code) into one upgrade file for SQLite clients
    Bundle(bundle::Args),
    /// On an SQLite client: upgrade the database (and program folder) from a bundle, or roll back
    Apply(apply::Args),
    /// Answer, on the terminal, what the last rehearsal left to a human; answers go to the sysadmin's hints
    Hints(hints::Args),
    /// Write the man pages or print shell completions
    Generate(generate::Args),
}

pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Run(a) => run::run(*a),
        Command::Demo(a) => demo::run(a),
        Command::Snapshot(a) => snapshot::run(a),
        Command::Diff(a) => diff::run(a),
        Command::Report(a) => report::run(a),
        Command::History(a) => live::history(a),
        Command::Copy(a) => copy::run(a),
        Command::Backup(a) => backup::run(a),
        Command::Rollback(a) => live::rollback(a),
        Command::Recover(a) => live::recover(a),
        Command::Bundle(a) => bundle::run(a),
        Command::Apply(a) => apply::run(a),
        Command::Hints(a) => hints::run(a),
        Command::Generate(a) => generate::run(a),
    }
}

/// `--config`, or `./upgrade.yaml` when it exists.
pub fn config_path(given: Option<std::path::PathBuf>) -> Option<std::path::PathBuf> {
    given.or_else(|| {
        let p = std::path::PathBuf::from("upgrade.yaml");
        p.exists().then_some(p)
    })
}
