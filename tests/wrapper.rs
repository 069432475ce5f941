//! `wrappers/rehearse-upgrade.sh` driven for real: the script, the real binary (through
//! REHEARSE_BIN), a live SQLite file and a git repository in a temp dir. It must pass rehearse's
//! exit codes through, say where the report is and what to run next, read its defaults file as
//! data (never executing it), never confirm a promotion unless REHEARSE_YES=1, and keep secrets
//! off the command line when it runs rehearse as another user.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_rehearse");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/wrappers/rehearse-upgrade.sh");

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .output()
        .expect("git runs")
        .status
        .success();
    assert!(ok, "git {args:?} failed");
}

/// Live `app.db` with rows, and a repo with two versions of the new code: `v2` adds a nullable
/// column (the rehearsal passes), `v2-human` adds a NOT NULL column without a default (a human
/// must decide). Returns the two configs.
fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    let c = rusqlite::Connection::open(dir.join("app.db")).unwrap();
    c.execute_batch(
        "CREATE TABLE office (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL);
         INSERT INTO office VALUES (1, 'Paris'), (2, 'Lyon'), (3, 'Nantes');",
    )
    .unwrap();
    drop(c);
    let repo = dir.join("repo");
    std::fs::create_dir_all(repo.join("db")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    let schema = repo.join("db/schema.sql");
    std::fs::write(&schema, "CREATE TABLE office (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL, fax TEXT);\n")
        .unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "v2"]);
    git(&repo, &["tag", "v2"]);
    std::fs::write(
        &schema,
        "CREATE TABLE office (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL, code VARCHAR(16) NOT NULL);\n",
    )
    .unwrap();
    git(&repo, &["commit", "-q", "-am", "v2-human"]);
    git(&repo, &["tag", "v2-human"]);
    let config = |name: &str, revision: &str, workdir: &str| {
        let p = dir.join(name);
        std::fs::write(
            &p,
            format!(
                "live: {{ url: \"sqlite:app.db\" }}\napp: {{ repo: repo, revision: {revision} }}\n\
                 schema: {{ sql: db/schema.sql }}\nworkdir: {workdir}\n"
            ),
        )
        .unwrap();
        p
    };
    (config("upgrade.yaml", "v2", "work"), config("human.yaml", "v2-human", "work-human"))
}

/// The wrapper in `dir`, with none of the caller's REHEARSE_* settings, an empty defaults file
/// (so the machine's /etc/default/rehearse plays no part), the real binary and no terminal.
fn wrapper(dir: &Path) -> Command {
    let defaults = dir.join("no-defaults");
    if !defaults.exists() {
        std::fs::write(&defaults, "").unwrap();
    }
    let mut c = Command::new(SCRIPT);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("REHEARSE_") {
            c.env_remove(k);
        }
    }
    c.current_dir(dir).env("REHEARSE_BIN", BIN).env("REHEARSE_DEFAULTS", defaults).stdin(Stdio::null());
    c
}

fn out(o: &Output) -> String {
    format!("exit {:?}\nstdout:\n{}\nstderr:\n{}", o.status.code(), text(&o.stdout), text(&o.stderr))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn columns(db: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut s = c.prepare("SELECT name FROM pragma_table_info('office')").unwrap();
    s.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

fn on_path(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
}

/// A stand-in for rehearse that prints who runs it, its arguments, the variables it received,
/// and its parent's command line (runuser's, when it runs as another user).
fn fake_rehearse(dir: &Path) -> PathBuf {
    let p = dir.join("fake-rehearse");
    std::fs::write(
        &p,
        "#!/bin/sh\necho \"user=$(id -un)\"\nfor a in \"$@\"; do echo \"arg=$a\"; done\n\
         env | grep -E '^(REHEARSE_|PG|MYSQL_)' | sed 's/^/env:/'\n\
         printf 'parent='; tr '\\0' ' ' < /proc/$PPID/cmdline; echo\n",
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn rehearse_passes_then_live_needs_rehearse_yes_then_promotes() {
    let d = tempfile::tempdir().unwrap();
    let (cfg, _) = setup(d.path());
    let live = d.path().join("app.db");

    let o = wrapper(d.path()).env("REHEARSE_CONFIG", &cfg).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let err = text(&o.stderr);
    assert!(text(&o.stdout).contains("office"), "the report goes to stdout: {}", out(&o));
    if on_path("python3") {
        let report = d.path().join("work/report.md");
        assert!(err.contains(&format!("report: {}", report.display())), "{}", out(&o));
        assert!(report.exists());
    }
    assert!(err.contains(&format!("REHEARSE_CONFIG={} {SCRIPT} live", cfg.display())), "{}", out(&o));
    assert!(err.contains(&format!("{BIN} run --config {} --live", cfg.display())), "{}", out(&o));
    assert!(!columns(&live).contains(&"fax".to_string()), "a rehearsal never writes to live");

    // No terminal and no REHEARSE_YES: rehearse refuses (5), passed through; live untouched.
    let o = wrapper(d.path()).env("REHEARSE_CONFIG", &cfg).arg("live").output().unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", out(&o));
    assert!(text(&o.stderr).contains("REHEARSE_YES=1"), "{}", out(&o));
    assert!(!columns(&live).contains(&"fax".to_string()));

    // Anything but 1 does not confirm.
    let o = wrapper(d.path()).env("REHEARSE_CONFIG", &cfg).env("REHEARSE_YES", "yes").arg("live").output().unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", out(&o));

    // rehearse mode never promotes, whatever it is given.
    let o = wrapper(d.path()).env("REHEARSE_CONFIG", &cfg).args(["rehearse", "--live"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(!columns(&live).contains(&"fax".to_string()));

    let o = wrapper(d.path()).env("REHEARSE_CONFIG", &cfg).env("REHEARSE_YES", "1").arg("live").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(columns(&live).contains(&"fax".to_string()), "live promoted: {}", out(&o));

    let o = wrapper(d.path()).env("REHEARSE_CONFIG", &cfg).arg("history").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(!text(&o.stdout).contains("no promotion recorded"), "{}", out(&o));

    let o = wrapper(d.path()).env("REHEARSE_CONFIG", &cfg).arg("rollback").output().unwrap();
    assert_eq!(o.status.code(), Some(5), "rollback without REHEARSE_YES must not confirm: {}", out(&o));
    let o = wrapper(d.path()).env("REHEARSE_CONFIG", &cfg).env("REHEARSE_YES", "1").arg("rollback").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(!columns(&live).contains(&"fax".to_string()), "rolled back: {}", out(&o));
}

#[test]
fn override_flags_find_the_right_report_and_are_repeated_in_the_live_command() {
    let d = tempfile::tempdir().unwrap();
    let (cfg, _) = setup(d.path());
    let elsewhere = d.path().join("elsewhere");
    let o = wrapper(d.path())
        .env("REHEARSE_CONFIG", &cfg)
        .args(["--format", "json", "--workdir"])
        .arg(&elsewhere)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is rehearse's JSON, nothing else");
    assert_eq!(report["rehearsal"]["status"], "passed");
    let err = text(&o.stderr);
    if on_path("python3") {
        assert!(err.contains(&format!("report: {}/report.md", elsewhere.display())), "{}", out(&o));
    }
    let live_cmd = format!("{SCRIPT} live --workdir {}\n", elsewhere.display());
    assert!(err.contains(&live_cmd), "{}", out(&o));
    assert!(!err.contains("live --format") && !err.contains("--live --format"), "{}", out(&o));

    let o = wrapper(d.path())
        .env("REHEARSE_CONFIG", &cfg)
        .env("REHEARSE_YES", "1")
        .args(["live", "--workdir"])
        .arg(&elsewhere)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "the printed command promotes: {}", out(&o));
    assert!(columns(&d.path().join("app.db")).contains(&"fax".to_string()));
}

#[test]
fn needs_human_exit_3_is_passed_through_with_the_script_to_edit() {
    let d = tempfile::tempdir().unwrap();
    let (_, human) = setup(d.path());
    let o = wrapper(d.path()).env("REHEARSE_CONFIG", &human).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", out(&o));
    let err = text(&o.stderr);
    assert!(err.contains("a human must decide"), "{}", out(&o));
    assert!(!err.contains(" live\n"), "no promotion is offered when a human must decide: {}", out(&o));
    if on_path("python3") {
        let script = d.path().join("work-human/migration.sql");
        assert!(err.contains(&format!("script: {}", script.display())), "{}", out(&o));
        assert!(err.contains(&format!("rehearse --script {}", script.display())), "{}", out(&o));
    }
}

#[test]
fn defaults_file_is_read_as_data_and_the_environment_wins() {
    let d = tempfile::tempdir().unwrap();
    let (cfg, human) = setup(d.path());
    let pwned = d.path().join("pwned");
    let defaults = d.path().join("defaults");
    std::fs::write(
        &defaults,
        format!(
            "# settings for the nightly rehearsal\n\nREHEARSE_CONFIG=\"{cfg}\"\n\
             REHEARSE_X=$(touch {p})\nREHEARSE_Y=`touch {p}`\nREHEARSE_Z='a b'; touch {p}\n\
             PATH=/nowhere\nexport REHEARSE_W=1\nREHEARSE_YES=1\n",
            cfg = cfg.display(),
            p = pwned.display()
        ),
    )
    .unwrap();

    let o = wrapper(d.path()).env("REHEARSE_DEFAULTS", &defaults).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "the defaults file sets REHEARSE_CONFIG: {}", out(&o));
    assert!(!pwned.exists(), "a line of the defaults file was executed");
    let err = text(&o.stderr);
    assert!(err.contains(":7: PATH ignored"), "{}", out(&o));
    assert!(err.contains(":8: ignored"), "{}", out(&o));
    assert!(err.contains(":9: REHEARSE_YES ignored"), "{}", out(&o));

    // An environment variable wins over the defaults file.
    let o = wrapper(d.path()).env("REHEARSE_DEFAULTS", &defaults).env("REHEARSE_CONFIG", &human).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", out(&o));

    // REHEARSE_YES in the defaults file does not confirm a promotion.
    let o = wrapper(d.path()).env("REHEARSE_DEFAULTS", &defaults).arg("live").output().unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", out(&o));

    // The values reach rehearse literally, quotes stripped once, never expanded.
    let o = wrapper(d.path())
        .env("REHEARSE_DEFAULTS", &defaults)
        .env("REHEARSE_BIN", fake_rehearse(d.path()))
        .arg("history")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let got = text(&o.stdout);
    assert!(got.contains(&format!("env:REHEARSE_CONFIG={}\n", cfg.display())), "{got}");
    assert!(got.contains(&format!("env:REHEARSE_X=$(touch {})\n", pwned.display())), "{got}");
    assert!(got.contains(&format!("env:REHEARSE_Z='a b'; touch {}\n", pwned.display())), "{got}");
    assert!(!got.contains("REHEARSE_YES") && !got.contains("REHEARSE_W"), "{got}");
    assert!(!pwned.exists());

    // A defaults file others can write is refused: it chooses the binary root runs.
    std::fs::set_permissions(&defaults, std::fs::Permissions::from_mode(0o666)).unwrap();
    let o = wrapper(d.path()).env("REHEARSE_DEFAULTS", &defaults).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(text(&o.stderr).contains("chmod go-w"), "{}", out(&o));
}

#[test]
fn missing_binary_is_one_line_and_a_nonzero_exit() {
    let d = tempfile::tempdir().unwrap();
    let o = wrapper(d.path()).env("REHEARSE_BIN", d.path().join("no-such-rehearse")).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert_eq!(text(&o.stderr).lines().count(), 1, "{}", out(&o));
    assert!(text(&o.stderr).contains("REHEARSE_BIN"), "{}", out(&o));

    // Not on PATH either (and no defaults file: an empty REHEARSE_DEFAULTS reads none).
    let o = wrapper(d.path())
        .env_remove("REHEARSE_BIN")
        .env("REHEARSE_DEFAULTS", "")
        .env("PATH", d.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert_eq!(text(&o.stderr).lines().count(), 1, "{}", out(&o));
    assert!(text(&o.stderr).contains("not on PATH"), "{}", out(&o));
}

#[test]
fn without_python3_the_report_is_shown_as_a_command() {
    let d = tempfile::tempdir().unwrap();
    let (cfg, _) = setup(d.path());
    // A PATH with only what rehearse and the wrapper need, and no python3.
    let bin = d.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for tool in ["git", "stat"] {
        let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().unwrap();
        let path = text(&found.stdout).trim().to_string();
        std::os::unix::fs::symlink(path, bin.join(tool)).unwrap();
    }
    let o = wrapper(d.path()).env("REHEARSE_CONFIG", &cfg).env("PATH", &bin).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let err = text(&o.stderr);
    assert!(err.contains("python3"), "{}", out(&o));
    assert!(err.contains(&format!("{BIN} report --config {} --format md", cfg.display())), "{}", out(&o));
    assert!(err.contains(&format!("{SCRIPT} live")), "{}", out(&o));
}

#[test]
fn run_as_passes_variables_as_arguments_but_keeps_secrets_off_the_command_line() {
    let root = Command::new("id").arg("-u").output().map(|o| text(&o.stdout).trim() == "0").unwrap_or(false);
    let nobody = Command::new("id").arg("nobody").output().is_ok_and(|o| o.status.success());
    if !(root && nobody && on_path("runuser")) {
        eprintln!("skipped: needs root, runuser and the user nobody");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let fake = fake_rehearse(d.path());
    let o = wrapper(d.path())
        .env("REHEARSE_BIN", &fake)
        .env("REHEARSE_RUN_AS", "nobody")
        .env("REHEARSE_CONFIG", "/etc/rehearse/eden.yaml")
        .env("REHEARSE_WORKDIR", "/var/lib/rehearse/a b")
        .env("REHEARSE_APP_REVISION", "$(touch /tmp/x)")
        .env("REHEARSE_LIVE_URL", "postgres://eden:s3cret-url@127.0.0.1/eden")
        .env("PGPASSWORD", "s3cret-pg")
        .args(["history", "--extra", "two words"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let got = text(&o.stdout);
    assert!(got.contains("user=nobody\n"), "{got}");
    assert!(
        got.contains("arg=history\narg=--config\narg=/etc/rehearse/eden.yaml\narg=--extra\narg=two words\n"),
        "{got}"
    );
    for v in [
        "REHEARSE_WORKDIR=/var/lib/rehearse/a b",
        "REHEARSE_APP_REVISION=$(touch /tmp/x)",
        "REHEARSE_LIVE_URL=postgres://eden:s3cret-url@127.0.0.1/eden",
        "PGPASSWORD=s3cret-pg",
    ] {
        assert!(got.contains(&format!("env:{v}\n")), "{v} did not reach rehearse: {got}");
    }
    let parent = got.lines().find_map(|l| l.strip_prefix("parent=")).unwrap_or_default();
    assert!(parent.starts_with("runuser -u nobody -- env "), "{got}");
    assert!(parent.contains("REHEARSE_WORKDIR=/var/lib/rehearse/a b"), "passed explicitly: {got}");
    assert!(!parent.contains("s3cret"), "a secret is on the process list: {parent}");
}

#[test]
fn shellcheck_passes() {
    if !on_path("shellcheck") {
        eprintln!("skipped: shellcheck is not installed");
        return;
    }
    for args in [&["-o", "all"][..], &[][..]] {
        let o = Command::new("shellcheck").args(args).arg(SCRIPT).output().unwrap();
        assert!(o.status.success(), "shellcheck {args:?}: {}", out(&o));
    }
}
