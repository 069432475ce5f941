//! Running child processes (git, the new code's schema command, later pg_dump/mysqldump) with
//! their stderr captured into the error, because duct's plain `run()` hides it.
//!
//! Arguments are always passed as a list, never through a shell, so no value is pasted into one.

use anyhow::bail;

/// Run an expression, capture stdout and stderr; on failure the error names `what`, the exit status
/// and the last lines of stderr.
pub fn run(expr: duct::Expression, what: &str) -> anyhow::Result<String> {
    Ok(String::from_utf8_lossy(&run_bytes(expr, what)?).into_owned())
}

/// `run`, with stdout as bytes (`git archive` writes a tar stream, not text).
pub fn run_bytes(expr: duct::Expression, what: &str) -> anyhow::Result<Vec<u8>> {
    // Each child leads its own process group, so an interruption stops what it started too
    // (a schema command's `sh -c` and its children).
    let expr = expr.before_spawn(|cmd| {
        std::os::unix::process::CommandExt::process_group(cmd, 0);
        Ok(())
    });
    let handle = std::sync::Arc::new(
        expr.stdout_capture()
            .stderr_capture()
            .unchecked()
            .start()
            .map_err(|e| anyhow::anyhow!("{what}: cannot start: {e}"))?,
    );
    // Killed if rehearse is interrupted meanwhile (crate::interrupt).
    crate::interrupt::track(handle.clone());
    let out = handle.wait().cloned();
    crate::interrupt::untrack(&handle);
    let out = out.map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let text = if stderr.trim().is_empty() { stdout } else { stderr };
        let tail: Vec<&str> = text.trim().lines().rev().take(3).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        let status = match out.status.code() {
            Some(c) => format!("exit status {c}"),
            None => "killed by a signal".to_string(),
        };
        bail!("{what} failed ({status}): {}", crate::redact::url(&tail.join(" | ")));
    }
    Ok(out.stdout)
}
