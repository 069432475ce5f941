//! Promotion to live (`rehearse run --live`): exactly the rehearsed, verified script, and nothing
//! else, ever writes to live.
//!
//! Order: guards (a passed rehearsal record; the script's SHA-256; live's schema fingerprint; the
//! data re-probed read-only gives the same verdicts; the record's age), confirmation, the engine's
//! lock, a fresh backup, the run with verification and the history row inside the transaction where
//! the engine allows, then the engine's finish (SQLite: atomic rename). A journal in the workdir is
//! written before each step, so the next start after a crash can say what state live is in.

use crate::config::Resolved;
use crate::engine::{self, Access, Engine};
use crate::exit::{self, Refused};
use crate::findings::{self, Finding};
use crate::probe::Prober;
use crate::record::{self, Record};
use crate::runner::{self, RunError};
use crate::schema::sha256_hex;
use crate::{diff, fsutil, rehearsal};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

pub const JOURNAL: &str = "live-journal.json";
/// A rehearsal older than this still promotes, with a warning.
pub const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Locked,
    BackedUp,
    Running,
    Finishing,
    Done,
    RolledBack,
    /// `rollback --live` is restoring live from `backup` (written before the restore starts;
    /// `RolledBack` only once the restore is verified). `recover` restores again (MySQL) or
    /// reads live's state (engines whose restore is one transaction).
    RollingBack,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journal {
    pub step: Step,
    pub live: String,
    pub engine: String,
    pub from_fingerprint: String,
    pub to_fingerprint: String,
    pub script_sha256: String,
    pub backup: Option<PathBuf>,
    pub started_at: String,
    pub updated_at: String,
}

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

fn say(msg: &str) {
    eprintln!("rehearse: {msg}");
}

fn write_journal(workdir: &Path, j: &mut Journal, step: Step) -> anyhow::Result<()> {
    j.step = step;
    j.updated_at = now();
    fsutil::write_private(&workdir.join(JOURNAL), serde_json::to_string_pretty(j)?.as_bytes())
}

pub struct Options {
    pub cfg: Resolved,
    pub script: Option<PathBuf>,
    pub yes: bool,
}

/// What `--live` did, for the caller to print.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub status: &'static str,
    pub live: String,
    pub backup: Option<String>,
    pub message: String,
    pub seconds: f64,
}

/// The guards, in order; each refuses with exit 5 and says what to do.
fn guards(cfg: &Resolved, opts: &Options, live: &dyn Engine) -> anyhow::Result<(Record, String)> {
    let rec = record::read(&cfg.workdir)?.ok_or_else(|| {
        Refused(format!(
            "no passed rehearsal in {}: rehearse first (rehearse run --config ...), then promote",
            cfg.workdir.display()
        ))
    })?;
    if !rec.verified {
        return Err(Refused("the last rehearsal was not verified: rehearse again".into()).into());
    }
    // A record from before hint expressions were checked (or edited since) is not trusted on live.
    rec.hints
        .check_expressions(live.dialect())
        .map_err(|e| Refused(format!("the rehearsal's {e:#}; rehearse again with it fixed; live was not changed")))?;
    if let Some(to) = &rec.switched_to {
        return Err(Refused(format!(
            "the last rehearsal moved live onto {to} (test.url): its script is for that engine, not live's; to switch, load the new database with `rehearse copy`, then rehearse it as live and promote with --live"
        ))
        .into());
    }
    let script_path = opts.script.clone().unwrap_or_else(|| rec.script.clone());
    let script = fs_err::read_to_string(&script_path)
        .with_context(|| format!("cannot read the script {}", script_path.display()))?;
    let sha = sha256_hex(script.as_bytes());
    if sha != rec.script_sha256 {
        return Err(Refused(format!(
            "the script {} is not the one that was rehearsed (SHA-256 {} differs from {}): rehearse it with --script first",
            script_path.display(),
            &sha[..12],
            &rec.script_sha256[..12]
        ))
        .into());
    }
    if rec.engine != live.dialect().name() || rec.live != live.describe() {
        return Err(Refused(format!(
            "the rehearsal was of {} but live is {}: rehearse this database",
            rec.live,
            live.describe()
        ))
        .into());
    }
    let mut conn = live.connect()?;
    let now_schema = conn.introspect()?;
    if now_schema.fingerprint() != rec.live_fingerprint {
        let drift = diff::diff(&rec.live_schema, &now_schema, &Default::default())?;
        let what: Vec<String> = drift.changes.iter().take(5).map(|c| c.label()).collect();
        return Err(Refused(format!(
            "live {} has changed since the rehearsal ({}): rehearse again",
            live.describe(),
            if what.is_empty() { "its schema fingerprint differs".to_string() } else { what.join(", ") }
        ))
        .into());
    }
    // The data may have drifted: re-run the probes read-only on live; every verdict must hold.
    let plan = diff::diff(&now_schema, &rec.target_schema, &rec.hints)?;
    let evidence =
        Prober { conn: conn.as_mut(), dialect: live.dialect(), current: &now_schema, hints: &rec.hints, samples: 0 }
            .probe_read_only(&plan)?;
    let now_findings: Vec<Finding> =
        plan.changes.iter().zip(&evidence).map(|(c, e)| findings::judge(c, e, &rec.hints)).collect();
    for ((f, c), e) in now_findings.iter().zip(&plan.changes).zip(&evidence) {
        let key = record::finding_key(f);
        for (_, why) in &e.unmeasured {
            say(&format!(
                "note: {key}: the values that would not convert were not re-counted on live ({why}); the script's run on live checks every value before COMMIT"
            ));
        }
        if let Some(was) = rec.verdicts.get(&key) {
            if *was != f.verdict && !findings::could_be(c, e, &rec.hints, *was) {
                return Err(Refused(format!(
                    "the live data has drifted since the rehearsal: {key} was {} and is now {} ({}): rehearse again",
                    was.as_str(),
                    f.verdict.as_str(),
                    f.message
                ))
                .into());
            }
        }
    }
    if let Ok(done) = humantime::parse_rfc3339(&rec.finished_at) {
        if SystemTime::now().duration_since(done).unwrap_or_default() > MAX_AGE {
            say(&format!(
                "warning: the rehearsal is from {}, more than 7 days ago; consider rehearsing again",
                rec.finished_at
            ));
        }
    }
    Ok((rec, script))
}

/// Ask on the terminal before `what` (`apply the rehearsed script to`, `roll back`) is done to live.
fn confirm(live: &dyn Engine, what: &str, yes: bool) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Refused(format!("no terminal to confirm on: pass --yes to {what} live without the prompt")).into());
    }
    eprint!("rehearse: {what} LIVE {}? Type yes to go on: ", live.describe());
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        return Err(Refused("not confirmed; nothing was done".into()).into());
    }
    Ok(())
}

/// A lock file in the workdir, held for a whole promotion, recovery, rollback or rehearsal: a
/// second one in the same workdir waits a bounded time, then refuses (a rehearsal would otherwise
/// clear the record a running `--live` reads). The engine's own lock covers other workdirs.
pub(crate) fn workdir_lock(workdir: &Path, wait: Duration) -> anyhow::Result<std::fs::File> {
    lock_file(&workdir.join("live.lock"), wait, "another rehearse run (a rehearsal, --live, recover or rollback)")
}

/// Hold an exclusive lock on `path` (made when missing), waiting at most `wait`; then refuse,
/// naming `holder`. Also used by `rehearse apply` (its lock file beside the database).
pub(crate) fn lock_file(path: &Path, wait: Duration, holder: &str) -> anyhow::Result<std::fs::File> {
    let file = std::os::unix::fs::OpenOptionsExt::mode(
        std::fs::OpenOptions::new().create(true).truncate(false).write(true),
        0o600,
    )
    .open(path)?;
    let until = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(200))
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Refused(format!("{holder} holds {}: wait for it to finish", path.display())).into())
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
    }
}

pub fn promote(opts: &Options) -> anyhow::Result<Outcome> {
    let cfg = &opts.cfg;
    // First the workdir's lock: a promotion in progress is waited for (bounded), never mistaken
    // for an interrupted one, and the guards below see live as it left it.
    // (No workdir means no rehearsal: the guards refuse, and nothing is made.)
    let _workdir_lock = match cfg.workdir.is_dir() {
        true => Some(workdir_lock(&cfg.workdir, Duration::from_secs(30))?),
        false => None,
    };
    if let Some(state) = recover_state(cfg)? {
        return Err(Refused(format!(
            "an earlier --live was interrupted: {state}; run `rehearse recover --config ...` first"
        ))
        .into());
    }
    let live_ro = engine::from_url(&cfg.live_url, Access::ReadOnly).map_err(exit::usage)?;
    let (rec, script) = guards(cfg, opts, live_ro.as_ref())?;
    confirm(live_ro.as_ref(), "apply the rehearsed script to", opts.yes)?;
    let live = engine::from_url(&cfg.live_url, Access::ReadWrite).map_err(exit::usage)?;
    let dialect = live.dialect();
    let prepared = runner::prepare(&script, dialect).map_err(|e| Refused(e.to_string()))?;
    let mut journal = Journal {
        step: Step::Locked,
        live: live.describe(),
        engine: dialect.name().into(),
        from_fingerprint: rec.live_fingerprint.clone(),
        to_fingerprint: rec.target_fingerprint.clone(),
        script_sha256: rec.script_sha256.clone(),
        backup: None,
        started_at: now(),
        updated_at: now(),
    };
    let started = Instant::now();
    let _promoting = crate::interrupt::Promoting::start();
    let mut promotion = live.promotion(&cfg.workdir)?;
    // The guards passed before the locks were taken: another --live (or a hand-made change) may
    // have got there first. Nothing of this run has touched live yet.
    let locked_fp = match promotion.live_fingerprint()? {
        Some(fp) => fp,
        None => live_ro.connect()?.introspect()?.fingerprint(),
    };
    if locked_fp != rec.live_fingerprint {
        drop(promotion);
        return Err(Refused(
            "live's schema changed while this run waited for its lock (another --live finished first?); nothing was done"
                .into(),
        )
        .into());
    }
    write_journal(&cfg.workdir, &mut journal, Step::Locked)?;
    say("taking a fresh backup of live");
    let backup = promotion.backup(&cfg.workdir)?;
    say(&format!("backup of live: {}", backup.display()));
    journal.backup = Some(backup.clone());
    write_journal(&cfg.workdir, &mut journal, Step::BackedUp)?;

    let mut conn = promotion.connection()?;
    let current = conn.introspect()?;
    let plan = diff::diff(&current, &rec.target_schema, &rec.hints)?;
    let before = rehearsal::rows_before(conn.as_mut(), dialect, &plan)?;
    write_journal(&cfg.workdir, &mut journal, Step::Running)?;
    say(&match rec.estimate_seconds(&before) {
        Some(est) => format!(
            "running the rehearsed script (it took {:.1} s on the test copy's {} rows; live has {} now: expect about {est:.1} s)",
            rec.seconds.unwrap_or(0.0),
            rec.rows.values().sum::<i64>(),
            before.values().sum::<i64>()
        ),
        None => "running the rehearsed script".into(),
    });
    let history = History::new(&rec, started);
    let expected = rehearsal::Expected {
        dialect,
        target: &rec.target_schema,
        plan: &plan,
        hints: &rec.hints,
        rows_before: before,
    };
    let (result, _verification) =
        rehearsal::run_verified(conn.as_mut(), &prepared, &expected, &mut |c| history.record(c, dialect));
    let in_doubt = conn.commit_in_doubt();
    drop(conn);
    let applied = |note: String| Outcome {
        status: "applied",
        live: live.describe(),
        backup: Some(backup.display().to_string()),
        message: format!("live {} is upgraded and verified{note}; its backup is {}", live.describe(), backup.display()),
        seconds: started.elapsed().as_secs_f64(),
    };
    match result {
        Ok(_) => {
            write_journal(&cfg.workdir, &mut journal, Step::Finishing)?;
            promotion.finish()?;
            write_journal(&cfg.workdir, &mut journal, Step::Done)?;
            Ok(applied(String::new()))
        }
        Err(e) => {
            let why = match e {
                RunError::Failed(f) if f.line > 0 => format!("line {}: {}", f.line, f.message),
                RunError::Failed(f) => f.message,
                other => other.to_string(),
            };
            let doubtful = |what: String| {
                // The journal stays open at Running: `recover` reads live and settles it.
                anyhow::Error::new(LiveFailed(format!(
                    "{what}: live {} is either exactly as before or upgraded, and nothing says which yet; run `rehearse recover` to settle it",
                    live.describe()
                )))
            };
            if let Some(doubt) = in_doubt {
                drop(promotion);
                return Err(doubtful(doubt));
            }
            let state = promotion.undo()?;
            // Never say "unchanged" unread: live itself tells whether this run's COMMIT landed.
            match read_back(live_ro.as_ref(), &journal, &history) {
                Ok(ReadBack::Old) => {
                    write_journal(&cfg.workdir, &mut journal, Step::RolledBack)?;
                    Err(anyhow::Error::new(LiveFailed(format!("the script failed on live ({why}); {state}"))))
                }
                Ok(ReadBack::New) => {
                    write_journal(&cfg.workdir, &mut journal, Step::Done)?;
                    Ok(applied(format!(" (read back after: {why})")))
                }
                Ok(ReadBack::Neither) => Err(doubtful(format!(
                    "the script failed on live ({why}) and live's schema is now neither the old nor the new one"
                ))),
                Err(e) => {
                    Err(doubtful(format!("the script failed on live ({why}) and live cannot be read back ({e:#})")))
                }
            }
        }
    }
}

/// What live holds after a failed run, read back from live itself.
enum ReadBack {
    /// The old schema: this run changed nothing.
    Old,
    /// The new schema and this run's history row: its COMMIT landed.
    New,
    Neither,
}

fn read_back(live: &dyn Engine, journal: &Journal, history: &History) -> anyhow::Result<ReadBack> {
    let mut conn = live.connect()?;
    let fp = conn.introspect()?.fingerprint();
    if fp == journal.from_fingerprint {
        return Ok(ReadBack::Old);
    }
    let q = live.dialect().quote("rehearse_history");
    let sha = live.dialect().literal(&history.script_sha256);
    let rows = conn.query(&format!("SELECT count(*) FROM {q} WHERE script_sha256 = {sha}")).unwrap_or_default();
    let recorded = rows.first().and_then(|r| r.first().cloned().flatten()).is_some_and(|n| n.trim() != "0");
    Ok(if fp == journal.to_fingerprint && recorded { ReadBack::New } else { ReadBack::Neither })
}

/// A promotion that failed and was rolled back (exit 4).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LiveFailed(pub String);

/// The `rehearse_history` row of one promotion (also written by `rehearse apply` on a client).
pub(crate) struct History {
    applied_at: String,
    tool_version: String,
    from_fingerprint: String,
    to_fingerprint: String,
    script_sha256: String,
    applied_by: String,
    started: Instant,
}

impl History {
    pub(crate) fn new(rec: &Record, started: Instant) -> History {
        History {
            applied_at: now(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            from_fingerprint: rec.live_fingerprint.clone(),
            to_fingerprint: rec.target_fingerprint.clone(),
            script_sha256: rec.script_sha256.clone(),
            applied_by: who(),
            started,
        }
    }

    /// Create `rehearse_history` in live on first use and add this promotion's row.
    pub(crate) fn record(&self, conn: &mut dyn engine::Connection, dialect: engine::Dialect) -> anyhow::Result<()> {
        let mut ctx = tera::Context::new();
        let l = |s: &str| dialect.literal(s);
        ctx.insert("table", &dialect.quote("rehearse_history"));
        ctx.insert("applied_at", &l(&self.applied_at));
        ctx.insert("tool_version", &l(&self.tool_version));
        ctx.insert("from_fingerprint", &l(&self.from_fingerprint));
        ctx.insert("to_fingerprint", &l(&self.to_fingerprint));
        ctx.insert("script_sha256", &l(&self.script_sha256));
        ctx.insert("duration_ms", &self.started.elapsed().as_millis().to_string());
        ctx.insert("applied_by", &l(&self.applied_by));
        let mut t = tera::Tera::default();
        t.autoescape_on(vec![]);
        let source = match dialect {
            engine::Dialect::Sqlite => include_str!("../templates/sqlite/history.sql.tera"),
            engine::Dialect::Postgres => include_str!("../templates/postgres/history.sql.tera"),
            engine::Dialect::Mysql => include_str!("../templates/mysql/history.sql.tera"),
        };
        let sql = t.render_str(source, &ctx)?;
        conn.execute_batch(&sql)
    }
}

/// `user@host`; USERNAME and COMPUTERNAME are Windows' names for them (a bundle's client).
fn who() -> String {
    let user = ["SUDO_USER", "USER", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok())
        .unwrap_or_else(|| "unknown".into());
    let host = fs_err::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("COMPUTERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("{user}@{host}")
}

/// After an interrupted promotion: what state live is in, or None when nothing was interrupted.
pub fn recover_state(cfg: &Resolved) -> anyhow::Result<Option<String>> {
    let path = cfg.workdir.join(JOURNAL);
    let Ok(text) = fs_err::read_to_string(&path) else { return Ok(None) };
    let j: Journal = serde_json::from_str(&text).with_context(|| format!("{} is damaged", path.display()))?;
    if matches!(j.step, Step::Done | Step::RolledBack) {
        return Ok(None);
    }
    let live = engine::from_url(&cfg.live_url, Access::ReadOnly).map_err(exit::usage)?;
    let fp = live.connect()?.introspect()?.fingerprint();
    if j.step == Step::RollingBack {
        let schema = if fp == j.from_fingerprint {
            "the old one again"
        } else if fp == j.to_fingerprint {
            "still the promoted one"
        } else {
            "neither the old nor the promoted one"
        };
        return Ok(Some(format!("a rollback of live {} was interrupted (its schema is {schema})", j.live)));
    }
    let state = if fp == j.from_fingerprint {
        format!("live {} is exactly as before the promotion (interrupted at step {:?})", j.live, j.step)
    } else if fp == j.to_fingerprint {
        format!("live {} has the new schema (interrupted at step {:?} after the change)", j.live, j.step)
    } else {
        format!(
            "live {} matches neither the old nor the new schema (interrupted at step {:?}); restore it from {}",
            j.live,
            j.step,
            j.backup.as_ref().map(|b| b.display().to_string()).unwrap_or_else(|| "the backup".into())
        )
    };
    Ok(Some(state))
}

/// `rehearse recover`: settle an interrupted promotion or `rollback --live`. SQLite and PostgreSQL
/// need nothing (live is old or new); the journal is closed with what was found. MySQL: see below
/// and `recover_rollback`.
pub fn recover(cfg: &Resolved) -> anyhow::Result<String> {
    // A promotion still running holds this lock: recover waits for it instead of acting on it.
    let _workdir_lock = match cfg.workdir.is_dir() {
        true => Some(workdir_lock(&cfg.workdir, Duration::from_secs(30))?),
        false => None,
    };
    let path = cfg.workdir.join(JOURNAL);
    let live = engine::from_url(&cfg.live_url, Access::ReadOnly).map_err(exit::usage)?;
    let interrupted = fs_err::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<Journal>(&t).ok())
        .is_some_and(|j| !matches!(j.step, Step::Done | Step::RolledBack));
    if interrupted && live.dialect().transactional_ddl() {
        // First the engine's own recovery and our leftovers: taking the promotion's lock lets
        // SQLite roll back a write into live that was cut short, and undo removes the working copy.
        let mut p = live.promotion(&cfg.workdir)?;
        p.undo()?;
    }
    let Some(state) = recover_state(cfg)? else {
        return Ok("no interrupted promotion: nothing to do".into());
    };
    let mut j: Journal = serde_json::from_str(&fs_err::read_to_string(&path)?)?;
    if j.step == Step::RollingBack {
        return recover_rollback(cfg, live.as_ref(), &mut j, &state);
    }
    if live.dialect().transactional_ddl() {
        let fp = live.connect()?.introspect()?.fingerprint();
        let step = if fp == j.to_fingerprint { Step::Done } else { Step::RolledBack };
        write_journal(&cfg.workdir, &mut j, step)?;
        return Ok(format!("{state}; {} needs no restore", live.dialect().name()));
    }
    // MySQL: DDL committed statement by statement, and a schema that looks new does not prove
    // that every data step ran. Only a promotion that reached Finishing (verified) is kept;
    // one interrupted while running is put back from the backup taken just before.
    match j.step {
        Step::Finishing => {
            write_journal(&cfg.workdir, &mut j, Step::Done)?;
            Ok(format!("{state}; the promotion had been verified: live keeps the new schema"))
        }
        Step::Locked => {
            write_journal(&cfg.workdir, &mut j, Step::RolledBack)?;
            Ok(format!("{state}; the promotion stopped before its backup and its script: live was not changed"))
        }
        _ => {
            let Some(backup) = j.backup.clone().filter(|b| b.exists()) else {
                return Err(Refused(format!(
                    "{state}; the backup named in the journal is missing: restore live by hand"
                ))
                .into());
            };
            if j.step == Step::BackedUp {
                write_journal(&cfg.workdir, &mut j, Step::RolledBack)?;
                return Ok(format!("{state}; the script had not started: live was not changed"));
            }
            let rw = engine::from_url(&cfg.live_url, Access::ReadWrite).map_err(exit::usage)?;
            let mut p = rw.promotion(&cfg.workdir)?;
            let done = p.restore_from(&backup)?;
            p.finish()?;
            write_journal(&cfg.workdir, &mut j, Step::RolledBack)?;
            Ok(format!("{state}; {done}"))
        }
    }
}

/// `recover` after an interrupted `rollback --live`. MySQL's restore is a load of the dump, table
/// by table, so live may be anywhere between promoted and restored, even with the old schema
/// (the last table's rows half loaded): it is restored again from the same backup, which starts
/// from a clean state (tables the upgrade made dropped, every table of the dump dropped and
/// recreated by it), then verified. An engine whose restore is one transaction left live old or
/// promoted: its fingerprint says which, and the journal records it.
fn recover_rollback(cfg: &Resolved, live: &dyn Engine, j: &mut Journal, state: &str) -> anyhow::Result<String> {
    if live.dialect().transactional_ddl() {
        let fp = live.connect()?.introspect()?.fingerprint();
        return if fp == j.from_fingerprint {
            write_journal(&cfg.workdir, j, Step::RolledBack)?;
            Ok(format!("{state}; the rollback had committed: live is as before the promotion"))
        } else if fp == j.to_fingerprint {
            write_journal(&cfg.workdir, j, Step::Done)?;
            Ok(format!(
                "{state}; the rollback had not committed: live keeps the promotion (roll back again to undo it)"
            ))
        } else {
            Err(Refused(format!("{state}; restore live by hand from {}", backup_name(j))).into())
        };
    }
    let Some(backup) = j.backup.clone().filter(|b| b.exists()) else {
        return Err(
            Refused(format!("{state}; the backup named in the journal is missing: restore live by hand")).into()
        );
    };
    let done = restore_verified(cfg, j, &backup, false)?;
    Ok(format!("{state}; {done}"))
}

fn backup_name(j: &Journal) -> String {
    j.backup.as_ref().map(|b| b.display().to_string()).unwrap_or_else(|| "the backup".into())
}

/// Restore live from `backup` under the engine's lock, then check that live has the schema from
/// before the promotion; only then is the journal closed as `RolledBack`. On failure it stays
/// `RollingBack`, so `recover` restores again.
fn restore_verified(cfg: &Resolved, j: &mut Journal, backup: &Path, fresh: bool) -> anyhow::Result<String> {
    let rw = engine::from_url(&cfg.live_url, Access::ReadWrite).map_err(exit::usage)?;
    let mut p = rw.promotion(&cfg.workdir)?;
    let done = match p.restore_from(backup) {
        Ok(done) => done,
        Err(e) => {
            drop(p);
            return Err(rollback_failed(cfg, j, rw.as_ref(), e, fresh));
        }
    };
    // After finish: an engine may commit its restore there.
    p.finish()?;
    if rw.connect()?.introspect()?.fingerprint() != j.from_fingerprint {
        anyhow::bail!(
            "{} was restored from {} but its schema is not the one from before the promotion: run `rehearse recover --config ...`, or restore it by hand",
            j.live,
            backup.display()
        );
    }
    write_journal(&cfg.workdir, j, Step::RolledBack)?;
    Ok(done)
}

/// A restore that failed: say what state live is in, and journal it. Refused before touching
/// live by a rollback that found the promotion standing (`fresh`), or rolled back by the engine
/// (SQLite, PostgreSQL: live still has the promotion's schema): the promotion stands (`Done`) and
/// may be rolled back again. Otherwise (MySQL after a restore began, or live unreadable) the
/// journal stays `RollingBack`, for `recover` to restore again.
fn rollback_failed(cfg: &Resolved, j: &mut Journal, live: &dyn Engine, e: anyhow::Error, fresh: bool) -> anyhow::Error {
    let refused = e.chain().any(|c| c.is::<Refused>());
    let untouched = (fresh && refused)
        || (live.dialect().transactional_ddl()
            && live.connect().and_then(|mut c| c.introspect()).is_ok_and(|s| s.fingerprint() == j.to_fingerprint));
    if untouched && write_journal(&cfg.workdir, j, Step::Done).is_ok() {
        return match refused {
            true => e, // says so itself, live unchanged
            false => anyhow::anyhow!(
                "{e:#}; the rollback was rolled back: live is unchanged, still as the promotion left it"
            ),
        };
    }
    anyhow::anyhow!("{e:#}; the rollback is incomplete: run `rehearse recover --config ...` to restore live again")
}

/// `rehearse history`: the rows of `rehearse_history` in live.
pub fn history(cfg: &Resolved) -> anyhow::Result<Vec<Vec<Option<String>>>> {
    let live = engine::from_url(&cfg.live_url, Access::ReadOnly).map_err(exit::usage)?;
    let mut conn = live.connect()?;
    let q = live.dialect().quote("rehearse_history");
    match conn.query(&format!(
        "SELECT applied_at, tool_version, from_fingerprint, to_fingerprint, script_sha256, duration_ms, applied_by FROM {q} ORDER BY applied_at"
    )) {
        Ok(rows) => Ok(rows),
        Err(_) => Ok(vec![]),
    }
}

/// Put `<file>.pre-upgrade` back into the SQLite file `path` (`rehearse apply --rollback` on a
/// client), keeping the replaced database as `<file>.rolled-back`; returns that path. Under live's
/// write lock throughout; the database is written in one SQLite transaction, so a crash leaves it
/// as before or as after.
pub(crate) fn put_back_pre_upgrade(path: &Path, workdir: &Path) -> anyhow::Result<PathBuf> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let old = path.with_file_name(format!("{name}.pre-upgrade"));
    let rolled = path.with_file_name(format!("{name}.rolled-back"));
    let mut promotion = engine::sqlite::SqlitePromotion::start(path, workdir)?;
    let _ = fs_err::remove_file(&rolled);
    promotion.keep_copy(&rolled)?;
    engine::Promotion::restore_from(&mut promotion, &old)?;
    engine::Promotion::finish(&mut promotion)?;
    let _ = fs_err::remove_file(&old);
    Ok(rolled)
}

/// `rehearse rollback --live` for PostgreSQL and MySQL: restore live from the backup the last
/// promotion took just before its script (named in the journal), under the engine's lock. What
/// was written to live since that promotion is lost, and the prompt says so.
fn rollback_server(cfg: &Resolved, live: &dyn Engine, yes: bool) -> anyhow::Result<String> {
    let path = cfg.workdir.join(JOURNAL);
    let j: Option<Journal> = fs_err::read_to_string(&path).ok().and_then(|t| serde_json::from_str(&t).ok());
    if j.as_ref().is_some_and(|j| j.step == Step::RollingBack) {
        return Err(Refused(
            "an earlier `rollback --live` was interrupted: run `rehearse recover --config ...`, which finishes it"
                .into(),
        )
        .into());
    }
    let Some(mut j) = j.filter(|j| j.step == Step::Done) else {
        return Err(Refused(format!(
            "there is no completed promotion in {} to roll back (see `rehearse history`)",
            cfg.workdir.display()
        ))
        .into());
    };
    let Some(backup) = j.backup.clone().filter(|b| b.exists()) else {
        return Err(
            Refused("the backup the promotion took is missing from the workdir: restore live by hand".into()).into()
        );
    };
    if live.connect()?.introspect()?.fingerprint() != j.to_fingerprint {
        return Err(Refused(format!(
            "{}'s schema is no longer the one the promotion left: roll back by hand from {}",
            live.describe(),
            backup.display()
        ))
        .into());
    }
    confirm(live, "roll back (every change written since the promotion is lost)", yes)?;
    let _lock = workdir_lock(&cfg.workdir, Duration::from_secs(30))?;
    // Journalled like a promotion: from here a crash leaves `RollingBack`, which `recover` finishes.
    write_journal(&cfg.workdir, &mut j, Step::RollingBack)?;
    restore_verified(cfg, &mut j, &backup, true)
}

/// `rehearse rollback --live`: restore live from the backup the last promotion took just before
/// its script, on every engine (SQLite: written into the file in one transaction).
pub fn rollback(cfg: &Resolved, yes: bool) -> anyhow::Result<String> {
    let live = engine::from_url(&cfg.live_url, Access::ReadOnly).map_err(exit::usage)?;
    rollback_server(cfg, live.as_ref(), yes)
}
