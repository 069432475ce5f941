//! The rehearsal pipeline (DESIGN.md): checkout -> target schema -> clone -> introspect -> diff ->
//! probes -> findings -> script -> run on the test copy -> verify -> record -> report.
//!
//! Live is opened read-only and only ever read (cloned). Every stage after the clone works on the
//! test copy. A failure after the findings exist still yields a report saying what was done.

use crate::config::Resolved;
use crate::engine::{self, Access};
use crate::exit;
use crate::findings::{self, Finding};
use crate::hints::Hints;
use crate::probe::Prober;
use crate::record::{self, Record};
use crate::report::{Rehearsal, Report, Status};
use crate::runner::{self, RunError};
use crate::schema::sha256_hex;
use crate::{bookkeeping, checkout, diff, fsutil, script, sqltext, target, verify};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub struct Options {
    pub cfg: Resolved,
    /// An edited script to rehearse instead of the generated one.
    pub script: Option<PathBuf>,
}

pub struct Outcome {
    pub report: Report,
    pub exit_code: i32,
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

fn say(msg: &str) {
    eprintln!("rehearse: {msg}");
}

pub fn rehearse(opts: &Options) -> anyhow::Result<Outcome> {
    let cfg = &opts.cfg;
    let started_at = now();
    crate::workdir::prepare(cfg)?;
    // Never beside a --live (or another rehearsal) in this workdir: it reads the record cleared here.
    let _workdir_lock = crate::live::workdir_lock(&cfg.workdir, std::time::Duration::from_secs(30))?;
    crate::process::log_into(&cfg.workdir);
    record::clear(&cfg.workdir)?;
    let live = engine::from_url(&cfg.live_url, Access::ReadOnly).map_err(exit::usage)?;
    // An engine switch (test.url): the test copy, the scratch database and so the script are of
    // the stand-in's engine; live is still only read.
    let stand_in = match &cfg.test_url {
        Some(url) => Some(crate::switch::stand_in(url, live.as_ref())?),
        None => None,
    };
    let home: &dyn engine::Engine = stand_in.as_deref().unwrap_or(live.as_ref());
    let dialect = home.dialect();
    // Reach live first (read-only), so a wrong URL or password fails before any slow step.
    let live_is_empty = live.connect()?.introspect()?.tables.is_empty();
    if live_is_empty {
        say(&format!(
            "note: {} has no tables: every table of the new code will be created (check live.url if that is not expected)",
            live.describe()
        ));
    }

    // The new code and what it expects.
    let (code_dir, commit) = match &cfg.app {
        Some(app) => {
            say(&format!("checking out {} into {}", app.revision, app.checkout_dir.display()));
            let c = checkout::checkout(app, &cfg.workdir)?;
            (app.checkout_dir.clone(), Some(c.commit))
        }
        None => (cfg.base_dir.clone(), None),
    };
    let hints = load_hints(cfg, &code_dir)?;
    hints.check_expressions(dialect)?;
    say("reading the schema the new code expects");
    let (target, records) = target::target_schema(&cfg.schema, cfg.schema_timeout, &code_dir, home, &cfg.workdir)?;
    if target.tables.is_empty() && !live_is_empty {
        // Every table of live would be dropped: far likelier a wrong path or a command that did
        // nothing than the new code's intent.
        return Err(exit::UsageError(format!(
            "the new code's schema has no tables, so every table of live would be dropped: check the schema source ({})",
            cfg.schema.describe()
        ))
        .into());
    }

    // The test copy: live is only read here, and never while a --live is changing it.
    let no_promotion = live.hold_off_promotions()?;
    say(&format!("cloning {} into its test copy", live.describe()));
    let (cloned, switch_notes) = match &stand_in {
        Some(s) => crate::switch::clone(&cfg.live_url, s.as_ref(), &cfg.workdir)?,
        None => (live.clone_to_test_copy(&cfg.workdir)?, vec![]),
    };
    drop(no_promotion);
    let copy = &cloned.test_copy;
    let mut conn = copy.connect()?;
    let current = conn.introspect()?;

    let plan = diff::diff(&current, &target, &hints).map_err(exit::usage)?;
    hints.try_expressions(
        conn.as_mut(),
        dialect,
        |t| current.table(t).is_some() || target.table(t).is_some(),
        |t| match current.table(t) {
            Some(_) => Some(t.to_string()),
            None => plan.kept.get(t).map(|m| m.current.clone()),
        },
    )?;
    say(&format!("probing the data for {} change(s)", plan.changes.len()));
    let evidence =
        Prober { conn: conn.as_mut(), dialect, current: &current, hints: &hints, samples: cfg.samples }.probe(&plan)?;
    let findings: Vec<Finding> =
        plan.changes.iter().zip(&evidence).map(|(c, e)| findings::judge(c, e, &hints)).collect();
    let records = bookkeeping::statements(conn.as_mut(), dialect, &records, &current, &target)?;

    let generated = script::render(&script::Inputs {
        dialect,
        current: &current,
        target: &target,
        diff: &plan,
        findings: &findings,
        hints: &hints,
        records: &records,
    })?;
    let generated_path = cfg.workdir.join("migration.sql");
    // The sysadmin's edit is read first, and the generated script never overwrites it (the next
    // steps tell them to edit migration.sql in place).
    let (script_path, script_text) = match &opts.script {
        Some(p) => {
            let text =
                fs_err::read_to_string(p).with_context(|| format!("cannot read the edited script {}", p.display()))?;
            let same = fs_err::canonicalize(p).ok() == fs_err::canonicalize(&generated_path).ok();
            if !same {
                fsutil::write_private(&generated_path, generated.as_bytes())?;
            }
            (p.clone(), text)
        }
        None => {
            fsutil::write_private(&generated_path, generated.as_bytes())?;
            (generated_path, generated)
        }
    };
    let todo_count = sqltext::todo_lines(&script_text).len();
    let script_sha256 = sha256_hex(script_text.as_bytes());

    // Run only what is proven: no TODO, and (for the generated script) nothing left to decide.
    let blocked = if todo_count > 0 {
        Some(format!("the script has {todo_count} TODO(rehearse) marker(s): decide them, then rehearse the edited script with --script"))
    } else if opts.script.is_none() && !findings::runnable(&findings) {
        Some("a finding needs a decision (see the report)".to_string())
    } else {
        None
    };
    let rehearsal = match blocked {
        Some(reason) => Rehearsal::not_run(reason),
        None => {
            say("running the script on the test copy");
            let mut r = run_and_verify(conn.as_mut(), dialect, &script_text, &target, &plan, &hints)?;
            if r.status == Status::Failed && !dialect.transactional_ddl() {
                // DDL committed statement by statement: rollback means restoring the copy from the
                // dump it was cloned from.
                say("the script failed; restoring the test copy from the dump (MySQL cannot roll DDL back)");
                drop(conn);
                match &stand_in {
                    Some(s) => drop(crate::switch::fill(s.as_ref(), &cloned.backup, &cfg.workdir)?),
                    None => copy.restore_test_copy(&cloned.backup)?,
                }
                r.reason = Some(format!(
                    "{}; {} commits DDL statement by statement, so rollback meant restoring the test copy from {}: it is as it was before the run",
                    r.reason.as_deref().unwrap_or("the script failed"),
                    dialect.name(),
                    cloned.backup.display()
                ));
            }
            r
        }
    };
    if rehearsal.status == Status::Passed {
        // `--live` runs this copy of the rehearsed script, never a file that may be edited later.
        let rehearsed = cfg.workdir.join(record::SCRIPT);
        fsutil::write_private(&rehearsed, script_text.as_bytes())?;
        record::write(
            &cfg.workdir,
            &Record {
                tool_version: env!("CARGO_PKG_VERSION").into(),
                engine: dialect.name().into(),
                live: live.describe(),
                live_fingerprint: current.fingerprint(),
                target_fingerprint: target.fingerprint(),
                script: rehearsed,
                script_sha256: script_sha256.clone(),
                verified: true,
                started_at,
                finished_at: now(),
                commit: commit.clone(),
                live_schema: current.clone(),
                target_schema: target.clone(),
                hints: hints.clone(),
                verdicts: findings.iter().map(|f| (record::finding_key(f), f.verdict)).collect(),
                switched_to: stand_in.as_ref().map(|s| s.describe()),
                seconds: rehearsal.seconds,
                rows: rehearsal.rows_before.clone(),
            },
        )?;
    }
    let exit_code = match rehearsal.status {
        Status::Passed => exit::OK,
        Status::Failed => exit::REHEARSAL_FAILED,
        Status::NotRun => exit::NEEDS_HUMAN,
    };
    let verdict = findings::overall(&findings);
    let mut counts = std::collections::BTreeMap::new();
    for f in &findings {
        *counts.entry(f.verdict.as_str().to_string()).or_insert(0) += 1;
    }
    let next_steps = next_steps(cfg, &rehearsal, &script_path, &copy.describe());
    let report = Report {
        tool: format!("rehearse {}", env!("CARGO_PKG_VERSION")),
        generated_at: now(),
        engine: dialect.name().into(),
        live: live.describe(),
        test_copy: copy.describe(),
        revision: cfg.app.as_ref().map(|a| a.revision.clone()),
        commit,
        verdict: verdict.as_str().into(),
        counts,
        findings,
        script: script_path.display().to_string(),
        todo_count,
        script_sha256,
        backup: cloned.backup.display().to_string(),
        workdir: cfg.workdir.display().to_string(),
        live_fingerprint: current.fingerprint(),
        target_fingerprint: target.fingerprint(),
        rehearsal,
        next_steps,
        switch_notes,
    };
    crate::report::save(&cfg.workdir, &serde_json::to_value(&report)?)?;
    Ok(Outcome { report, exit_code })
}

fn load_hints(cfg: &Resolved, code_dir: &Path) -> anyhow::Result<Hints> {
    let dev = match &cfg.hints {
        Some(rel) => {
            let p = code_dir.join(rel);
            if !p.exists() {
                return Err(exit::usage(anyhow::anyhow!(
                    "hints file {} does not exist in the new code: fix the hints path",
                    p.display()
                )));
            }
            Hints::load(&p).map_err(exit::usage)?
        }
        None => Hints::default(),
    };
    match &cfg.sysadmin_hints {
        Some(p) if p.exists() => Ok(dev.overridden_by(Hints::load(p).map_err(exit::usage)?)),
        Some(p) => Err(exit::usage(anyhow::anyhow!("sysadmin hints file {} does not exist", p.display()))),
        None => Ok(dev),
    }
}

/// What a run must end with: the target schema, and the kept tables' row counts.
pub struct Expected<'a> {
    pub dialect: engine::Dialect,
    pub target: &'a crate::schema::Schema,
    pub plan: &'a diff::Diff,
    pub hints: &'a Hints,
    pub rows_before: std::collections::BTreeMap<String, i64>,
}

/// Run a prepared script and verify the result inside its transaction, before COMMIT (engines
/// without transactional DDL verify at the end and the caller restores). `also` runs after a passed
/// verification, still inside the transaction (for `--live`: the history row).
pub fn run_verified(
    conn: &mut dyn engine::Connection,
    prepared: &runner::Prepared,
    x: &Expected,
    also: &mut dyn FnMut(&mut dyn engine::Connection) -> anyhow::Result<()>,
) -> (Result<Vec<engine::StatementTiming>, RunError>, Option<verify::Verification>) {
    let mut verification = None;
    let result = runner::run(conn, prepared, &mut |c| {
        let v = verify::verify(c, x.dialect, x.target, x.plan, x.rows_before.clone(), x.hints)?;
        let ok = v.verified;
        let mut why = v.schema_differences.clone();
        why.extend(v.row_differences.clone());
        verification = Some(v);
        if !ok {
            anyhow::bail!("verification failed: {}", why.join("; "));
        }
        also(c)
    });
    (result, verification)
}

/// Row counts of the kept tables before a run, keyed by the target's table names.
pub fn rows_before(
    conn: &mut dyn engine::Connection,
    dialect: engine::Dialect,
    plan: &diff::Diff,
) -> anyhow::Result<std::collections::BTreeMap<String, i64>> {
    let mut before = std::collections::BTreeMap::new();
    for (tname, map) in &plan.kept {
        let counts = verify::count_rows(conn, dialect, std::slice::from_ref(&map.current))?;
        before.insert(tname.clone(), counts.values().next().copied().unwrap_or(0));
    }
    Ok(before)
}

fn run_and_verify(
    conn: &mut dyn engine::Connection,
    dialect: engine::Dialect,
    script_text: &str,
    target: &crate::schema::Schema,
    plan: &diff::Diff,
    hints: &Hints,
) -> anyhow::Result<Rehearsal> {
    let prepared = match runner::prepare(script_text, dialect) {
        Ok(p) => p,
        Err(e) => return Ok(Rehearsal::not_run(e.to_string())),
    };
    let before = rows_before(conn, dialect, plan)?;
    let started = Instant::now();
    let mut r = Rehearsal::not_run("");
    r.reason = None;
    r.rows_before = before.clone();
    let expected = Expected { dialect, target, plan, hints, rows_before: before };
    let (result, verification) = run_verified(conn, &prepared, &expected, &mut |_| Ok(()));
    r.seconds = Some((started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0);
    if let Some(v) = &verification {
        r.rows_after = v.rows_after.clone();
        r.rows_lost = v.rows_lost.clone();
        r.losses = crate::report::losses(&v.rows_lost, &verify::archive_tables(&prepared.body));
    }
    r.verification = verification;
    match result {
        Ok(timings) => {
            let mut slow: Vec<&engine::StatementTiming> = timings.iter().collect();
            slow.sort_by(|a, b| b.millis.total_cmp(&a.millis));
            r.slowest = slow
                .into_iter()
                .take(5)
                .map(|t| {
                    let text =
                        prepared.body.iter().find(|s| s.line == t.line).map(|s| s.sql.clone()).unwrap_or_default();
                    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
                    let statement = if one_line.chars().count() > 100 {
                        format!("{}...", one_line.chars().take(97).collect::<String>())
                    } else {
                        one_line
                    };
                    crate::report::Slow {
                        line: t.line,
                        millis: t.millis,
                        rows: t.rows,
                        statement,
                        rewrote: t.rewrote.clone(),
                        algorithm: t.algorithm.clone(),
                        how: crate::report::how(&t.rewrote, t.algorithm.as_deref()),
                    }
                })
                .collect();
            r.timings = timings;
            r.status = Status::Passed;
            r.verified = true;
        }
        Err(RunError::Failed(f)) => {
            r.status = Status::Failed;
            r.error = Some(if f.line > 0 { format!("line {}: {}", f.line, f.message) } else { f.message.clone() });
            r.failed_line = (f.line > 0).then_some(f.line);
            r.failed_statement = (f.line > 0).then_some(f.statement);
            let unverified = r.verification.as_ref().filter(|v| f.line == 0 && !v.verified);
            r.advice = unverified.map(verification_advice);
            let what = match unverified {
                Some(_) => "every statement ran, but verification failed",
                None => "the script failed",
            };
            r.reason = Some(if dialect.transactional_ddl() {
                format!("{what} and the script was rolled back: the test copy is as it was before the run")
            } else {
                what.into()
            });
        }
        Err(e) => return Ok(Rehearsal::not_run(e.to_string())),
    }
    Ok(r)
}

/// What to do about a run whose statements all ran but whose result verification refused.
fn verification_advice(v: &verify::Verification) -> String {
    let mut advice = Vec::new();
    if !v.row_differences.is_empty() {
        advice.push(format!(
            "rows were deleted that no hint accepts ({}): if the deletion is meant, accept it with accept_delete in the sysadmin hints (docs/hints.md); if not, change the statement that deletes them",
            v.row_differences.join("; ")
        ));
    }
    if !v.schema_differences.is_empty() {
        advice.push(format!(
            "the schema after the script is not the new code's ({} still differ{}): make the script produce it",
            v.schema_differences.join(", "),
            if v.schema_differences.len() == 1 { "s" } else { "" }
        ));
    }
    advice.join("; and ")
}

fn next_steps(cfg: &Resolved, r: &Rehearsal, script: &Path, copy: &str) -> Vec<String> {
    let config = cfg.config_file.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "upgrade.yaml".into());
    match r.status {
        Status::Passed => match &cfg.test_url {
            None => vec![
                format!("Point the new code at the test copy ({copy}) and let users test it."),
                format!("When satisfied: rehearse run --config {config} --live"),
            ],
            // An engine switch is never promoted as such: the script is for the new engine.
            Some(url) => vec![
                format!("Point the new code at the test copy ({copy}) and let users test it."),
                format!(
                    "When satisfied: rehearse copy --from <live.url> --to {} (the new live), then rehearse that database as live.url and promote it with --live",
                    crate::redact::url(url)
                ),
            ],
        },
        Status::NotRun => vec![
            format!("Edit {} (decide each TODO(rehearse), or add hints), then:", script.display()),
            format!("rehearse run --config {config} --script {}", script.display()),
        ],
        Status::Failed if r.advice.is_some() => vec![
            format!("Every statement of {} ran; verification refused the result: {}", script.display(), r.advice.clone().unwrap_or_default()),
            format!("rehearse run --config {config} --script {}", script.display()),
        ],
        Status::Failed => vec![
            format!("Fix {} at the failing statement, then:", script.display()),
            format!("rehearse run --config {config} --script {}", script.display()),
        ],
    }
}
