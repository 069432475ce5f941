//! `rehearse apply` on a client with no one on site (docs/bundles.md): check a bundle, upgrade a
//! copy of the SQLite database with the bundle's script and verify it inside the transaction, then
//! swap the database and the code folder into place, keeping the previous ones for
//! `--rollback`. Needs no config and no git; std::fs only, no shell, no links but the database's
//! own `.pre-upgrade` hard link (as `--live`), so the same code serves a Windows client.
//!
//! Never changes the database or the code folder in place: the database is swapped by one atomic
//! rename (`SqlitePromotion::finish`); the code folder by rename-aside-then-rename-in (renaming
//! over an existing folder is not atomic on Windows, and not allowed at all when it is not empty).
//! The journal `<db>.rehearse-apply.json` is written before each step. The next start, whatever
//! was asked, settles an interrupted apply or rollback by one rule: each swap of the database is a
//! single rename, so its schema fingerprint says which side of it the client is on, and the code
//! folder is made to match. A plain-language line per step goes to `<db>.upgrade.log`.

use super::Bundle;
use crate::engine::sqlite::{self, Sqlite};
use crate::engine::{Access, Dialect, Engine};
use crate::exit::{self, Refused, UsageError};
use crate::live::{self, LiveFailed};
use crate::{diff, fsutil, rehearsal, runner};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What `rehearse apply` was asked to do.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Upgrade to this bundle.
    Apply(PathBuf),
    /// Put the database and code folder back as they were before the last apply.
    Rollback,
    /// Only settle an interrupted apply or rollback.
    Recover,
}

pub struct Options {
    pub db: PathBuf,
    pub code_dir: Option<PathBuf>,
    pub mode: Mode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Apply,
    Rollback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Unpacking the code, copying the database, running and verifying the script on the copy.
    /// The database and code folder are untouched.
    Preparing,
    /// One rename puts the other database in place.
    SwappingDatabase,
    /// The database is swapped; the code folder follows.
    SwappingCode,
    Done,
    Undone,
}

impl Step {
    /// For the log: where an interrupted action stopped.
    fn words(self) -> &'static str {
        match self {
            Step::Preparing => "while preparing, before anything was changed",
            Step::SwappingDatabase => "while putting the database in place",
            Step::SwappingCode => "after the database was put in place, while putting the program files in place",
            Step::Done => "after it had finished",
            Step::Undone => "after it had been undone",
        }
    }
}

/// `<db>.rehearse-apply.json`: the action under way, or the last one finished.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journal {
    pub action: Action,
    pub step: Step,
    pub database: PathBuf,
    #[serde(default)]
    pub code_dir: Option<PathBuf>,
    /// The database's schema fingerprint before and after this action.
    pub before: String,
    pub after: String,
    /// The folder that takes the code folder's place, and the name the code folder is kept as.
    #[serde(default)]
    pub incoming: Option<PathBuf>,
    #[serde(default)]
    pub outgoing: Option<PathBuf>,
    /// Whether `incoming` was made by this action (unpacked from the bundle), so undoing removes it.
    pub incoming_is_ours: bool,
    #[serde(default)]
    pub bundle: Option<PathBuf>,
    #[serde(default)]
    pub bundle_sha256: Option<String>,
    pub started_at: String,
    pub updated_at: String,
}

impl Journal {
    fn read(path: &Path) -> anyhow::Result<Option<Journal>> {
        let text = match fs_err::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot read {}", path.display()))),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            Refused(format!(
                "the journal {} cannot be read ({e}): nothing was done; send {} to the sender of the upgrade",
                path.display(),
                path.display()
            ))
            .into()
        })
    }

    fn write(&mut self, path: &Path, step: Step) -> anyhow::Result<()> {
        self.step = step;
        self.updated_at = now();
        fsutil::write_private(path, serde_json::to_string_pretty(self)?.as_bytes())
    }
}

/// The files beside the database that apply uses.
struct Paths {
    db: PathBuf,
    dir: PathBuf,
    journal: PathBuf,
    log: PathBuf,
    lock: PathBuf,
    pre_upgrade: PathBuf,
}

/// `<path><suffix>` beside `path`.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!("{name}{suffix}"))
}

impl Paths {
    fn new(db: PathBuf) -> Paths {
        Paths {
            dir: db.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(".")),
            journal: beside(&db, ".rehearse-apply.json"),
            log: beside(&db, ".upgrade.log"),
            lock: beside(&db, ".rehearse-apply.lock"),
            pre_upgrade: beside(&db, ".pre-upgrade"),
            db,
        }
    }
}

/// The log a client sends back: appended, one plain-language line per step, each with its time.
struct Log {
    file: std::fs::File,
}

impl Log {
    fn open(path: &Path) -> anyhow::Result<Log> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot write the log {}: check the folder's permissions", path.display()))?;
        Ok(Log { file })
    }

    fn line(&mut self, msg: &str) {
        eprintln!("rehearse: {msg}");
        // The log must not stop the upgrade halfway: a failed write is reported on stderr only.
        if let Err(e) = writeln!(self.file, "{}  {msg}", now()) {
            eprintln!("rehearse: cannot write to the log: {e}");
        }
    }
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

fn short(fp: &str) -> &str {
    fp.get(..12).unwrap_or(fp)
}

fn fingerprint(db: &Path) -> anyhow::Result<String> {
    Ok(Sqlite::at(db.to_path_buf(), Access::ReadOnly).connect()?.introspect()?.fingerprint())
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("cannot resolve {}", p.display()))
}

/// Make a rename durable (Unix: fsync the folder; Windows has no folder handle to sync).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    let _ = dir;
}

fn parent(p: &Path) -> &Path {
    p.parent().unwrap_or(Path::new("."))
}

/// Remove the working copy a promotion leaves beside the database (and SQLite's files of it).
fn remove_db_copy(db: &Path) {
    sqlite::remove_with_sidecars(&sqlite::upgrade_copy_path(parent(db), db));
}

/// Put `incoming` in the place of `current`, keeping `current` as `outgoing` (an earlier folder of
/// that name is replaced). Each move is one rename, so a crash leaves a state this function
/// resumes from: while `incoming` exists, `current` (if present) is still the previous folder.
fn code_forward(current: &Path, incoming: &Path, outgoing: &Path) -> anyhow::Result<()> {
    if !incoming.exists() {
        return Ok(()); // already in place
    }
    if current.exists() {
        if outgoing.exists() {
            fs_err::remove_dir_all(outgoing)
                .with_context(|| format!("cannot remove the earlier {}", outgoing.display()))?;
        }
        fs_err::rename(current, outgoing)
            .with_context(|| format!("cannot move {} aside to {}", current.display(), outgoing.display()))?;
        sync_dir(parent(current));
    }
    fs_err::rename(incoming, current)
        .with_context(|| format!("cannot move {} to {}", incoming.display(), current.display()))?;
    sync_dir(parent(current));
    Ok(())
}

/// Undo a `code_forward` that started, from wherever it stopped: the previous folder goes back to
/// `current`. Only for a swap that started: before it, `outgoing` may be an older folder.
fn code_back(current: &Path, incoming: &Path, outgoing: &Path, incoming_is_ours: bool) -> anyhow::Result<()> {
    if !incoming.exists() && outgoing.exists() && current.exists() {
        // The swap had finished: move the new folder back out of the way.
        fs_err::rename(current, incoming)?;
    }
    if !current.exists() && outgoing.exists() {
        fs_err::rename(outgoing, current)
            .with_context(|| format!("cannot move {} back to {}", outgoing.display(), current.display()))?;
    }
    sync_dir(parent(current));
    if incoming_is_ours && incoming.exists() {
        fs_err::remove_dir_all(incoming).with_context(|| format!("cannot remove {}", incoming.display()))?;
    }
    Ok(())
}

/// What `rehearse apply` did, for the caller to print.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub message: String,
}

/// `rehearse apply`: take the apply lock, settle whatever an earlier run left interrupted, then do
/// what was asked. Every outcome ends with one line in the log, naming the exit code.
pub fn run(opts: &Options) -> anyhow::Result<Outcome> {
    let db = absolute(&opts.db)?;
    if !db.is_file() {
        return Err(UsageError(format!("there is no database file {}: check --db", db.display())).into());
    }
    let p = Paths::new(db);
    let mut log = Log::open(&p.log)?;
    log.line(&match &opts.mode {
        Mode::Apply(b) => format!(
            "Starting rehearse {} to upgrade {} with {}{}.",
            env!("CARGO_PKG_VERSION"),
            p.db.display(),
            b.display(),
            opts.code_dir.as_ref().map(|c| format!(" (program folder {})", c.display())).unwrap_or_default()
        ),
        Mode::Rollback => {
            format!(
                "Starting rehearse {} to roll back the last upgrade of {}.",
                env!("CARGO_PKG_VERSION"),
                p.db.display()
            )
        }
        Mode::Recover => format!(
            "Starting rehearse {} to check for an interrupted upgrade of {}.",
            env!("CARGO_PKG_VERSION"),
            p.db.display()
        ),
    });
    let result = (|| {
        let _lock = live::lock_file(&p.lock, Duration::from_secs(30), "another rehearse apply")?;
        let settled = settle(&p, &mut log)?;
        match &opts.mode {
            Mode::Recover => {
                Ok(Outcome { message: settled.unwrap_or_else(|| "nothing was interrupted: nothing to do".into()) })
            }
            Mode::Apply(bundle) => apply(&p, bundle, opts.code_dir.as_deref(), &mut log),
            Mode::Rollback => rollback(&p, opts.code_dir.as_deref(), &mut log),
        }
    })();
    match &result {
        Ok(o) => log.line(&format!("FINISHED: {} (exit code 0)", o.message)),
        Err(e) => {
            let code = exit::code_of(e);
            let what = match code {
                exit::USAGE => "STOPPED (wrong command)",
                exit::REHEARSAL_FAILED => "FAILED",
                exit::REFUSED => "REFUSED",
                exit::BUNDLE_DAMAGED => "REFUSED (damaged upgrade file)",
                _ => "ERROR",
            };
            log.line(&format!("{what}: {e:#} (exit code {code})"));
        }
    }
    result
}

/// After an interrupted apply or rollback: finish it or undo it, so the database and the code
/// folder match. The database's fingerprint decides; None when nothing was interrupted.
fn settle(p: &Paths, log: &mut Log) -> anyhow::Result<Option<String>> {
    let Some(mut j) = Journal::read(&p.journal)? else { return Ok(None) };
    if matches!(j.step, Step::Done | Step::Undone) {
        return Ok(None);
    }
    log.line(&format!(
        "Found an interrupted {} (it stopped {}, at {}); settling it first.",
        match j.action {
            Action::Apply => "upgrade",
            Action::Rollback => "rollback",
        },
        j.step.words(),
        j.updated_at
    ));
    resolve(p, &mut j, log).map(Some)
}

/// Finish or undo the action of `j` by the database's fingerprint; says what state things are in.
fn resolve(p: &Paths, j: &mut Journal, log: &mut Log) -> anyhow::Result<String> {
    remove_db_copy(&p.db);
    let fp = fingerprint(&p.db)?;
    let code = match (&j.code_dir, &j.incoming, &j.outgoing) {
        (Some(c), Some(i), Some(o)) => Some((c.clone(), i.clone(), o.clone())),
        _ => None,
    };
    let word = match j.action {
        Action::Apply => "upgrade",
        Action::Rollback => "rollback",
    };
    let msg = if fp == j.after {
        if let Some((c, i, o)) = &code {
            code_forward(c, i, o)?;
        }
        j.write(&p.journal, Step::Done)?;
        format!(
            "the interrupted {word} was finished: the database (schema {}){} match again",
            short(&j.after),
            code.as_ref().map(|(c, _, _)| format!(" and the program folder {}", c.display())).unwrap_or_default()
        )
    } else if fp == j.before {
        if let Some((c, i, o)) = &code {
            if j.step == Step::SwappingCode {
                code_back(c, i, o, j.incoming_is_ours)?;
            } else if j.incoming_is_ours && i.exists() {
                // The code folder was not touched yet: only what was unpacked goes.
                fs_err::remove_dir_all(i).with_context(|| format!("cannot remove {}", i.display()))?;
            }
        }
        j.write(&p.journal, Step::Undone)?;
        format!(
            "the interrupted {word} was undone: the database (schema {}){} are as they were before it",
            short(&j.before),
            code.as_ref().map(|(c, _, _)| format!(" and the program folder {}", c.display())).unwrap_or_default()
        )
    } else {
        return Err(Refused(format!(
            "the database {} has schema {}, which is neither the one before ({}) nor the one after ({}) the interrupted {word}: nothing was changed; send this log to the sender of the upgrade",
            p.db.display(),
            short(&fp),
            short(&j.before),
            short(&j.after)
        ))
        .into());
    };
    log.line(&format!("Settled: {msg}."));
    Ok(msg)
}

fn apply(p: &Paths, bundle_path: &Path, code_dir: Option<&Path>, log: &mut Log) -> anyhow::Result<Outcome> {
    let bundle = Bundle::load(bundle_path)?;
    let rec = &bundle.record;
    log.line(&format!(
        "Checked the upgrade file: it is complete and unaltered (SHA-256 {}). It upgrades schema {} to {}, as rehearsed on {} and verified.",
        short(&bundle.sha256),
        short(&rec.live_fingerprint),
        short(&rec.target_fingerprint),
        rec.finished_at
    ));
    let code = match (code_dir, bundle.has_code()) {
        (Some(c), true) => {
            let c = absolute(c)?;
            let meta = fs_err::symlink_metadata(&c);
            if !meta.as_ref().is_ok_and(|m| m.is_dir()) {
                return Err(UsageError(format!(
                    "--code-dir {} is not a folder (a link is not accepted: give the real folder)",
                    c.display()
                ))
                .into());
            }
            Some(c)
        }
        (Some(_), false) => {
            return Err(UsageError("this upgrade file carries no program files: leave out --code-dir".into()).into())
        }
        (None, true) => {
            return Err(UsageError(
                "this upgrade file carries new program files: give --code-dir DIR (the program's folder), so the database and the program are upgraded together".into(),
            )
            .into())
        }
        (None, false) => None,
    };
    let fp = fingerprint(&p.db)?;
    if fp == rec.target_fingerprint {
        return Ok(Outcome {
            message: format!(
                "the database {} already has the new schema ({}): nothing to do",
                p.db.display(),
                short(&fp)
            ),
        });
    }
    if fp != rec.live_fingerprint {
        return Err(Refused(format!(
            "the database {} has schema {}, but this upgrade is for schema {}: this client is at another version; ask for the upgrade file made for it. Nothing was changed",
            p.db.display(),
            short(&fp),
            short(&rec.live_fingerprint)
        ))
        .into());
    }
    log.line(&format!("Checked the database: it is the version this upgrade is for (schema {}).", short(&fp)));

    let (incoming, outgoing) = match &code {
        Some(c) => (Some(beside(c, ".rehearse-new")), Some(beside(c, ".pre-upgrade"))),
        None => (None, None),
    };
    let mut j = Journal {
        action: Action::Apply,
        step: Step::Preparing,
        database: p.db.clone(),
        code_dir: code.clone(),
        before: rec.live_fingerprint.clone(),
        after: rec.target_fingerprint.clone(),
        incoming: incoming.clone(),
        outgoing: outgoing.clone(),
        incoming_is_ours: true,
        bundle: Some(absolute(bundle_path)?),
        bundle_sha256: Some(bundle.sha256.clone()),
        started_at: now(),
        updated_at: now(),
    };
    j.write(&p.journal, Step::Preparing)?;
    let target = Sqlite::at(p.db.clone(), Access::ReadWrite);

    // Everything up to the swap works beside the originals; any failure removes what it made.
    let prepared = prepare(p, &bundle, &target, incoming.as_deref(), log);
    let mut promotion = match prepared {
        Ok(promotion) => promotion,
        Err(e) => {
            remove_db_copy(&p.db);
            if let Some(i) = &incoming {
                let _ = fs_err::remove_dir_all(i);
            }
            j.write(&p.journal, Step::Undone)?;
            log.line("Nothing was changed: the database and the program files are as they were.");
            return Err(e);
        }
    };

    j.write(&p.journal, Step::SwappingDatabase)?;
    if let Err(e) = promotion.finish() {
        drop(promotion);
        let state = resolve(p, &mut j, log)?;
        return Err(LiveFailed(format!("could not put the upgraded database in place ({e:#}); {state}")).into());
    }
    drop(promotion);
    log.line(&format!("Put the upgraded database in place; the previous one is kept as {}.", p.pre_upgrade.display()));
    if let (Some(c), Some(i), Some(o)) = (&code, &incoming, &outgoing) {
        j.write(&p.journal, Step::SwappingCode)?;
        if let Err(e) = code_forward(c, i, o) {
            // The database and the program must match: put the previous database back too.
            log.line(&format!("Could not put the new program files in place ({e:#}); putting everything back."));
            // The unpacked files stay until the database is back: if that fails, the journal still
            // says SwappingCode and the next start finishes the swap with them.
            code_back(c, i, o, false)?;
            live::put_back_pre_upgrade(&p.db, &p.dir)?;
            j.write(&p.journal, Step::Undone)?;
            let _ = fs_err::remove_dir_all(i);
            return Err(LiveFailed(format!(
                "could not replace the program folder {} ({e:#}): the previous database and program files were put back; stop the program and try again",
                c.display()
            ))
            .into());
        }
        log.line(&format!(
            "Put the new program files in place in {}; the previous ones are kept as {}.",
            c.display(),
            o.display()
        ));
    }
    j.write(&p.journal, Step::Done)?;
    Ok(Outcome {
        message: format!(
            "the upgrade is complete: {} has schema {}{}; to undo it: rehearse apply --rollback --db {}",
            p.db.display(),
            short(&rec.target_fingerprint),
            code.as_ref().map(|c| format!(" and {} holds the new program files", c.display())).unwrap_or_default(),
            p.db.display()
        ),
    })
}

/// Unpack the code beside its folder, copy the database beside itself, run the script on the copy
/// and verify it (the target schema and the row counts) inside the transaction, before COMMIT.
/// Touches neither the database nor the code folder.
fn prepare(
    p: &Paths,
    bundle: &Bundle,
    target: &Sqlite,
    incoming: Option<&Path>,
    log: &mut Log,
) -> anyhow::Result<Box<dyn crate::engine::Promotion>> {
    let rec = &bundle.record;
    let started = Instant::now();
    if let Some(i) = incoming {
        if i.exists() {
            fs_err::remove_dir_all(i).with_context(|| format!("cannot remove the leftover {}", i.display()))?;
        }
        let files = bundle.extract_code(i)?;
        log.line(&format!("Unpacked the new program files ({files} files) into {}.", i.display()));
    }
    let mut promotion = target.promotion(&p.dir)?;
    let backup = promotion.backup(&p.dir)?;
    // The database from before the upgrade, for --rollback: the backup under a second name.
    let _ = fs_err::remove_file(&p.pre_upgrade);
    if fs_err::hard_link(&backup, &p.pre_upgrade).is_err() {
        fs_err::copy(&backup, &p.pre_upgrade).with_context(|| {
            format!("cannot keep the database from before the upgrade as {}", p.pre_upgrade.display())
        })?;
    }
    log.line(&format!(
        "Made a backup of the database ({}) and a working copy to upgrade; the database itself is not changed yet.",
        backup.display()
    ));
    let prepared = runner::prepare(&bundle.script, Dialect::Sqlite).map_err(|e| Refused(e.to_string()))?;
    let mut conn = promotion.connection()?;
    let current = conn.introspect()?;
    let plan = diff::diff(&current, &rec.target_schema, &rec.hints)?;
    let before = rehearsal::rows_before(conn.as_mut(), Dialect::Sqlite, &plan)?;
    let history = live::History::new(rec, started);
    let expected = rehearsal::Expected {
        dialect: Dialect::Sqlite,
        target: &rec.target_schema,
        plan: &plan,
        hints: &rec.hints,
        rows_before: before,
    };
    let (result, verification) =
        rehearsal::run_verified(conn.as_mut(), &prepared, &expected, &mut |c| history.record(c, Dialect::Sqlite));
    drop(conn);
    match result {
        Ok(_) => {
            let rows: i64 = verification.as_ref().map(|v| v.rows_after.values().sum()).unwrap_or(0);
            let tables = verification.as_ref().map(|v| v.rows_after.len()).unwrap_or(0);
            log.line(&format!(
                "Upgraded the working copy and checked it before saving: its structure is exactly the new one, and its {tables} tables kept all their rows ({rows} in all)."
            ));
            Ok(promotion)
        }
        Err(e) => {
            let _ = promotion.undo();
            let why = match e {
                runner::RunError::Failed(f) if f.line > 0 => format!("line {}: {}", f.line, f.message),
                runner::RunError::Failed(f) => f.message,
                other => other.to_string(),
            };
            Err(LiveFailed(format!("the upgrade failed on the working copy ({why})")).into())
        }
    }
}

fn rollback(p: &Paths, code_dir: Option<&Path>, log: &mut Log) -> anyhow::Result<Outcome> {
    let j = Journal::read(&p.journal)?.ok_or_else(|| {
        Refused(format!(
            "no upgrade of {} was made by rehearse apply (there is no {}): nothing to roll back",
            p.db.display(),
            p.journal.display()
        ))
    })?;
    // The fingerprints of the version before the last finished upgrade, and of the upgraded one.
    let (old_fp, new_fp) = match (j.action, j.step) {
        (Action::Apply, Step::Done) => (j.before.clone(), j.after.clone()),
        (Action::Rollback, Step::Undone) => (j.after.clone(), j.before.clone()),
        (Action::Rollback, _) => {
            return Err(Refused("the last upgrade was already rolled back: nothing to roll back".into()).into())
        }
        (Action::Apply, _) => {
            return Err(
                Refused("the last upgrade did not finish, so nothing was changed: nothing to roll back".into()).into()
            )
        }
    };
    let code = match (code_dir, &j.code_dir) {
        (Some(given), Some(was)) => {
            let given = absolute(given)?;
            if given != *was {
                return Err(Refused(format!(
                    "the last upgrade replaced the program folder {}, not {}: give that one (or leave out --code-dir)",
                    was.display(),
                    given.display()
                ))
                .into());
            }
            Some(given)
        }
        (Some(_), None) => {
            return Err(
                UsageError("the last upgrade did not replace a program folder: leave out --code-dir".into()).into()
            )
        }
        (None, Some(was)) => {
            log.line(&format!(
                "The last upgrade also replaced the program folder {}: it is rolled back too.",
                was.display()
            ));
            Some(was.clone())
        }
        (None, None) => None,
    };
    let fp = fingerprint(&p.db)?;
    if fp != new_fp {
        return Err(Refused(format!(
            "the database {} has schema {}, not the one the last upgrade made ({}): nothing was changed",
            p.db.display(),
            short(&fp),
            short(&new_fp)
        ))
        .into());
    }
    if !p.pre_upgrade.is_file() || fingerprint(&p.pre_upgrade)? != old_fp {
        return Err(Refused(format!(
            "{} is missing or is not the database from before the upgrade (schema {}): nothing was changed",
            p.pre_upgrade.display(),
            short(&old_fp)
        ))
        .into());
    }
    let (incoming, outgoing) = match &code {
        Some(c) => {
            let i = beside(c, ".pre-upgrade");
            if !i.is_dir() {
                return Err(Refused(format!(
                    "the previous program folder {} is missing: nothing was changed",
                    i.display()
                ))
                .into());
            }
            (Some(i), Some(beside(c, ".rolled-back")))
        }
        None => (None, None),
    };
    log.line(&format!(
        "Rolling back to the version before the upgrade (schema {}). Changes made to the data since the upgrade stay only in the upgraded database, which is kept.",
        short(&old_fp)
    ));
    let mut nj = Journal {
        action: Action::Rollback,
        step: Step::SwappingDatabase,
        database: p.db.clone(),
        code_dir: code.clone(),
        before: new_fp.clone(),
        after: old_fp.clone(),
        incoming: incoming.clone(),
        outgoing: outgoing.clone(),
        incoming_is_ours: false,
        bundle: j.bundle.clone(),
        bundle_sha256: j.bundle_sha256.clone(),
        started_at: now(),
        updated_at: now(),
    };
    nj.write(&p.journal, Step::SwappingDatabase)?;
    let rolled = match live::put_back_pre_upgrade(&p.db, &p.dir) {
        Ok(r) => r,
        Err(e) => {
            let state = resolve(p, &mut nj, log)?;
            return Err(anyhow::anyhow!("could not put the previous database back ({e:#}); {state}"));
        }
    };
    log.line(&format!("Put the previous database back; the upgraded one is kept as {}.", rolled.display()));
    if let (Some(c), Some(i), Some(o)) = (&code, &incoming, &outgoing) {
        nj.write(&p.journal, Step::SwappingCode)?;
        code_forward(c, i, o).with_context(|| {
            format!(
                "the previous program files could not be put back; stop the program, then run: rehearse apply --recover --db {}",
                p.db.display()
            )
        })?;
        log.line(&format!(
            "Put the previous program files back in {}; the upgraded ones are kept as {}.",
            c.display(),
            o.display()
        ));
    }
    nj.write(&p.journal, Step::Done)?;
    Ok(Outcome {
        message: format!(
            "rolled back: {} has schema {} again{}",
            p.db.display(),
            short(&old_fp),
            code.as_ref().map(|c| format!(" and {} holds the previous program files", c.display())).unwrap_or_default()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path, marker: &str) {
        fs_err::create_dir_all(dir.join("sub")).unwrap();
        fs_err::write(dir.join("sub/VERSION"), marker).unwrap();
    }

    fn marker(dir: &Path) -> String {
        fs_err::read_to_string(dir.join("sub/VERSION")).unwrap()
    }

    #[test]
    fn code_swap_resumes_from_every_point_it_can_stop_at() {
        let d = tempfile::tempdir().unwrap();
        let (c, i, o) = (d.path().join("app"), d.path().join("app.new"), d.path().join("app.old"));
        // Stopped before anything, after moving the old aside, and after the whole swap.
        for stop_after in 0..3 {
            for p in [&c, &i, &o] {
                let _ = fs_err::remove_dir_all(p);
            }
            tree(&c, "old");
            tree(&i, "new");
            tree(&o, "older");
            if stop_after >= 1 {
                fs_err::remove_dir_all(&o).unwrap();
                fs_err::rename(&c, &o).unwrap();
            }
            if stop_after >= 2 {
                fs_err::rename(&i, &c).unwrap();
            }
            code_forward(&c, &i, &o).unwrap();
            assert_eq!(marker(&c), "new", "forward after step {stop_after}");
            assert_eq!(marker(&o), "old", "forward after step {stop_after}");
            assert!(!i.exists());
        }
    }

    #[test]
    fn code_swap_is_undone_from_every_point_it_can_stop_at() {
        let d = tempfile::tempdir().unwrap();
        let (c, i, o) = (d.path().join("app"), d.path().join("app.new"), d.path().join("app.old"));
        for stop_after in 0..3 {
            for p in [&c, &i, &o] {
                let _ = fs_err::remove_dir_all(p);
            }
            tree(&c, "old");
            tree(&i, "new");
            if stop_after >= 1 {
                fs_err::rename(&c, &o).unwrap();
            }
            if stop_after >= 2 {
                fs_err::rename(&i, &c).unwrap();
            }
            code_back(&c, &i, &o, true).unwrap();
            assert_eq!(marker(&c), "old", "back after step {stop_after}");
            assert!(!i.exists() && !o.exists());
        }
    }
}
