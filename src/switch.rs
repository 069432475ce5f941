//! An engine switch rehearsed like any upgrade (`test.url`): the test copy is made beside a
//! database of another engine (or server) and filled from live by `rehearse copy`, through a
//! JSON-lines extract of live in the workdir that doubles as the backup the test copy is refilled
//! from when a script fails on an engine that cannot roll DDL back. Live is only read.

use crate::copy;
use crate::engine::{self, Access, Cloned, Engine};
use crate::exit::UsageError;
use std::path::Path;

/// The extract of live in the workdir.
pub const EXTRACT: &str = "live-extract";

fn say(msg: &str) {
    eprintln!("rehearse: {msg}");
}

/// `test.url`'s database: the stand-in beside which the test copy and the scratch database go.
pub fn stand_in(test_url: &str, live: &dyn Engine) -> anyhow::Result<Box<dyn Engine>> {
    let e = engine::from_url(test_url, Access::ReadOnly).map_err(|e| UsageError(format!("test.url: {e:#}")))?;
    if e.describe() == live.describe() || engine::same_database(test_url, &live.url()) {
        return Err(UsageError(format!(
            "test.url names live itself ({}): name a database of the engine or server to switch to",
            live.describe()
        ))
        .into());
    }
    Ok(e)
}

/// Extract live into `<workdir>/live-extract`, then make the empty test copy beside `stand_in`
/// and fill it from the extract; every table verified by count and checksum at both steps.
pub fn clone(live_url: &str, stand_in: &dyn Engine, workdir: &Path) -> anyhow::Result<(Cloned, Vec<String>)> {
    let extract = workdir.join(EXTRACT);
    if extract.exists() {
        fs_err::remove_dir_all(&extract).map_err(|e| anyhow::anyhow!("cannot empty {}: {e}", extract.display()))?;
    }
    crate::fsutil::private_dir(&extract)?;
    say(&format!("extracting live into {}", extract.display()));
    let mut notes = load(live_url, &format!("dir:{}", extract.display()), "the extract of live")?;
    let (test_copy, more) = fill(stand_in, &extract, workdir)?;
    notes.extend(more);
    Ok((Cloned { test_copy, backup: extract }, notes))
}

/// A new empty test copy beside `stand_in`, filled from the extract (also the restore after a
/// failed script on an engine without transactional DDL).
pub fn fill(stand_in: &dyn Engine, extract: &Path, workdir: &Path) -> anyhow::Result<(Box<dyn Engine>, Vec<String>)> {
    let test_copy = stand_in.empty_test_copy(workdir)?;
    say(&format!("filling the test copy {} from the extract", test_copy.describe()));
    let notes = load(&format!("dir:{}", extract.display()), &test_copy.url(), "the test copy")?;
    Ok((test_copy, notes))
}

/// Copy and verify; the copy's notes (types mapped, losses) are returned and shown.
fn load(from: &str, to: &str, what: &str) -> anyhow::Result<Vec<String>> {
    let outcome = copy::copy(&copy::Options::whole(from.to_string(), to.to_string(), 1000))?;
    for n in &outcome.notes {
        say(&format!("note: {n}"));
    }
    let bad: Vec<&str> = outcome.tables.iter().filter(|t| !t.verified).map(|t| t.table.as_str()).collect();
    if !bad.is_empty() {
        anyhow::bail!("{what} did not verify (table {}): nothing was rehearsed", bad.join(", "));
    }
    Ok(outcome.notes)
}
