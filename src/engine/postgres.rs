//! PostgreSQL: introspection from pg_catalog (one query per object kind for the whole schema),
//! clone with `pg_dump -Fd -j` + `pg_restore -j` into `<db>upgradetest`, scripts in one
//! transaction (DDL is transactional), cast probes through `pg_input_is_valid` or a session helper.
//!
//! tokio-postgres is driven by a current-thread runtime owned by each connection, so the engine
//! traits stay synchronous. Live is opened with `default_transaction_read_only = on` and is only
//! ever read (and dumped). A database rehearse did not mark as its own is never dropped, and
//! neither is one named like live. Passwords reach pg_dump/pg_restore only through PGPASSWORD.

mod binary;
mod catalog;
mod conninfo;

pub use catalog::{check_expr, normalize_default, normalize_type};
pub use conninfo::{pgpass_lookup, Host, Params};

use super::{Access, Cloned, Connection, Dialect, Engine, Promotion, Row, StatementFailure, StatementTiming};
use crate::exit::Refused;
use crate::schema::{self, Family, Schema};
use crate::sqltext::Statement;
use crate::{fsutil, marks, process};
use anyhow::{bail, Context};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, SimpleQueryMessage};

/// The comment that marks a test copy as rehearse's: `rehearse test copy of eden`.
const COPY_MARK: &str = "rehearse test copy of ";
/// Appended while the restore runs, so a half-made copy is still recognised (and replaced).
const INCOMPLETE: &str = " (incomplete: the restore did not finish)";
const SCRATCH_MARK: &str = "rehearse scratch database for ";
/// PostgreSQL truncates longer identifiers, which could make a derived name collide.
const MAX_NAME_BYTES: usize = 63;

/// A server or client version, compared as numbers (`server_version_num` style: 150018).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PgVersion(pub u32);

impl PgVersion {
    /// `15.18`, `9.6.24`, `17devel`, `16beta1`.
    pub fn parse(text: &str) -> Option<PgVersion> {
        let mut nums = text.split('.').map(|p| p.chars().take_while(char::is_ascii_digit).collect::<String>());
        let major: u32 = nums.next()?.parse().ok()?;
        let second: u32 = nums.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let third: u32 = nums.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        Some(if major >= 10 {
            PgVersion(major * 10000 + second)
        } else {
            PgVersion(major * 10000 + second * 100 + third)
        })
    }

    /// The release series as a comparable number: 1500 for 15.x, 906 for 9.6.x.
    pub fn major(self) -> u32 {
        if self.0 >= 100000 {
            self.0 / 10000 * 100
        } else {
            self.0 / 100
        }
    }

    pub fn major_text(self) -> String {
        if self.0 >= 100000 {
            (self.0 / 10000).to_string()
        } else {
            format!("{}.{}", self.0 / 10000, self.0 / 100 % 100)
        }
    }
}

impl std::fmt::Display for PgVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 >= 100000 {
            write!(f, "{}.{}", self.0 / 10000, self.0 % 10000)
        } else {
            write!(f, "{}.{}.{}", self.0 / 10000, self.0 / 100 % 100, self.0 % 100)
        }
    }
}

/// What a database is to rehearse: it decides what may be dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    Live,
    TestCopy { live: String },
    Scratch { live: String },
}

pub struct Postgres {
    params: Params,
    access: Access,
    role: Role,
}

impl Postgres {
    /// Parse the URL and complete it from the PG* environment and the password file; does not
    /// connect.
    pub fn from_url(url: &str, access: Access) -> anyhow::Result<Postgres> {
        let params = Params::from_url(url, &conninfo::process_env)?;
        Ok(Postgres { params, access, role: Role::Live })
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The test copy's database name: `<db>upgradetest`.
    pub fn test_copy_name(&self) -> anyhow::Result<String> {
        derived_name(&self.params.dbname, "upgradetest")
    }

    pub fn scratch_name(&self) -> anyhow::Result<String> {
        derived_name(&self.params.dbname, "_rehearse_scratch")
    }

    /// Open a connection with this engine's own access.
    pub fn open(&self) -> anyhow::Result<PgConn> {
        PgConn::connect(&self.params, self.access)
    }

    /// A session for CREATE/DROP DATABASE, like createdb and dropdb: on the `postgres` or
    /// `template1` maintenance database, so no such command is ever sent through a session on
    /// live (live's own database is the last resort).
    fn admin(&self) -> anyhow::Result<PgConn> {
        let live = match &self.role {
            Role::Live => self.params.dbname.clone(),
            Role::TestCopy { live } | Role::Scratch { live } => live.clone(),
        };
        let mut candidates: Vec<&str> = ["postgres", "template1"].into_iter().filter(|d| *d != live).collect();
        candidates.push(&live);
        let mut last = None;
        for db in candidates {
            match PgConn::connect(&self.params.with_dbname(db), Access::ReadWrite) {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("one candidate at least")).with_context(|| {
            format!(
                "cannot open a maintenance database (postgres or template1) on {} to create or drop rehearse's databases",
                self.params.host_port()
            )
        })
    }

    /// `<db>upgradetest`, new and empty, marked as still being filled: an earlier one rehearse
    /// made is dropped first, one it did not make is refused.
    fn create_test_copy(&self, admin: &PgConn, create_options: &str, workdir: &Path) -> anyhow::Result<Postgres> {
        let live_name = self.params.dbname.clone();
        let copy_name = self.test_copy_name()?;
        say(&format!("creating the test copy {copy_name}"));
        self.create_marked(admin, &copy_name, COPY_MARK, INCOMPLETE, create_options, workdir)?;
        Ok(self.sibling(&copy_name, Role::TestCopy { live: live_name }))
    }

    /// A new empty database `name` commented `<mark><live><suffix>`: one of that name rehearse
    /// made (same mark) is dropped first, one it did not make is refused. CREATE DATABASE cannot
    /// share a transaction with its COMMENT, so the name goes into the workdir's intent ledger
    /// first: a kill between the two leaves a database the next run knows as its own.
    fn create_marked(
        &self,
        admin: &PgConn,
        name: &str,
        mark: &str,
        suffix: &str,
        options: &str,
        workdir: &Path,
    ) -> anyhow::Result<()> {
        let live_name = &self.params.dbname;
        self.check_replaceable(admin, name, mark, workdir)?;
        admin.drop_marked(name, live_name, mark)?;
        let q = Dialect::Postgres.quote(name);
        let intent = marks::intend(workdir, &self.ledger_key(name))?;
        if let Err(e) = admin.exec(&format!("CREATE DATABASE {q} TEMPLATE template0{options}")) {
            if admin.existing(name, mark).is_ok_and(|x| x == Existing::Absent) {
                intent.abandon();
            }
            return Err(e);
        }
        admin.exec(&format!(
            "COMMENT ON DATABASE {q} IS {}",
            Dialect::Postgres.literal(&format!("{mark}{live_name}{suffix}"))
        ))?;
        intent.done()
    }

    /// The name of database `name` on this server in the intent ledger.
    fn ledger_key(&self, name: &str) -> String {
        format!("postgres {} {name}", self.params.host_port())
    }

    /// Fine when `name` does not exist or carries `mark`. An unmarked one is refused, unless the
    /// workdir's intent ledger says a killed run was making it and it is still empty (nothing is
    /// put into it before its mark): then it is ours, and gets its mark now so it can be dropped.
    fn check_replaceable(&self, admin: &PgConn, name: &str, mark: &str, workdir: &Path) -> anyhow::Result<()> {
        let Existing::Unmarked(comment) = admin.existing(name, mark)? else { return Ok(()) };
        let key = self.ledger_key(name);
        if comment.is_empty() && marks::pending(workdir, &key) && self.is_empty_database(name) {
            say(&format!("{name} was left unmarked by an interrupted run of rehearse: replacing it"));
            return admin.exec(&format!(
                "COMMENT ON DATABASE {} IS {}",
                Dialect::Postgres.quote(name),
                Dialect::Postgres.literal(&format!("{mark}{}{INCOMPLETE}", self.params.dbname))
            ));
        }
        Err(refused_unmarked(name, &comment, &self.params))
    }

    /// Whether database `name` holds no object outside the system schemas (as CREATE DATABASE
    /// from template0 leaves it). False when it cannot be read.
    fn is_empty_database(&self, name: &str) -> bool {
        let Ok(conn) = PgConn::connect(&self.params.with_dbname(name), Access::ReadOnly) else { return false };
        conn.scalar(
            "SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'",
        )
        .is_ok_and(|n| n.as_deref() == Some("0"))
    }

    fn sibling(&self, dbname: &str, role: Role) -> Postgres {
        Postgres { params: self.params.with_dbname(dbname), access: Access::ReadWrite, role }
    }
}

fn derived_name(live: &str, suffix: &str) -> anyhow::Result<String> {
    let name = format!("{live}{suffix}");
    if name.len() > MAX_NAME_BYTES {
        bail!(
            "database name {live:?} is too long to derive {name:?} from it: PostgreSQL truncates names to {MAX_NAME_BYTES} bytes, \
             which could collide with another database; rehearse a database with a shorter name"
        );
    }
    Ok(name)
}

impl Engine for Postgres {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn describe(&self) -> String {
        format!("PostgreSQL database {} on {}", self.params.dbname, self.params.host_port())
    }

    fn url(&self) -> String {
        self.params.url()
    }

    fn name(&self) -> String {
        self.params.dbname.clone()
    }

    fn connect(&self) -> anyhow::Result<Box<dyn Connection>> {
        Ok(Box::new(self.open()?))
    }

    fn clone_to_test_copy(&self, workdir: &Path) -> anyhow::Result<Cloned> {
        let live_name = self.params.dbname.clone();
        let copy_name = self.test_copy_name()?;
        // Live is only read here: its version, its encoding and locale, our privileges.
        let live = PgConn::connect(&self.params, Access::ReadOnly)?;
        let server = live.version;
        let create_options = live.create_options()?;
        live.ensure_createdb(&self.params)?;
        drop(live);
        let tools = Tools::find(server)?;

        let admin = self.admin()?;
        // Refuse before the (long) dump: a database rehearse did not make keeps its name.
        self.check_replaceable(&admin, &copy_name, COPY_MARK, workdir)?;
        let backup = dump_live(&tools, &self.params, workdir, &format!("{}.dump.d", file_stem(&live_name)))?;
        let copy = self.create_test_copy(&admin, &create_options, workdir)?;
        restore(&tools, &copy.params, &backup)?;
        let q = Dialect::Postgres.quote(&copy_name);
        admin.exec(&format!(
            "COMMENT ON DATABASE {q} IS {}",
            Dialect::Postgres.literal(&format!("{COPY_MARK}{live_name}"))
        ))?;
        Ok(Cloned { test_copy: Box::new(copy), backup })
    }

    fn empty_test_copy(&self, workdir: &Path) -> anyhow::Result<Box<dyn Engine>> {
        let live = PgConn::connect(&self.params, Access::ReadOnly)?;
        let create_options = live.create_options()?;
        live.ensure_createdb(&self.params)?;
        drop(live);
        let admin = self.admin()?;
        let copy = self.create_test_copy(&admin, &create_options, workdir)?;
        admin.exec(&format!(
            "COMMENT ON DATABASE {} IS {}",
            Dialect::Postgres.quote(&copy.params.dbname),
            Dialect::Postgres.literal(&format!("{COPY_MARK}{}", self.params.dbname))
        ))?;
        Ok(Box::new(copy))
    }

    fn scratch(&self, workdir: &Path) -> anyhow::Result<Box<dyn Engine>> {
        let live_name = self.params.dbname.clone();
        let name = self.scratch_name()?;
        let admin = self.admin()?;
        admin.ensure_createdb(&self.params)?;
        self.create_marked(&admin, &name, SCRATCH_MARK, "", "", workdir)?;
        Ok(Box::new(self.sibling(&name, Role::Scratch { live: live_name })))
    }

    fn drop_scratch(&self) -> anyhow::Result<()> {
        let Role::Scratch { live } = &self.role else {
            bail!("{} is not a scratch database: refusing to drop it", self.describe());
        };
        self.admin()?.drop_marked(&self.params.dbname, live, SCRATCH_MARK)
    }

    fn made_by_rehearse(&self) -> anyhow::Result<Option<String>> {
        let conn = PgConn::connect(&self.params, Access::ReadOnly)?;
        let comment = conn
            .scalar(
                "SELECT pg_catalog.shobj_description(oid, 'pg_database') FROM pg_catalog.pg_database \
                 WHERE datname = pg_catalog.current_database()",
            )?
            .unwrap_or_default();
        Ok(if let Some(of) = comment.strip_prefix(COPY_MARK) {
            Some(format!("the test copy rehearse made of {}", of.trim_end_matches(INCOMPLETE)))
        } else {
            comment.strip_prefix(SCRATCH_MARK).map(|of| format!("the scratch database rehearse made for {of}"))
        })
    }

    fn promotion(&self, _workdir: &Path) -> anyhow::Result<Box<dyn Promotion>> {
        if self.role != Role::Live {
            bail!("{} is not a live database", self.describe());
        }
        let lock = PgConn::connect(&self.params, Access::ReadWrite)?;
        let key = advisory_key(&self.params.dbname);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if lock.scalar(&format!("SELECT pg_try_advisory_lock({key})"))?.as_deref() == Some("t") {
                break;
            }
            if Instant::now() >= deadline {
                return Err(Refused(format!(
                    "another rehearse --live holds the lock on {}: wait for it to finish",
                    self.describe()
                ))
                .into());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Ok(Box::new(PgPromotion { live: self.sibling(&self.params.dbname, Role::Live), lock, key }))
    }

    /// A read-only session on live holding the promotions' advisory lock in shared mode: a
    /// `--live` (which takes it exclusively for its whole run, from any workdir) is waited for,
    /// and none can start until the session is dropped. Taking an advisory lock writes nothing.
    fn hold_off_promotions(&self) -> anyhow::Result<Box<dyn std::any::Any>> {
        if self.role != Role::Live {
            return Ok(Box::new(()));
        }
        let session = PgConn::connect(&self.params, Access::ReadOnly)?;
        let key = advisory_key(&self.params.dbname);
        let deadline = Instant::now() + PROMOTION_WAIT;
        let mut said = false;
        while session.scalar(&format!("SELECT pg_catalog.pg_try_advisory_lock_shared({key})"))?.as_deref() != Some("t")
        {
            if Instant::now() >= deadline {
                return Err(Refused(format!(
                    "a rehearse --live is promoting {} and still ran after {} s: rehearse once it has finished (nothing was done)",
                    self.describe(),
                    PROMOTION_WAIT.as_secs()
                ))
                .into());
            }
            if !said {
                say(&format!("a rehearse --live is promoting {}: waiting for it to finish", self.describe()));
                said = true;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Ok(Box::new(session))
    }
}

/// How long a rehearsal waits for a promotion of its live database to finish before refusing.
const PROMOTION_WAIT: Duration = Duration::from_secs(30);

/// The session advisory lock key of promotions to database `name`: stable across versions.
fn advisory_key(name: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("rehearse:{name}").as_bytes());
    i64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// A promotion on PostgreSQL: the script runs on live itself in one transaction, verified before
/// COMMIT, so live is old or new and never in between; undo has nothing to put back.
struct PgPromotion {
    live: Postgres,
    /// Holds `pg_advisory_lock` for the whole promotion.
    lock: PgConn,
    key: i64,
}

impl Promotion for PgPromotion {
    fn backup(&mut self, workdir: &Path) -> anyhow::Result<PathBuf> {
        let tools = Tools::find(self.lock.version)?;
        let stamp = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string().replace(':', "");
        let name = format!("{}.pre-upgrade-{stamp}.dump.d", file_stem(&self.live.params.dbname));
        dump_live(&tools, &self.live.params, workdir, &name)
    }

    fn connection(&mut self) -> anyhow::Result<Box<dyn Connection>> {
        Ok(Box::new(PgConn::connect(&self.live.params, Access::ReadWrite)?))
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        let _ = self.lock.exec(&format!("SELECT pg_advisory_unlock({})", self.key));
        Ok(())
    }

    fn undo(&mut self) -> anyhow::Result<String> {
        let _ = self.lock.exec(&format!("SELECT pg_advisory_unlock({})", self.key));
        Ok(format!("{} is unchanged: the transaction was rolled back", self.live.describe()))
    }

    /// `rollback --live` and a MySQL-style `recover`: put live back to the dump a promotion took,
    /// in one transaction on live that either restores exactly the backup or changes nothing.
    ///
    /// One psql session runs, between its own BEGIN and COMMIT: first a DO block that drops, found
    /// in live's catalog inside that transaction, the tables and foreign keys of live's schema
    /// whose catalog OIDs the backup does not hold (what the promotion created: a new foreign key
    /// to a key the backup re-creates would block its drop); then `pg_restore --clean --if-exists -f -`'s SQL, which
    /// replaces every object of the backup. COMMIT is sent only after pg_restore finished well, so
    /// an error, a kill or a lost connection anywhere leaves live as it was before the rollback.
    /// Nothing is parsed out of object names: only the OIDs of `pg_restore --list`'s lines, and a
    /// stray line a hostile name makes can only keep an object from being dropped, never add one.
    fn restore_from(&mut self, backup: &Path) -> anyhow::Result<String> {
        let tools = Tools::find(self.lock.version)?;
        let what = format!("{} --list {}", tools.restore.display(), backup.display());
        let list = process::run(
            tool_command(&tools.restore, vec!["--list".into(), backup.as_os_str().to_owned()], &self.live.params),
            &what,
        )?;
        let prelude = rollback_prelude(&dumped_oids(&list), &dumped_tables(&list));
        let args: Vec<OsString> =
            vec!["--clean".into(), "--if-exists".into(), "--file=-".into(), backup.as_os_str().to_owned()];
        let restore = tool_command(&tools.restore, args, &self.live.params);
        run_in_one_psql_transaction(&tools, &self.live.params, &prelude, restore).with_context(|| {
            format!("{} is unchanged: the rollback's transaction was not committed", self.live.describe())
        })?;
        Ok(format!(
            "{} was restored from {}: it is as it was before the promotion",
            self.live.describe(),
            backup.display()
        ))
    }
}

/// The catalog OIDs a `pg_restore --list` names: `(catalog, object)`, e.g. `(1259, 16386)` for a
/// table (pg_class), `(2606, 16393)` for a constraint. Only the leading numbers of each line are
/// read (`2188; 1259 16386 TABLE public office postgres`); names are never parsed.
fn dumped_oids(list: &str) -> std::collections::BTreeSet<(u32, u32)> {
    list.lines()
        .filter_map(|l| {
            let (id, rest) = l.trim_start().split_once("; ")?;
            id.parse::<u32>().ok()?;
            let mut w = rest.split(' ');
            Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
        })
        .collect()
}

/// The tables a `pg_restore --list` names, each with the rest of its line after the `id; `
/// (`1259 16386 TABLE public office postgres`), which the rollback's SQL compares, never parses,
/// with a table's name of the moment: a table whose name is not in its line was renamed since.
fn dumped_tables(list: &str) -> Vec<(u32, String)> {
    list.lines()
        .filter_map(|l| {
            let (id, rest) = l.trim_start().split_once("; ")?;
            id.parse::<u32>().ok()?;
            let mut w = rest.splitn(4, ' ');
            let (cat, oid, kind) = (w.next()?, w.next()?.parse().ok()?, w.next()?);
            (cat == "1259" && kind == "TABLE").then(|| (oid, rest.to_string()))
        })
        .collect()
}

/// The first statements of a rollback's transaction: drop what the promotion created, the tables
/// and foreign keys of live's schema (`current_schema()`, the one rehearse models and the caller's
/// fingerprint check vouches for) whose OIDs the backup lacks, chosen from live's catalog inside
/// the transaction and quoted by the server; and every foreign key of a table the backup holds
/// (the restore drops and re-creates that table with the backup's keys anyway), because
/// `pg_restore --clean` drops constraints by the backup's names: one the promotion renamed would
/// survive and block the drop of the key it references. A table the promotion renamed (its OID
/// in the backup, its name not in the backup's line for it) is dropped too: the restore brings it
/// back under its old name, with its data. Nothing outside that schema is dropped, and
/// `rehearse_history` is kept: it tells what happened.
fn rollback_prelude(oids: &std::collections::BTreeSet<(u32, u32)>, tables: &[(u32, String)]) -> String {
    const PG_CLASS: u32 = 1259;
    const PG_CONSTRAINT: u32 = 2606;
    let list = |cat: u32| {
        let v: Vec<String> = oids.iter().filter(|(c, _)| *c == cat).map(|(_, o)| o.to_string()).collect();
        format!("'{{{}}}'::pg_catalog.oid[]", v.join(","))
    };
    format!(
        "\\set ON_ERROR_STOP on
BEGIN;
DO $rehearse$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT c.conrelid::pg_catalog.regclass::text AS rel, c.conname::text AS name
           FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_namespace n ON n.oid = c.connamespace
           WHERE c.contype = 'f' AND n.nspname = pg_catalog.current_schema()
             AND (c.oid <> ALL ({constraints}) OR c.conrelid = ANY ({relations}))
  LOOP
    RAISE NOTICE 'rehearse: dropping foreign key % of % (the restore puts back the backup''s)', r.name, r.rel;
    EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', r.rel, r.name);
  END LOOP;
  -- Tables of the schema rehearse promotes in only: its fingerprint (checked by the caller)
  -- says they are the promotion's, while one elsewhere may be someone's since; that one is left
  -- alone. No CASCADE: what else depends on them (a view someone made) makes the whole rollback
  -- fail and change nothing, rather than go with them.
  FOR r IN SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname = pg_catalog.current_schema()
             AND c.relname <> 'rehearse_history'
             AND (c.oid <> ALL ({relations}) OR NOT EXISTS (
                   SELECT 1 FROM ({dumped}) AS d(oid, line)
                   WHERE d.oid = c.oid AND pg_catalog.strpos(d.line || ' ', ' TABLE ' || n.nspname || ' ' || c.relname || ' ') > 0))
           ORDER BY c.oid
  LOOP
    RAISE NOTICE 'rehearse: dropping table % (the promotion created or renamed it)', r.oid::pg_catalog.regclass;
    EXECUTE pg_catalog.format('DROP TABLE %s', r.oid::pg_catalog.regclass);
  END LOOP;
END $rehearse$;
",
        constraints = list(PG_CONSTRAINT),
        relations = list(PG_CLASS),
        dumped = match tables.is_empty() {
            true => "SELECT NULL::pg_catalog.oid, NULL::pg_catalog.text WHERE false".to_string(),
            false => format!(
                "VALUES {}",
                tables
                    .iter()
                    .map(|(o, l)| format!("({o}::pg_catalog.oid, '{}'::pg_catalog.text)", l.replace('\'', "''")))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    )
}

/// Run `prelude` (which opens the transaction), then the SQL `producer` writes on its stdout,
/// then COMMIT, through one psql session. COMMIT is written only once the producer exited well
/// and psql took every byte; psql stops at the first error (ON_ERROR_STOP), and a psql that
/// reaches the end of its input without COMMIT ends the session, which rolls the transaction
/// back. So does rehearse's own death: psql's input closes before COMMIT.
fn run_in_one_psql_transaction(
    tools: &Tools,
    params: &Params,
    prelude: &str,
    producer: duct::Expression,
) -> anyhow::Result<()> {
    use std::io::Write;
    let mut cmd = std::process::Command::new(&tools.psql);
    cmd.args(["--no-psqlrc", "--quiet", "--no-password", "--set=ON_ERROR_STOP=1", "--file=-"]);
    cmd.arg({
        let mut d = OsString::from("--dbname=");
        d.push(conninfo_dbname(&params.dbname));
        d
    });
    if params.password.is_none() {
        cmd.env_remove("PGPASSWORD");
    }
    for (k, v) in params.child_env() {
        cmd.env(k, v);
    }
    cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
    let mut psql = cmd.spawn().with_context(|| format!("cannot start {}", tools.psql.display()))?;
    let mut stdin = psql.stdin.take().expect("piped");
    // psql's stderr is read on its own thread, so a chatty psql never blocks on a full pipe.
    let mut stderr = psql.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let fed: anyhow::Result<()> = (|| {
        stdin.write_all(prelude.as_bytes())?;
        let mut sql = producer.stderr_capture().reader()?;
        // The reader's EOF waits for pg_restore and fails when its exit status does.
        std::io::copy(&mut sql, &mut stdin)?;
        stdin.write_all(b"\nCOMMIT;\n")?;
        Ok(())
    })();
    drop(stdin);
    let status = psql.wait()?;
    let errors = errors.join().unwrap_or_default();
    let tail: Vec<&str> = errors.lines().filter(|l| !l.contains("NOTICE:")).collect();
    let tail = tail[tail.len().saturating_sub(3)..].join(" | ");
    for l in errors.lines().filter(|l| l.contains("NOTICE:  rehearse: ")) {
        say(l.split_once("NOTICE:  rehearse: ").map(|(_, m)| m).unwrap_or(l));
    }
    if !status.success() {
        bail!("{} failed ({status}): {}", tools.psql.display(), crate::redact::url(&tail));
    }
    fed.with_context(|| format!("the restore SQL did not reach {} whole", tools.psql.display()))?;
    Ok(())
}

fn refused_unmarked(name: &str, comment: &str, params: &Params) -> anyhow::Error {
    let why = if comment.is_empty() { String::new() } else { format!(" (its comment is {comment:?})") };
    anyhow::Error::new(Refused(format!(
        "database {name} on {} exists but was not made by rehearse{why}: drop it yourself or choose another name for live",
        params.host_port()
    )))
}

fn say(msg: &str) {
    eprintln!("rehearse: {msg}");
}

/// Whether a database exists, and whether rehearse made it.
#[derive(Debug, PartialEq, Eq)]
enum Existing {
    Absent,
    Marked,
    Unmarked(String),
}

/// An open PostgreSQL session with the runtime that drives it.
pub struct PgConn {
    // Dropped first (see Drop), so the connection task can say goodbye to the server.
    client: Option<tokio_postgres::Client>,
    task: Option<tokio::task::JoinHandle<()>>,
    rt: tokio::runtime::Runtime,
    version: PgVersion,
    /// Whether `pg_temp.rehearse_castable` exists in this session.
    castable_helper: bool,
    /// Inside `run_in_transaction`'s BEGIN .. COMMIT (verification runs there).
    in_transaction: bool,
    /// Opened with Access::ReadOnly (live): no helper function can be created in it.
    read_only: bool,
    /// Where this session connects: a COMMIT whose answer was lost is read back on a new one.
    params: Params,
    /// Why the last `run_in_transaction`'s COMMIT has no known outcome (its answer was lost and
    /// the server could not tell): live may be old or new.
    commit_in_doubt: Option<String>,
}

impl Drop for PgConn {
    fn drop(&mut self) {
        drop(self.client.take());
        if let Some(task) = self.task.take() {
            let _ = self.rt.block_on(async { tokio::time::timeout(Duration::from_secs(2), task).await });
        }
    }
}

impl PgConn {
    pub fn connect(params: &Params, access: Access) -> anyhow::Result<PgConn> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let config = params.tokio_config();
        let mut attempts = 0;
        let (client, connection) = loop {
            match rt.block_on(config.connect(NoTls)) {
                Ok(pair) => break pair,
                // Retried: a server that is starting up or recovering answers a moment later,
                // and connecting has no effect to repeat.
                Err(e) if attempts < 20 && e.code() == Some(&SqlState::CANNOT_CONNECT_NOW) => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => return Err(connect_error(&e, params)),
            }
        };
        let task = rt.spawn(async move {
            let _ = connection.await;
        });
        let mut conn = PgConn {
            client: Some(client),
            task: Some(task),
            rt,
            version: PgVersion(0),
            castable_helper: false,
            in_transaction: false,
            read_only: access == Access::ReadOnly,
            params: params.clone(),
            commit_in_doubt: None,
        };
        if access == Access::ReadOnly {
            // Before anything else: from here on no statement in this session can write.
            conn.exec("SET default_transaction_read_only = on")?;
        }
        let num = conn.scalar("SHOW server_version_num")?.unwrap_or_default();
        conn.version = PgVersion(num.trim().parse().with_context(|| format!("odd server_version_num {num:?}"))?);
        Ok(conn)
    }

    pub fn server_version(&self) -> PgVersion {
        self.version
    }

    fn client(&self) -> &tokio_postgres::Client {
        self.client.as_ref().expect("the client lives until the connection is dropped")
    }

    fn simple(&self, sql: &str) -> Result<Vec<SimpleQueryMessage>, tokio_postgres::Error> {
        self.rt.block_on(self.client().simple_query(sql))
    }

    fn exec(&self, sql: &str) -> anyhow::Result<()> {
        self.simple(sql).map_err(|e| anyhow::anyhow!("{}", db_message(&e, Some(sql))))?;
        Ok(())
    }

    /// Every row of every statement in `sql`, as text.
    fn rows(&self, sql: &str) -> anyhow::Result<Vec<Row>> {
        let msgs = self.simple(sql).map_err(|e| anyhow::anyhow!("{}", db_message(&e, Some(sql))))?;
        Ok(msgs.iter().filter_map(row_of).collect())
    }

    /// How to read each column of `select` from COPY's binary format, or None when one of them
    /// has no exact reading (binary.rs) or the session does not print dates in ISO style.
    fn binary_decoders(&self, select: &str) -> anyhow::Result<Option<Vec<binary::Decoder>>> {
        let style = self.rows("SELECT current_setting('DateStyle'), current_setting('TimeZone')")?;
        let setting = |i: usize| style.first().and_then(|r| r.get(i).cloned().flatten()).unwrap_or_default();
        if !setting(0).starts_with("ISO") {
            return Ok(None);
        }
        let utc = matches!(setting(1).as_str(), "UTC" | "Etc/UTC");
        let statement = self
            .rt
            .block_on(self.client().prepare(select))
            .map_err(|e| anyhow::anyhow!("{}", db_message(&e, Some(select))))?;
        Ok(statement.columns().iter().map(|c| binary::Decoder::for_type(c.type_(), utc)).collect())
    }

    fn scalar(&self, sql: &str) -> anyhow::Result<Option<String>> {
        Ok(self.rows(sql)?.into_iter().next().and_then(|r| r.into_iter().next()).flatten())
    }

    /// ENCODING and locale options that make a new database sort and store like live.
    fn create_options(&self) -> anyhow::Result<String> {
        let v = self.version.0;
        let provider = if v >= 150000 { "datlocprovider::text" } else { "'c'" };
        let locale = if v >= 170000 {
            "datlocale"
        } else if v >= 150000 {
            "daticulocale"
        } else {
            "NULL::text"
        };
        let rows = self.rows(&format!(
            "SELECT pg_catalog.pg_encoding_to_char(encoding), datcollate, datctype, {provider}, {locale} \
             FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()"
        ))?;
        let Some(r) = rows.into_iter().next() else { return Ok(String::new()) };
        let lit = |i: usize| Dialect::Postgres.literal(r.get(i).cloned().flatten().as_deref().unwrap_or(""));
        let mut out = format!(" ENCODING {} LC_COLLATE {} LC_CTYPE {}", lit(0), lit(1), lit(2));
        match r.get(3).cloned().flatten().as_deref() {
            Some("i") => out.push_str(&format!(" LOCALE_PROVIDER icu ICU_LOCALE {}", lit(4))),
            Some("b") => out.push_str(&format!(" LOCALE_PROVIDER builtin BUILTIN_LOCALE {}", lit(4))),
            _ => {}
        }
        Ok(out)
    }

    fn ensure_createdb(&self, params: &Params) -> anyhow::Result<()> {
        let may =
            self.scalar("SELECT rolcreatedb OR rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user")?;
        if may.as_deref() != Some("t") {
            bail!(
                "user {} on {} may not create databases, and rehearse needs to create the test copy: \
                 as a superuser run ALTER ROLE {} CREATEDB, or connect as a user that has CREATEDB",
                params.user,
                params.host_port(),
                Dialect::Postgres.quote(&params.user)
            );
        }
        Ok(())
    }

    /// Whether database `name` exists, and whether its comment starts with `mark`.
    fn existing(&self, name: &str, mark: &str) -> anyhow::Result<Existing> {
        let rows = self
            .rt
            .block_on(self.client().query(
                "SELECT pg_catalog.shobj_description(oid, 'pg_database') FROM pg_catalog.pg_database WHERE datname = $1",
                &[&name],
            ))
            .map_err(|e| anyhow::anyhow!("{}", db_message(&e, None)))?;
        let Some(row) = rows.first() else { return Ok(Existing::Absent) };
        let comment: Option<String> = row.get(0);
        let comment = comment.unwrap_or_default();
        Ok(if comment.starts_with(mark) { Existing::Marked } else { Existing::Unmarked(comment) })
    }

    /// The one place rehearse drops a database: only one it marked with `mark`, never live's.
    fn drop_marked(&self, name: &str, live: &str, mark: &str) -> anyhow::Result<()> {
        if name == live {
            return Err(anyhow::Error::new(Refused(format!(
                "refusing to drop database {name}: it is the live database"
            ))));
        }
        match self.existing(name, mark)? {
            Existing::Absent => return Ok(()),
            Existing::Unmarked(comment) => {
                return Err(anyhow::Error::new(Refused(format!(
                    "database {name} was not made by rehearse (its comment is {comment:?}): drop it yourself or choose another name"
                ))))
            }
            Existing::Marked => {}
        }
        // A session we closed a moment ago may still be exiting: wait for it a little, as DROP
        // DATABASE itself would.
        let mut n: i64 = 0;
        for _ in 0..50 {
            let sessions = self
                .rt
                .block_on(self.client().query(
                    "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = $1 AND pid <> pg_catalog.pg_backend_pid()",
                    &[&name],
                ))
                .map_err(|e| anyhow::anyhow!("{}", db_message(&e, None)))?;
            n = sessions.first().map(|r| r.get(0)).unwrap_or(0);
            if n == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if n > 0 {
            bail!(
                "database {name} has {n} open session(s) (someone testing the new code on it?): close them, then run rehearse again"
            );
        }
        self.exec(&format!("DROP DATABASE {}", Dialect::Postgres.quote(name)))
            .with_context(|| format!("cannot drop rehearse's database {name}"))
    }

    /// Whether transaction `xid` committed (true) or was rolled back (false), asked on a new
    /// session with `txid_status` once the server has finished with it. Reconnecting is retried a
    /// few times (a blip that cut the old session may cut a new one); it only reads.
    fn commit_outcome(&self, xid: Option<&str>) -> anyhow::Result<bool> {
        let xid: i64 = xid
            .and_then(|x| x.trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("the transaction's id was not read before COMMIT"))?;
        if self.version.0 < 100000 {
            bail!("PostgreSQL {} has no txid_status (10 and later have)", self.version);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut session = None;
        loop {
            let conn = match &session {
                Some(c) => c,
                None => match PgConn::connect(&self.params, Access::ReadOnly) {
                    Ok(c) => session.insert(c),
                    Err(e) if Instant::now() < deadline => {
                        let _ = e;
                        std::thread::sleep(Duration::from_millis(500));
                        continue;
                    }
                    Err(e) => return Err(e.context("cannot reconnect to live")),
                },
            };
            match conn.scalar(&format!("SELECT pg_catalog.txid_status({xid})")) {
                Ok(Some(s)) if s == "committed" => return Ok(true),
                Ok(Some(s)) if s == "aborted" => return Ok(false),
                // Still in progress: the old session has not yet read its COMMIT, or the
                // server is still finishing it.
                Ok(Some(s)) if s == "in progress" && Instant::now() < deadline => {}
                Ok(other) => bail!("txid_status({xid}) is {other:?}"),
                Err(_) if Instant::now() < deadline => session = None,
                Err(e) => return Err(e),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Make sure the session helper for cast probes exists (PostgreSQL before 16).
    fn ensure_castable_helper(&mut self) -> anyhow::Result<()> {
        if self.castable_helper {
            return Ok(());
        }
        // A real cast from the old type, exactly what `ALTER COLUMN ... TYPE t USING c::t` will do;
        // any error means the value does not convert.
        self.exec(
            "CREATE OR REPLACE FUNCTION pg_temp.rehearse_castable(v text, from_type text, to_type text) \
             RETURNS boolean LANGUAGE plpgsql AS $rehearse$ \
             BEGIN \
               EXECUTE pg_catalog.format('SELECT %L::%s::%s', v, from_type, to_type); \
               RETURN true; \
             EXCEPTION WHEN others THEN \
               RETURN false; \
             END $rehearse$",
        )
        .context("cannot create the cast probe helper pg_temp.rehearse_castable on the test copy")?;
        self.castable_helper = true;
        Ok(())
    }
}

fn row_of(m: &SimpleQueryMessage) -> Option<Row> {
    match m {
        SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
        _ => None,
    }
}

/// The server's message with its DETAIL and HINT, and the line in `sql` where it points.
fn db_message(e: &tokio_postgres::Error, sql: Option<&str>) -> String {
    let Some(db) = e.as_db_error() else { return e.to_string() };
    let mut m = db.message().to_string();
    if let (Some(sql), Some(tokio_postgres::error::ErrorPosition::Original(pos))) = (sql, db.position()) {
        let line = sql.chars().take(*pos as usize).filter(|c| *c == '\n').count() + 1;
        if sql.contains('\n') {
            m.push_str(&format!(" (at line {line})"));
        }
    }
    if let Some(d) = db.detail() {
        m.push_str(&format!("; DETAIL: {d}"));
    }
    if let Some(h) = db.hint() {
        m.push_str(&format!("; HINT: {h}"));
    }
    m
}

/// One line a sysadmin can act on, for the usual ways a connection fails.
fn connect_error(e: &tokio_postgres::Error, p: &Params) -> anyhow::Error {
    let hp = p.host_port();
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        if *code == SqlState::INVALID_PASSWORD {
            return anyhow::anyhow!(
                "wrong password for user {} on PostgreSQL server {hp}: check the password in the URL, PGPASSWORD or ~/.pgpass",
                p.user
            );
        }
        if *code == SqlState::INVALID_CATALOG_NAME {
            return anyhow::anyhow!(
                "database {} does not exist on PostgreSQL server {hp}: check the database name in the URL",
                p.dbname
            );
        }
        if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
            return anyhow::anyhow!(
                "PostgreSQL server {hp} refused user {} for database {}: {}",
                p.user,
                p.dbname,
                db.message()
            );
        }
        return anyhow::anyhow!("cannot connect to PostgreSQL database {} on {hp}: {}", p.dbname, db_message(e, None));
    }
    let text = e.to_string();
    if text.contains("password missing") {
        return anyhow::anyhow!(
            "PostgreSQL server {hp} asks a password for user {} and none was given: put it in PGPASSWORD or ~/.pgpass (never on the command line)",
            p.user
        );
    }
    anyhow::anyhow!(
        "cannot reach the PostgreSQL server at {hp} ({}): check that it is running and accepts connections there",
        crate::redact::url(&text)
    )
}

impl Connection for PgConn {
    fn introspect(&mut self) -> anyhow::Result<Schema> {
        let q = catalog::queries(self.version.0 as i32);
        let reads = format!("{}; {}; {}; {}", q.tables, q.columns, q.constraints, q.indexes);
        // One round trip, one snapshot: the four catalog reads see the same schema. Inside a
        // script's transaction (verification before COMMIT) they read that transaction's work,
        // and must neither begin nor end a transaction of their own.
        let text = if self.in_transaction {
            reads
        } else {
            format!("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; {reads}; COMMIT")
        };
        let msgs = match self.simple(&text) {
            Ok(m) => m,
            Err(e) => {
                if !self.in_transaction {
                    let _ = self.simple("ROLLBACK");
                }
                bail!("cannot read the schema: {}", db_message(&e, None));
            }
        };
        // Results are separated by CommandComplete: BEGIN, the four SELECTs, COMMIT.
        let mut results: Vec<Vec<Row>> = vec![vec![]];
        for m in &msgs {
            match m {
                SimpleQueryMessage::Row(_) => results.last_mut().expect("one").extend(row_of(m)),
                SimpleQueryMessage::CommandComplete(_) => results.push(vec![]),
                _ => {}
            }
        }
        let mut it = results.into_iter().skip(usize::from(!self.in_transaction));
        let mut next = || it.next().unwrap_or_default();
        let (tables, columns, constraints, indexes) = (next(), next(), next(), next());
        Ok(catalog::assemble(tables, columns, constraints, indexes))
    }

    fn query(&mut self, sql: &str) -> anyhow::Result<Vec<Row>> {
        self.rows(sql)
    }

    fn execute_batch(&mut self, sql: &str) -> anyhow::Result<()> {
        self.simple(sql).map_err(|e| anyhow::anyhow!("{}", db_message(&e, Some(sql))))?;
        Ok(())
    }

    fn run_in_transaction(
        &mut self,
        prelude: &[Statement],
        body: &[Statement],
        before_commit: &mut dyn FnMut(&mut dyn Connection) -> anyhow::Result<()>,
    ) -> Result<Vec<StatementTiming>, StatementFailure> {
        let fail = |st: &Statement, e: &tokio_postgres::Error| StatementFailure {
            line: st.line,
            statement: st.sql.clone(),
            message: db_message(e, None),
        };
        for st in prelude {
            self.simple(&st.sql).map_err(|e| fail(st, &e))?;
        }
        let begin = Statement::new(0, "BEGIN");
        self.simple(&begin.sql).map_err(|e| fail(&begin, &e))?;
        self.commit_in_doubt = None;
        self.in_transaction = true;
        let result = self.transaction_body(body, before_commit);
        self.in_transaction = false;
        result
    }

    fn castable(&mut self, expr: &str, from_type: &str, to_type: &str) -> anyhow::Result<Option<String>> {
        if always_converts(from_type, to_type) {
            return Ok(None);
        }
        let lit = |s: &str| Dialect::Postgres.literal(s);
        // Text sources: input validity is exactly what the cast checks, and needs no helper.
        if self.version.0 >= 160000 && is_string_type(from_type) {
            return Ok(Some(format!("pg_catalog.pg_input_is_valid(({expr})::text, {})", lit(to_type))));
        }
        // Before 16, text to an integer type without the helper's exception block per row (which
        // made probing a large table slow): PostgreSQL's integer input is exactly optional
        // spaces, a sign, decimal digits, spaces; then the range, which only a value with as
        // many characters as the type's largest number can miss (the numeric conversion is the
        // costly part, so shorter values skip it).
        if is_string_type(from_type) {
            if let Some((lo, hi)) = integer_range(to_type) {
                let short = hi.to_string().len();
                return Ok(Some(format!(
                    "CASE WHEN ({expr})::text ~ '^\\s*[-+]?[0-9]+\\s*$' THEN (CASE WHEN octet_length(({expr})::text) < {short} THEN true \
                     ELSE btrim(({expr})::text, E' \\t\\n\\r\\f\\x0B')::numeric BETWEEN {lo} AND {hi} END) ELSE false END"
                )));
            }
        }
        if self.read_only {
            // Live before PostgreSQL 16 (the drift check of --live): the helper cannot be created
            // in a read-only session, so this cast cannot be re-probed there. Unknown, which is
            // not "every value converts": the drift check leaves this figure out. The promotion
            // stays safe: the script runs in one transaction, verified before COMMIT, and a value
            // that no longer converts fails it and rolls everything back.
            return Err(crate::probe::Unmeasurable(format!(
                "PostgreSQL {} cannot test a cast from {from_type} to {to_type} in a read-only session (16 can)",
                self.version
            ))
            .into());
        }
        self.ensure_castable_helper()?;
        Ok(Some(format!("pg_temp.rehearse_castable(({expr})::text, {}, {})", lit(from_type), lit(to_type))))
    }

    fn session_bound(&self, sql: &str) -> bool {
        sql.contains("pg_temp.")
    }

    fn commit_in_doubt(&self) -> Option<String> {
        self.commit_in_doubt.clone()
    }

    fn char_length(&self, expr: &str) -> String {
        format!("char_length({expr})")
    }

    fn as_text(&self, expr: &str) -> String {
        format!("({expr})::text")
    }

    fn stream(
        &mut self,
        select: &str,
        batch: usize,
        f: &mut dyn FnMut(Vec<Row>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        use futures_util::StreamExt;
        // COPY TO streams rows as the server produces them; a plain query would hold them all.
        // The binary format when every column's text can be rebuilt from it exactly.
        let decoders = self.binary_decoders(select)?;
        let sql = match decoders {
            Some(_) => format!("COPY ({select}) TO STDOUT (FORMAT binary)"),
            None => format!("COPY ({select}) TO STDOUT"),
        };
        let failed = |e: tokio_postgres::Error| anyhow::anyhow!("{}", db_message(&e, Some(&sql)));
        let client = self.client();
        self.rt.block_on(async {
            let out = client.copy_out(&sql).await.map_err(failed)?;
            futures_util::pin_mut!(out);
            let mut page = Vec::with_capacity(batch);
            let mut binary = decoders.map(binary::Reader::new);
            // Text: a message holds one line in practice; `rest` keeps a line split across
            // messages.
            let mut rest: Vec<u8> = Vec::new();
            while let Some(data) = out.next().await {
                let data = data.map_err(failed)?;
                if let Some(reader) = &mut binary {
                    reader.feed(&data, &mut page)?;
                } else if rest.is_empty() {
                    let used = copy_text_rows(&data, &mut page);
                    rest.extend_from_slice(&data[used..]);
                } else {
                    rest.extend_from_slice(&data);
                    let used = copy_text_rows(&rest, &mut page);
                    rest.drain(..used);
                }
                if page.len() >= batch {
                    f(std::mem::replace(&mut page, Vec::with_capacity(batch)))?;
                }
            }
            if binary.as_ref().is_some_and(|r| !r.finished()) {
                anyhow::bail!("COPY binary output of {select} ended before its trailer");
            }
            if !rest.is_empty() {
                rest.push(b'\n');
                copy_text_rows(&rest, &mut page);
            }
            if !page.is_empty() {
                f(page)?;
            }
            Ok(())
        })
    }

    fn copy_in(&mut self, copy_sql: &str, data: &mut dyn Iterator<Item = Vec<u8>>) -> anyhow::Result<u64> {
        use futures_util::SinkExt;
        let client = self.client();
        self.rt
            .block_on(async {
                let sink = client.copy_in(copy_sql).await?;
                futures_util::pin_mut!(sink);
                for chunk in data {
                    sink.send(bytes::Bytes::from(chunk)).await?;
                }
                sink.finish().await
            })
            .map_err(|e| anyhow::anyhow!("{}", db_message(&e, Some(copy_sql))))
    }
}

/// The whole lines of COPY's text format at the start of `buf`, appended to `rows`; returns the
/// bytes they took. Fields are split on tab, `\N` is NULL, and the backslash escapes COPY writes
/// (`\\`, `\t`, `\n`, `\r`, `\b`, `\f`, `\v`, octal, `\xHH`) are undone. One pass over the
/// bytes: a raw newline only ever ends a line, since COPY escapes the ones in values.
fn copy_text_rows(buf: &[u8], rows: &mut Vec<Row>) -> usize {
    let mut row: Row = Vec::new();
    let (mut start, mut line_start, mut escaped) = (0, 0, false);
    for i in memchr::memchr3_iter(b'\t', b'\n', b'\\', buf) {
        let b = buf[i];
        match b {
            b'\t' | b'\n' => {
                row.push(copy_text_field(&buf[start..i], escaped));
                start = i + 1;
                escaped = false;
                if b == b'\n' {
                    rows.push(std::mem::take(&mut row));
                    line_start = i + 1;
                }
            }
            b'\\' => escaped = true,
            _ => {}
        }
    }
    line_start
}

fn utf8(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

fn copy_text_field(field: &[u8], escaped: bool) -> Option<String> {
    if !escaped {
        return Some(utf8(field));
    }
    if field == b"\\N" {
        return None;
    }
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let b = field[i];
        i += 1;
        if b != b'\\' || i == field.len() {
            out.push(b);
            continue;
        }
        let c = field[i];
        i += 1;
        match c {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    match field.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            b'x' if field.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let mut v = 0u8;
                for _ in 0..2 {
                    match field.get(i).and_then(|d| (*d as char).to_digit(16)) {
                        Some(d) => {
                            v = v * 16 + d as u8;
                            i += 1;
                        }
                        None => break,
                    }
                }
                out.push(v);
            }
            other => out.push(other),
        }
    }
    Some(utf8(&out))
}

impl PgConn {
    /// The body of `run_in_transaction` after its BEGIN: the statements, the verification, COMMIT;
    /// ROLLBACK on the first failure.
    fn transaction_body(
        &mut self,
        body: &[Statement],
        before_commit: &mut dyn FnMut(&mut dyn Connection) -> anyhow::Result<()>,
    ) -> Result<Vec<StatementTiming>, StatementFailure> {
        let fail = |st: &Statement, e: &tokio_postgres::Error| StatementFailure {
            line: st.line,
            statement: st.sql.clone(),
            message: db_message(e, None),
        };
        let mut timings = Vec::with_capacity(body.len());
        // Which tables each statement rewrites: their storage file (relfilenode) changes.
        let files = |c: &Self| -> Vec<(String, String)> {
            c.rows(
                "SELECT c.relname, c.relfilenode::text FROM pg_catalog.pg_class c \
                 WHERE c.relkind = 'r' AND c.relnamespace = pg_catalog.current_schema()::regnamespace",
            )
            .unwrap_or_default()
            .into_iter()
            .filter_map(|r| Some((r.first()?.clone()?, r.get(1)?.clone()?)))
            .collect()
        };
        let mut before = files(self);
        for st in body {
            if let Some(g) = &st.guard {
                match super::run_guard(self, st, g) {
                    Ok(t) => timings.push(t),
                    Err(f) => {
                        let _ = self.simple("ROLLBACK");
                        return Err(f);
                    }
                }
                continue;
            }
            let started = Instant::now();
            match self.simple(&st.sql) {
                Ok(msgs) => {
                    let rows = msgs
                        .iter()
                        .map(|m| match m {
                            SimpleQueryMessage::CommandComplete(n) => *n,
                            _ => 0,
                        })
                        .sum();
                    let millis = super::millis(started.elapsed());
                    let after = files(self);
                    let rewrote = after
                        .iter()
                        .filter(|(t, f)| before.iter().any(|(bt, bf)| bt == t && bf != f))
                        .map(|(t, _)| t.clone())
                        .collect();
                    before = after;
                    timings.push(StatementTiming { line: st.line, millis, rows, rewrote, algorithm: None });
                }
                Err(e) => {
                    let _ = self.simple("ROLLBACK");
                    return Err(fail(st, &e));
                }
            }
        }
        // Verification sees the script's work inside the transaction, so a failure still rolls
        // everything back.
        if let Err(e) = before_commit(self) {
            let _ = self.simple("ROLLBACK");
            return Err(StatementFailure {
                line: 0,
                statement: "(verification before commit)".into(),
                message: format!("{e:#}"),
            });
        }
        // The transaction's id, so that a COMMIT whose answer is lost can be read back.
        let xid = self.scalar("SELECT pg_catalog.txid_current()").ok().flatten();
        let commit = Statement::new(0, "COMMIT");
        if let Err(e) = self.simple(&commit.sql) {
            if e.as_db_error().is_some() {
                // A deferred constraint fails at COMMIT, which then rolls back by itself.
                let _ = self.simple("ROLLBACK");
                return Err(fail(&commit, &e));
            }
            // The connection failed with COMMIT sent: the server may have committed. Only the
            // server can say; nothing is claimed until it has.
            let lost = StatementFailure {
                line: 0,
                statement: commit.sql.clone(),
                message: format!("the connection was lost at COMMIT ({e})"),
            };
            return match self.commit_outcome(xid.as_deref()) {
                Ok(true) => {
                    say("the connection was lost right after COMMIT; the server says the transaction committed");
                    Ok(timings)
                }
                Ok(false) => Err(StatementFailure {
                    message: format!("{}; the server says the transaction was rolled back", lost.message),
                    ..lost
                }),
                Err(why) => {
                    self.commit_in_doubt =
                        Some(format!("{}; its outcome could not be read back: {why:#}", lost.message));
                    Err(lost)
                }
            };
        }
        Ok(timings)
    }
}

/// Character string types proper (not uuid or inet, which Family::of also files under Text).
/// The range of a PostgreSQL integer type, by its normalized name.
fn integer_range(t: &str) -> Option<(i64, i64)> {
    match t {
        "smallint" | "int2" => Some((i16::MIN.into(), i16::MAX.into())),
        "integer" | "int" | "int4" => Some((i32::MIN.into(), i32::MAX.into())),
        "bigint" | "int8" => Some((i64::MIN, i64::MAX)),
        _ => None,
    }
}

fn is_string_type(t: &str) -> bool {
    let base = t.split('(').next().unwrap_or("").trim();
    matches!(base, "text" | "varchar" | "char" | "bpchar" | "character varying" | "character" | "citext")
}

/// Whether every value of `from` converts to `to` with a plain cast: the same type, a string type
/// (a narrower length is measured by its own probe), or a widening within one family.
pub fn always_converts(from: &str, to: &str) -> bool {
    if from == to || is_string_type(to) {
        return true;
    }
    let (ff, tf) = (Family::of(from), Family::of(to));
    let base = |t: &str| t.split('(').next().unwrap_or("").trim().to_string();
    match (ff, tf) {
        (Family::Integer, Family::Integer) => schema::integer_rank(to) >= schema::integer_rank(from),
        (Family::Integer, Family::Decimal) => match schema::numeric_precision(to) {
            None => base(to) == "numeric" || base(to) == "decimal",
            // smallint has 5 digits, integer 10, bigint 19.
            Some((p, s)) => {
                let digits = match schema::integer_rank(from) {
                    0..=2 => 5,
                    3 | 4 => 10,
                    _ => 19,
                };
                p.saturating_sub(s) >= digits
            }
        },
        (Family::Integer, Family::Float) => true,
        (Family::Float, Family::Float) => base(to) == "double precision" || base(from) == "real",
        (Family::Decimal, Family::Decimal) => match (schema::numeric_precision(from), schema::numeric_precision(to)) {
            (_, None) => base(to) == "numeric" || base(to) == "decimal",
            (Some((p1, s1)), Some((p2, s2))) => p2.saturating_sub(s2) >= p1.saturating_sub(s1) && s2 >= s1,
            (None, Some(_)) => false,
        },
        (Family::Temporal, Family::Temporal) => {
            matches!(
                (base(from).as_str(), base(to).as_str()),
                ("date", "timestamp" | "timestamptz")
                    | ("timestamp", "timestamptz")
                    | ("timestamptz", "timestamp")
                    | ("time", "interval")
            )
        }
        (Family::Boolean, Family::Boolean) => true,
        (Family::Json, Family::Json) => base(to) == "json",
        _ => false,
    }
}

// ---------------------------------------------------------------- dump and restore ---

/// pg_dump and pg_restore of one release, at least as new as the server.
struct Tools {
    dump: PathBuf,
    restore: PathBuf,
    /// psql of the same release: `rollback --live` runs the restore through one of its sessions.
    psql: PathBuf,
}

impl Tools {
    fn find(server: PgVersion) -> anyhow::Result<Tools> {
        let mut candidates = vec![PathBuf::from("pg_dump")];
        // Debian and Ubuntu keep every installed release under /usr/lib/postgresql/<major>/bin;
        // the one on PATH may be older than the server.
        if let Ok(dirs) = fs_err::read_dir("/usr/lib/postgresql") {
            let mut found: Vec<(u32, PathBuf)> = dirs
                .filter_map(Result::ok)
                .filter_map(|d| {
                    let major: u32 = d.file_name().to_string_lossy().parse().ok()?;
                    let p = d.path().join("bin/pg_dump");
                    p.exists().then_some((major, p))
                })
                .collect();
            found.sort_by_key(|f| std::cmp::Reverse(f.0));
            candidates.extend(found.into_iter().map(|(_, p)| p));
        }
        // Lazily: the first candidate that is new enough wins, and later ones are not run.
        Tools::choose(candidates.into_iter().filter_map(|c| tool_version(&c).map(|v| (c, v))), server)
    }

    /// The first pg_dump at least as new as the server; or why none fits.
    fn choose(found: impl Iterator<Item = (PathBuf, PgVersion)>, server: PgVersion) -> anyhow::Result<Tools> {
        let mut newest: Option<(PathBuf, PgVersion)> = None;
        for (c, v) in found {
            if v.major() >= server.major() {
                let sibling = |name: &str| match c.parent() {
                    Some(dir) if !dir.as_os_str().is_empty() => dir.join(name),
                    _ => PathBuf::from(name),
                };
                let (restore, psql) = (sibling("pg_restore"), sibling("psql"));
                return Ok(Tools { dump: c, restore, psql });
            }
            if newest.as_ref().is_none_or(|(_, n)| v > *n) {
                newest = Some((c, v));
            }
        }
        match newest {
            None => bail!(
                "pg_dump was not found: install postgresql-client (release {} or newer) so rehearse can copy the live database",
                server.major_text()
            ),
            Some((path, v)) => bail!(
                "pg_dump {v} ({}) is older than the PostgreSQL {server} server and cannot dump it: install postgresql-client-{} (or newer)",
                path.display(),
                server.major_text()
            ),
        }
    }
}

/// `pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)` is 15.18.
fn tool_version(program: &Path) -> Option<PgVersion> {
    // An OsStr, not a Path: duct runs a one-component Path as `./pg_dump`, an OsStr from PATH.
    let out = duct::cmd(program.as_os_str(), ["--version"]).stdout_capture().stderr_null().unchecked().run().ok()?;
    if !out.status.success() {
        return None;
    }
    parse_tool_version(&String::from_utf8_lossy(&out.stdout))
}

fn parse_tool_version(text: &str) -> Option<PgVersion> {
    let after = text.split_once(')').map(|(_, rest)| rest).unwrap_or(text);
    after.split_whitespace().find_map(PgVersion::parse)
}

fn jobs() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(2)
}

/// A libpq tool pointed at `params` through its environment. Arguments never hold a password.
pub fn tool_command(program: &Path, args: Vec<OsString>, params: &Params) -> duct::Expression {
    let mut e = duct::cmd(program.as_os_str(), args);
    if params.password.is_none() {
        e = e.env_remove("PGPASSWORD");
    }
    for (k, v) in params.child_env() {
        e = e.env(k, v);
    }
    e
}

/// `dbname='...'`: a conninfo string, so a database name with `=` in it is never mistaken for one.
fn conninfo_dbname(name: &str) -> OsString {
    format!("dbname='{}'", name.replace('\\', "\\\\").replace('\'', "\\'")).into()
}

/// A file-name-safe form of a database name.
fn file_stem(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

/// The arguments of the live dump (also checked by the tests: no secret among them).
pub fn dump_args(params: &Params, dir: &Path, jobs: usize) -> Vec<OsString> {
    let mut file = OsString::from("--file=");
    file.push(dir.as_os_str());
    vec![
        "--format=directory".into(),
        format!("--jobs={jobs}").into(),
        // Fast gzip: the dump is kept as the backup of live, and -j spreads the cost.
        "--compress=1".into(),
        "--no-password".into(),
        file,
        {
            let mut d = OsString::from("--dbname=");
            d.push(conninfo_dbname(&params.dbname));
            d
        },
    ]
}

/// Dump live into `<workdir>/<name>` (0700, files 0600): `<db>.dump.d`, the backup of live at
/// rehearsal time, or a promotion's fresh one. Written under a temporary name, so an earlier
/// backup is replaced only by a whole one.
fn dump_live(tools: &Tools, params: &Params, workdir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    fsutil::private_dir(workdir)?;
    let dir = workdir.join(name);
    let partial = workdir.join(format!(".{name}.partial"));
    if partial.exists() {
        fs_err::remove_dir_all(&partial).with_context(|| format!("cannot remove {}", partial.display()))?;
    }
    fsutil::private_dir(&partial)?;
    let jobs = jobs();
    say(&format!(
        "dumping PostgreSQL database {} on {} (pg_dump -j {jobs}) into {}",
        params.dbname,
        params.host_port(),
        dir.display()
    ));
    let started = Instant::now();
    let dumped = process::run(
        tool_command(&tools.dump, dump_args(params, &partial, jobs), params),
        &format!("{} of database {} on {}", tools.dump.display(), params.dbname, params.host_port()),
    );
    if let Err(e) = dumped {
        // A partial dump holds live data and is no backup: do not leave it behind.
        let _ = fs_err::remove_dir_all(&partial);
        return Err(e);
    }
    private_tree(&partial)?;
    if dir.exists() {
        fs_err::remove_dir_all(&dir).with_context(|| format!("cannot replace the earlier backup {}", dir.display()))?;
    }
    fs_err::rename(&partial, &dir)?;
    say(&format!("dump done in {:.1}s", started.elapsed().as_secs_f64()));
    Ok(dir)
}

/// pg_dump's folder and everything in it (all made by this run) private.
fn private_tree(dir: &Path) -> anyhow::Result<()> {
    fsutil::make_private_dir(dir)?;
    for entry in fs_err::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() {
            private_tree(&p)?;
        } else {
            fsutil::private_file(&p)?;
        }
    }
    Ok(())
}

fn restore(tools: &Tools, copy: &Params, dump: &Path) -> anyhow::Result<()> {
    let jobs = jobs();
    say(&format!("restoring into {} (pg_restore -j {jobs})", copy.dbname));
    let started = Instant::now();
    let mut d = OsString::from("--dbname=");
    d.push(conninfo_dbname(&copy.dbname));
    let args: Vec<OsString> = vec![
        format!("--jobs={jobs}").into(),
        "--no-owner".into(),
        "--no-acl".into(),
        "--exit-on-error".into(),
        "--no-password".into(),
        d,
        dump.as_os_str().to_owned(),
    ];
    process::run(
        tool_command(&tools.restore, args, copy),
        &format!("{} into database {} on {}", tools.restore.display(), copy.dbname, copy.host_port()),
    )
    .context("the test copy is left marked incomplete and will be recreated on the next run")?;
    say(&format!("restore done in {:.1}s", started.elapsed().as_secs_f64()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_rows_unescape_what_copy_to_writes() {
        let buf = b"1\t\\N\tA\\tb\\nc\\\\d\\re\t\t\\101\\x42\\v\n2\t\t\t\t\n3\tpart";
        let mut rows = Vec::new();
        let used = copy_text_rows(buf, &mut rows);
        assert_eq!(&buf[used..], b"3\tpart", "an unfinished line is left for the next message");
        assert_eq!(
            rows,
            vec![
                vec![Some("1".into()), None, Some("A\tb\nc\\d\re".into()), Some("".into()), Some("AB\u{b}".into())],
                vec![Some("2".into()), Some("".into()), Some("".into()), Some("".into()), Some("".into())],
            ]
        );
    }

    #[test]
    fn versions_compare_as_numbers() {
        assert_eq!(PgVersion::parse("15.18"), Some(PgVersion(150018)));
        assert_eq!(PgVersion::parse("9.6.24"), Some(PgVersion(90624)));
        assert_eq!(PgVersion::parse("17devel"), Some(PgVersion(170000)));
        assert!(PgVersion::parse("9.6.24").unwrap().major() < PgVersion(100000).major());
        assert!(PgVersion(160002).major() > PgVersion(150018).major());
        assert_eq!(parse_tool_version("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"), Some(PgVersion(150018)));
        assert_eq!(PgVersion(150018).to_string(), "15.18");
        assert_eq!(PgVersion(90624).major_text(), "9.6");
    }

    #[test]
    fn pg_dump_is_chosen_at_least_as_new_as_the_server() {
        let server = PgVersion(160004);
        let found = |v: &[(&str, u32)]| v.iter().map(|(p, n)| (PathBuf::from(p), PgVersion(*n))).collect::<Vec<_>>();
        let t = Tools::choose(
            found(&[("pg_dump", 150018), ("/usr/lib/postgresql/17/bin/pg_dump", 170002)]).into_iter(),
            server,
        )
        .ok()
        .unwrap();
        assert_eq!(t.dump, PathBuf::from("/usr/lib/postgresql/17/bin/pg_dump"));
        assert_eq!(t.restore, PathBuf::from("/usr/lib/postgresql/17/bin/pg_restore"));
        let t = Tools::choose(found(&[("pg_dump", 160001)]).into_iter(), server).ok().unwrap();
        assert_eq!(t.restore, PathBuf::from("pg_restore"), "from PATH too");
        let e = Tools::choose(found(&[("pg_dump", 150018)]).into_iter(), server).err().unwrap().to_string();
        assert!(e.contains("pg_dump 15.18") && e.contains("16.4 server") && e.contains("postgresql-client-16"), "{e}");
        let e = Tools::choose(std::iter::empty(), server).err().unwrap().to_string();
        assert!(e.contains("install postgresql-client"), "{e}");
    }

    #[test]
    fn dump_arguments_hold_no_password() {
        let p = Params::from_url("postgres://eden:hunter2@127.0.0.1:5432/eden", &|_| None).unwrap();
        let args = dump_args(&p, Path::new("/w/eden.dump.d"), 4);
        assert!(args.iter().all(|a| !a.to_string_lossy().contains("hunter2")), "{args:?}");
        assert!(args.contains(&OsString::from("--dbname=dbname='eden'")));
    }

    #[test]
    fn a_dump_list_gives_its_oids_and_no_name_is_read() {
        let list = ";\n; Archive created at 2026-01-01\n;\n215; 1259 16394 TABLE public my table; -- x /* y postgres\n\
                    3353; 0 16394 TABLE DATA public my table; -- x /* y postgres\n\
                    3208; 2606 16399 FK CONSTRAINT public a b_fkey postgres\n";
        let oids = dumped_oids(list);
        assert_eq!(oids, [(0, 16394), (1259, 16394), (2606, 16399)].into_iter().collect());
        let tables = dumped_tables(list);
        assert_eq!(tables, [(16394, "1259 16394 TABLE public my table; -- x /* y postgres".to_string())]);
        let prelude = rollback_prelude(&oids, &dumped_tables("7; 1259 5 TABLE public it's postgres\n"));
        assert!(prelude.contains("'{16394}'::pg_catalog.oid[]") && prelude.contains("'{16399}'::pg_catalog.oid[]"));
        assert!(
            prelude.contains("(5::pg_catalog.oid, '1259 5 TABLE public it''s postgres'::pg_catalog.text)"),
            "{prelude}"
        );
        assert!(prelude.starts_with("\\set ON_ERROR_STOP on\nBEGIN;"), "{prelude}");
    }

    #[test]
    fn derived_names_never_exceed_the_identifier_limit() {
        assert_eq!(derived_name("eden", "upgradetest").unwrap(), "edenupgradetest");
        assert!(derived_name(&"x".repeat(60), "upgradetest").is_err());
    }

    #[test]
    fn widening_casts_need_no_probe() {
        assert!(always_converts("integer", "bigint"));
        assert!(always_converts("integer", "text"));
        assert!(always_converts("varchar(10)", "varchar(5)"), "the length probe measures this one");
        assert!(always_converts("numeric(10,2)", "numeric(12,2)"));
        assert!(always_converts("date", "timestamp"));
        assert!(!always_converts("bigint", "integer"));
        assert!(!always_converts("text", "integer"));
        assert!(!always_converts("text", "uuid"));
        assert!(!always_converts("json", "jsonb"));
        assert!(!always_converts("numeric(10,2)", "numeric(5,2)"));
        assert!(!always_converts("integer", "numeric(5,2)"));
    }
}
