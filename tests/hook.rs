//! `wrappers/pre-commit-schema-check.sh` driven for real: a git repository made with `git init`,
//! schema snapshots written by the real binary (`rehearse snapshot`) from SQLite files, and the
//! hook installed as `.git/hooks/pre-commit`. A harmless change must commit; a change that needs a
//! human (a new NOT NULL column without a default) must be blocked, and pass once a hint settles it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_rehearse");
const HOOK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/wrappers/pre-commit-schema-check.sh");
const SNAPSHOT: &str = "db/schema-snapshot.yaml";

/// git with a fixed identity and none of the machine's or user's configuration.
fn git_cmd(repo: &Path) -> Command {
    let mut c = Command::new("git");
    c.current_dir(repo)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.org")
        .env("GIT_COMMITTER_NAME", "dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.org")
        .env("REHEARSE_BIN", BIN);
    c
}

fn git(repo: &Path, args: &[&str]) -> Output {
    git_cmd(repo).args(args).output().expect("git runs")
}

fn git_ok(repo: &Path, args: &[&str]) {
    let out = git(repo, args);
    assert!(out.status.success(), "git {args:?} failed:\n{}", text(&out));
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Write the snapshot of an SQLite database made from `ddl` (with one row in each table, like a
/// real deployment) into the repository, with the real binary.
fn write_snapshot(repo: &Path, scratch: &Path, name: &str, ddl: &str) {
    let db = scratch.join(format!("{name}.db"));
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(ddl).unwrap();
    drop(conn);
    let out = Command::new(BIN)
        .args(["snapshot", "--url", &format!("sqlite://{}", db.display())])
        .output()
        .expect("rehearse runs");
    assert!(out.status.success(), "rehearse snapshot failed:\n{}", text(&out));
    std::fs::create_dir_all(repo.join("db")).unwrap();
    std::fs::write(repo.join(SNAPSHOT), &out.stdout).unwrap();
}

/// Run the hook by hand in `repo`, as CI would.
fn hook(repo: &Path, env: &[(&str, &str)]) -> Output {
    let mut c = Command::new("bash");
    c.arg(HOOK).current_dir(repo).env("REHEARSE_BIN", BIN);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("the hook runs")
}

const V1: &str = "CREATE TABLE person (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL);
                  INSERT INTO person (name) VALUES ('Ada');";
const HARMLESS: &str = "CREATE TABLE person (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL, email VARCHAR(128));";
const NEEDS_HUMAN: &str =
    "CREATE TABLE person (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL, code VARCHAR(16) NOT NULL);";

/// A repository whose first commit holds the v1 snapshot, with the hook installed.
fn repo_with_v1(tmp: &Path) -> PathBuf {
    let repo = tmp.join("app");
    std::fs::create_dir_all(&repo).unwrap();
    git_ok(&repo, &["init", "-q"]);
    write_snapshot(&repo, tmp, "v1", V1);
    git_ok(&repo, &["add", SNAPSHOT]);
    let first = git(&repo, &["commit", "-q", "-m", "v1 schema"]);
    assert!(first.status.success(), "the first commit has nothing to compare with:\n{}", text(&first));
    let hooks = repo.join(".git/hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::copy(HOOK, hooks.join("pre-commit")).unwrap();
    repo
}

fn head(repo: &Path) -> String {
    String::from_utf8(git(repo, &["rev-parse", "HEAD"]).stdout).unwrap()
}

#[test]
fn a_harmless_schema_change_commits_and_one_that_needs_a_human_is_blocked() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_with_v1(tmp.path());

    // Nothing staged: the hook has nothing to say.
    let out = hook(&repo, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // A new nullable column: auto, the commit goes through and the hook shows the change.
    write_snapshot(&repo, tmp.path(), "harmless", HARMLESS);
    git_ok(&repo, &["add", SNAPSHOT]);
    let out = hook(&repo, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("AUTO   column_added person.email"), "{}", text(&out));
    let before = head(&repo);
    let commit = git(&repo, &["commit", "-q", "-m", "person.email"]);
    assert!(commit.status.success(), "the harmless change was blocked:\n{}", text(&commit));
    assert_ne!(head(&repo), before);

    // A new NOT NULL column without a default: a human must decide; git commit is refused.
    write_snapshot(&repo, tmp.path(), "human", NEEDS_HUMAN);
    git_ok(&repo, &["add", SNAPSHOT]);
    let out = hook(&repo, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("HUMAN  column_added person.code"), "{said}");
    assert!(said.contains("blocked: a change needs a human"), "{said}");
    let before = head(&repo);
    let commit = git(&repo, &["commit", "-q", "-m", "person.code"]);
    assert!(!commit.status.success(), "the commit went through:\n{}", text(&commit));
    assert!(text(&commit).contains("HUMAN"), "git shows the hook's findings:\n{}", text(&commit));
    assert_eq!(head(&repo), before, "nothing was committed");

    // The developers settle it with a defaults hint, staged with the snapshot: the commit passes.
    std::fs::write(repo.join("db/upgrade-hints.yaml"), "defaults:\n  \"person.code\": \"'UNKNOWN'\"\n").unwrap();
    git_ok(&repo, &["add", "db/upgrade-hints.yaml"]);
    let out = hook(&repo, &[("REHEARSE_HOOK_HINTS", "db/upgrade-hints.yaml")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("AUTO   column_added person.code"), "{}", text(&out));
}

#[test]
fn a_lossy_change_passes_unless_asked_and_a_broken_snapshot_is_blocked() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_with_v1(tmp.path());

    // Dropping a column loses data: lossy, not human. It passes by default and is blocked on request.
    write_snapshot(&repo, tmp.path(), "lossy", "CREATE TABLE person (id INTEGER PRIMARY KEY);");
    git_ok(&repo, &["add", SNAPSHOT]);
    let out = hook(&repo, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("LOSSY  column_dropped person.name"), "{}", text(&out));
    let out = hook(&repo, &[("REHEARSE_HOOK_BLOCK_LOSSY", "1")]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));

    // A snapshot that does not parse is a usage error (2), and blocks.
    std::fs::write(repo.join(SNAPSHOT), "garbage: [\n").unwrap();
    git_ok(&repo, &["add", SNAPSHOT]);
    let out = hook(&repo, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // A missing binary is said plainly.
    let out = hook(&repo, &[("REHEARSE_BIN", "/nonexistent/rehearse")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("rehearse not found"), "{}", text(&out));
}
