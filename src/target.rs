//! The target schema: what the new code expects. From its DDL file applied to a scratch database,
//! from its own schema command run in the checkout against a scratch database, or from a snapshot.
//! The scratch database is always of the live engine and is dropped afterwards.

use crate::bookkeeping::{self, Records};
use crate::config::SchemaSource;
use crate::engine::Engine;
use crate::schema::Schema;
use anyhow::{bail, Context};
use std::path::Path;

/// Read the target schema, and the migration records the new code's tooling wrote beside it.
/// `code_dir` is the checkout (or the config folder without `app`).
pub fn target_schema(
    source: &SchemaSource,
    timeout: std::time::Duration,
    code_dir: &Path,
    live: &dyn Engine,
    workdir: &Path,
) -> anyhow::Result<(Schema, Records)> {
    if let SchemaSource::Snapshot(path) = source {
        return Ok((load_snapshot(path).map_err(crate::exit::usage)?, Records::default()));
    }
    let scratch = live.scratch(workdir)?;
    let result = (|| {
        match source {
            SchemaSource::Sql(rel) => {
                let path = code_dir.join(rel);
                let ddl = fs_err::read_to_string(&path)
                    .with_context(|| {
                        format!("cannot read schema.sql {}: check the path inside the new code", path.display())
                    })
                    .map_err(crate::exit::usage)?;
                let mut conn = scratch.connect()?;
                // Statement by statement, so an error names its line in schema.sql.
                for st in crate::sqltext::split(&ddl, live.dialect()) {
                    conn.execute_batch(&st.sql).map_err(|e| {
                        let msg = format!("{e:#}");
                        let first = msg.lines().next().unwrap_or_default().to_string();
                        if let Some(cause) = crate::exit::resource_cause(&msg) {
                            return anyhow::anyhow!(
                                "schema.sql {} line {}: {first}: {cause} where the scratch database {} is kept, which is no fault of the new code's DDL: make room and run again",
                                path.display(),
                                st.line,
                                scratch.describe()
                            );
                        }
                        anyhow::anyhow!(
                            "schema.sql {} line {}: {first} (it must apply to an empty {} database: fix the new code's DDL)",
                            path.display(),
                            st.line,
                            live.dialect().name()
                        )
                    })?;
                }
            }
            SchemaSource::Command(command) => {
                // Its stdout streams to a file (a framework may print a line per migration),
                // and a command that hangs is stopped with everything it started.
                crate::fsutil::private_dir(workdir)?;
                let limits = crate::process::Limits {
                    stdout_file: Some(workdir.join("schema-command.out")),
                    timeout: Some((timeout, "schema.timeout".to_string())),
                };
                crate::process::run_with(
                    duct::cmd("sh", ["-c", command.as_str()])
                        .dir(code_dir)
                        .env("DATABASE_URL", scratch.url())
                        .env("REHEARSE_SCRATCH_URL", scratch.url()),
                    &format!("schema.command {command:?}"),
                    &limits,
                )?;
            }
            SchemaSource::Snapshot(_) => unreachable!("handled above"),
        }
        let mut conn = scratch.connect()?;
        let schema = conn.introspect()?;
        let records = bookkeeping::read(conn.as_mut(), live.dialect(), &schema)?;
        Ok((schema, records))
    })();
    let _ = scratch.drop_scratch();
    result
}

pub fn load_snapshot(path: &Path) -> anyhow::Result<Schema> {
    let text = fs_err::read_to_string(path).with_context(|| format!("cannot read snapshot {}", path.display()))?;
    let parsed: Result<Schema, String> = if text.trim_start().starts_with('{') {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    } else {
        serde_yaml::from_str(&text).map_err(|e| e.to_string())
    };
    match parsed {
        Ok(s) => Ok(s),
        Err(e) => bail!("snapshot {} is not a rehearse schema snapshot: {e}", path.display()),
    }
}
