//! Ctrl-C (SIGINT) and SIGTERM during a rehearsal: rehearse stops at once with exit 130 and one
//! line, the child process it was waiting for is stopped too, live is unchanged, and the next run
//! works from scratch.

mod common;

use common::Fixture;
use std::time::{Duration, Instant};

/// Processes whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(raw) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
            if cmd.contains(needle) && !cmd.contains("grep") {
                found.push(cmd);
            }
        }
    }
    found
}

fn interrupt_during_the_schema_command(signal: &str, n: u32) {
    // Unique to this test run, so a process left by another run is never mistaken for ours.
    let marker = format!("31.{}{n}", std::process::id());
    let fx = Fixture::story("add-nullable-column");
    let before = fx.live.fingerprint().unwrap();
    let mut cfg = fx.config_value();
    // The new code's schema command takes its time: rehearse is waiting on it when interrupted.
    cfg["schema"] = serde_json::json!({ "command": format!("sleep {marker}") });
    fx.write_config(&cfg);
    let mut cmd =
        common::rehearse_command(["run", "--config", fx.config.to_str().unwrap(), "--format", "json"], fx.dir());
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let started = Instant::now();
    while processes_with(&format!("sleep {marker}")).is_empty() {
        assert!(started.elapsed() < Duration::from_secs(20), "the schema command never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent = std::process::Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{stderr} {:?}",
        std::os::unix::process::ExitStatusExt::signal(&out.status)
    );
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("rehearse: interrupted") && last.contains("live was not changed"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(processes_with(&format!("sleep {marker}")), Vec::<String>::new(), "the child was left running");
    assert_eq!(fx.live.fingerprint().unwrap().changed_from(&before), None, "live changed");
    assert!(!fx.workdir.join("rehearsal.json").exists(), "no record of a rehearsal that did not finish");

    fx.write_config(&fx.config_value());
    let again = fx.run_json(&[]);
    assert_eq!(again.code, Some(0), "the run after the interruption\n{}", again.describe());
}

#[test]
fn ctrl_c_stops_the_run_and_its_child_and_the_next_run_works() {
    interrupt_during_the_schema_command("-INT", 1);
}

#[test]
fn sigterm_does_the_same() {
    interrupt_during_the_schema_command("-TERM", 2);
}
