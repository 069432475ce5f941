//! `rehearse demo`: a realistic sample to try rehearse on, with no server: a live SQLite database
//! shaped like a small Eden deployment (with real data problems), a git repository whose v2.0.0
//! revision changes the schema, an upgrade.yaml, and then a real rehearsal of that upgrade.
//!
//! It only ever creates a new folder; it never writes into an existing non-empty one.

use crate::config::{self, Overrides};
use crate::process;
use crate::rehearsal::{self, Options};
use anyhow::{bail, Context};
use duct::cmd;
use std::path::{Path, PathBuf};

const SCHEMA_V1: &str = include_str!("../examples/demo/schema-v1.sql");
const SCHEMA_V2: &str = include_str!("../examples/demo/schema-v2.sql");
const DATA: &str = include_str!("../examples/demo/data.sql");
const HINTS: &str = include_str!("../examples/demo/upgrade-hints.yaml");

fn pick_dir(dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(d) = dir {
        if d.exists() && fs_err::read_dir(&d)?.next().is_some() {
            bail!("{} exists and is not empty: give a new folder for the demo", d.display());
        }
        return Ok(d);
    }
    let cwd = std::env::current_dir()?;
    (1..1000)
        .map(|i| cwd.join(format!("rehearse-demo-{i}")))
        .find(|p| !p.exists())
        .context("no free rehearse-demo-N folder name in the current directory")
}

fn git(repo: &Path, args: &[&str]) -> anyhow::Result<()> {
    let mut full = vec![
        "-C",
        repo.to_str().context("demo path is not UTF-8")?,
        "-c",
        "user.name=rehearse demo",
        "-c",
        "user.email=demo@example.invalid",
    ];
    full.extend_from_slice(args);
    process::run(cmd("git", full), "git")?;
    Ok(())
}

/// Build the demo in `dir` and return the config path.
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    fs_err::create_dir_all(dir.join("app/db"))?;
    let live = dir.join("eden.db");
    let conn = rusqlite::Connection::open(&live)?;
    conn.execute_batch(SCHEMA_V1)?;
    conn.execute_batch(DATA)?;
    drop(conn);
    let app = dir.join("app");
    process::run(cmd("git", ["init", "-q", "-b", "main", app.to_str().unwrap_or(".")]), "git init")?;
    fs_err::write(app.join("db/schema.sql"), SCHEMA_V1)?;
    fs_err::write(app.join("README"), "Eden, a humanitarian platform (demo).\n")?;
    git(&app, &["add", "-A"])?;
    git(&app, &["commit", "-q", "-m", "Eden v1"])?;
    git(&app, &["tag", "v1.0.0"])?;
    fs_err::write(app.join("db/schema.sql"), SCHEMA_V2)?;
    fs_err::write(app.join("db/upgrade-hints.yaml"), HINTS)?;
    git(&app, &["add", "-A"])?;
    git(&app, &["commit", "-q", "-m", "Eden v2: local_name, office codes, unique emails, no more fax"])?;
    git(&app, &["tag", "v2.0.0"])?;
    let cfg = dir.join("upgrade.yaml");
    fs_err::write(
        &cfg,
        "# The upgrade of the demo's live Eden database to the new code's v2.0.0.\n\
         live: { url: \"sqlite:eden.db\" }\n\
         app: { repo: app, revision: v2.0.0 }\n\
         schema: { sql: db/schema.sql }\n\
         hints: db/upgrade-hints.yaml\n\
         workdir: work\n",
    )?;
    Ok(cfg)
}

pub fn demo(dir: Option<PathBuf>) -> anyhow::Result<i32> {
    let dir = pick_dir(dir)?;
    let cfg_path = build(&dir)?;
    let dir = fs_err::canonicalize(&dir)?;
    let cfg_path = dir.join(cfg_path.file_name().unwrap_or_default());
    eprintln!("rehearse: demo built in {}", dir.display());
    let cfg = config::resolve(Some(&cfg_path), &Overrides::default())?;
    let workdir = cfg.workdir.clone();
    let outcome = rehearsal::rehearse(&Options { cfg, script: None })?;
    let value = serde_json::to_value(&outcome.report)?;
    let mut out = std::io::stdout().lock();
    crate::report::render(&value, "text", crate::report::use_colour(), &mut out)?;
    use std::io::Write;
    let c = cfg_path.display();
    writeln!(
        out,
        "\nThis was a real rehearsal: live ({live}) was only read.\n\
         Try next:\n  \
         less {work}/migration.sql                     # the script, with its TODO(rehearse) sections\n  \
         xdg-open {work}/report.html                   # the report as one page, in a browser\n  \
         rehearse report --config {c} --format md\n  \
         # decide the TODOs in a copy of the script, then rehearse your edit:\n  \
         cp {work}/migration.sql {dir}/edited.sql && $EDITOR {dir}/edited.sql\n  \
         rehearse run --config {c} --script {dir}/edited.sql",
        live = dir.join("eden.db").display(),
        work = workdir.display(),
        dir = dir.display(),
    )?;
    Ok(crate::exit::OK)
}
