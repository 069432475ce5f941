//! Running child processes (git, the new code's schema command, pg_dump, pg_restore, mysqldump,
//! mysql) with their stderr kept, because duct's plain `run()` hides it.
//!
//! A child's stderr goes to a log file in the workdir (`logs/`, 0600), never into memory: a child
//! may print 50 MB. On failure the log is kept and the error is short: the child's first line that
//! reads like an error (the cause; pg_restore's `ERROR:` line comes long before its last lines)
//! and its last few lines, each line capped, and the log's path. On success the log is removed.
//! A schema command's stdout is streamed to a file too, and it runs under a timeout, after which
//! its whole process group is killed.
//!
//! Arguments are always passed as a list, never through a shell, so no value is pasted into one.

use anyhow::Context;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where the logs go: `<workdir>/logs`, once a command knows its workdir (`log_into`); the
/// system's temp folder before that.
static LOG_DIR: Mutex<Option<PathBuf>> = Mutex::new(None);
static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Lines of a child's output shown after its first error line.
const TAIL_LINES: usize = 6;
/// Characters of one shown line: a line may be megabytes long.
const LINE_CHARS: usize = 300;

/// Keep the children's logs in `<workdir>/logs` from now on.
pub fn log_into(workdir: &Path) {
    if let Ok(mut d) = LOG_DIR.lock() {
        *d = Some(workdir.join("logs"));
    }
}

/// How a child is run beyond the defaults (stdout captured, no time limit).
#[derive(Debug, Default, Clone)]
pub struct Limits {
    /// Stream stdout into this file (made 0600) instead of capturing it; `run` then returns "".
    pub stdout_file: Option<PathBuf>,
    /// Kill the child (and its process group) after this long; the string names the config key
    /// that sets it, for the message.
    pub timeout: Option<(Duration, String)>,
}

/// Run an expression, capture stdout, keep stderr in a log; on failure the error names `what`,
/// the exit status, the cause and the log.
pub fn run(expr: duct::Expression, what: &str) -> anyhow::Result<String> {
    run_with(expr, what, &Limits::default())
}

/// `run`, with the limits given.
pub fn run_with(expr: duct::Expression, what: &str, limits: &Limits) -> anyhow::Result<String> {
    Ok(String::from_utf8_lossy(&run_bytes_with(expr, what, limits)?).into_owned())
}

/// `run`, with stdout as bytes (`git archive` writes a tar stream, not text).
pub fn run_bytes(expr: duct::Expression, what: &str) -> anyhow::Result<Vec<u8>> {
    run_bytes_with(expr, what, &Limits::default())
}

fn private_create(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let f = o.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    crate::fsutil::private_file(path)?;
    Ok(f)
}

/// A new private log file for one child, named after its program.
fn new_log(expr_program: &str) -> anyhow::Result<PathBuf> {
    let dir = LOG_DIR.lock().ok().and_then(|d| d.clone());
    let dir = match dir {
        Some(d) => {
            if let Some(workdir) = d.parent() {
                crate::fsutil::private_dir(workdir)?;
            }
            d
        }
        None => std::env::temp_dir().join(format!("rehearse-logs-{}", std::process::id())),
    };
    crate::fsutil::private_dir(&dir)?;
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let name: String =
        expr_program.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).take(40).collect();
    Ok(dir.join(format!("{stamp}-{}-{n}-{name}.log", std::process::id())))
}

/// The program a `what` names: its first word, without a folder (`/usr/bin/pg_dump of ...`).
fn program_of(what: &str) -> &str {
    let first = what.split_whitespace().next().unwrap_or("child");
    first.rsplit('/').next().unwrap_or(first)
}

fn run_bytes_with(expr: duct::Expression, what: &str, limits: &Limits) -> anyhow::Result<Vec<u8>> {
    let log = new_log(program_of(what))?;
    let log_file = private_create(&log)?;
    // Each child leads its own process group, so an interruption (or the timeout) stops what it
    // started too (a schema command's `sh -c` and its children).
    let expr = expr.before_spawn(|cmd| {
        std::os::unix::process::CommandExt::process_group(cmd, 0);
        Ok(())
    });
    let expr = match &limits.stdout_file {
        Some(p) => expr.stdout_file(private_create(p)?),
        None => expr.stdout_capture(),
    };
    let handle = std::sync::Arc::new(
        expr.stderr_file(log_file).unchecked().start().map_err(|e| anyhow::anyhow!("{what}: cannot start: {e}"))?,
    );
    // Killed if rehearse is interrupted meanwhile (crate::interrupt).
    crate::interrupt::track(handle.clone());
    let out = match &limits.timeout {
        None => handle.wait().cloned(),
        Some((limit, key)) => {
            let started = Instant::now();
            loop {
                match handle.try_wait() {
                    Ok(Some(out)) => break Ok(out.clone()),
                    Ok(None) if started.elapsed() >= *limit => {
                        kill_group(&handle);
                        crate::interrupt::untrack(&handle);
                        anyhow::bail!(
                            "{what} did not finish within {} ({key}): it was stopped, with the processes it started; \
                             raise {key} if it needs longer (its output so far: {})",
                            humantime::format_duration(*limit),
                            log.display()
                        );
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                    Err(e) => break Err(e),
                }
            }
        }
    };
    crate::interrupt::untrack(&handle);
    let out = out.map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    if out.status.success() {
        let _ = fs_err::remove_file(&log);
        if LOG_DIR.lock().ok().is_some_and(|d| d.is_none()) {
            // The temp folder's log folder is this process's own: leave nothing behind there.
            if let Some(dir) = log.parent() {
                let _ = fs_err::remove_dir(dir);
            }
        }
        return Ok(out.stdout);
    }
    let status = match out.status.code() {
        Some(c) => format!("exit status {c}"),
        None => "killed by a signal".to_string(),
    };
    // The cause is on stderr; a child that says nothing there may have said it on stdout.
    let mut summary = summarize(&log).unwrap_or_default();
    let mut shown_log = log.clone();
    if summary.is_empty() {
        let stdout = match &limits.stdout_file {
            Some(p) => summarize(p).unwrap_or_default(),
            None => summarize_reader(&out.stdout[..]).unwrap_or_default(),
        };
        if !stdout.is_empty() {
            summary = stdout;
            if let Some(p) = &limits.stdout_file {
                // Its stderr was empty: the file to read is the one its stdout went to.
                let _ = fs_err::remove_file(&log);
                shown_log = p.clone();
            }
        }
        if limits.stdout_file.is_none() && !out.stdout.is_empty() {
            // Captured stdout is small (a TOC, a commit id): keep it beside the empty stderr.
            let _ = fs_err::write(&log, &out.stdout);
        }
    }
    let said = match summary.is_empty() {
        false => summary.line(),
        // Nothing in its log: maybe the log itself could not be written, when the disk it is on
        // (the workdir's, where the dump goes too) is full. Writing a line there tells.
        true => match fs_err::write(&log, b"(the child printed nothing on stderr)\n") {
            Ok(()) => "it printed nothing".to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => {
                format!("it printed nothing, and there is no space left on device writing {}", log.display())
            }
            Err(e) => format!("it printed nothing, and its log cannot be written ({e})"),
        },
    };
    Err(anyhow::anyhow!(
        "{what} failed ({status}): {} (full output: {})",
        crate::redact::url(&said),
        shown_log.display()
    ))
}

fn kill_group(handle: &duct::Handle) {
    for pid in handle.pids() {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is touched.
        unsafe {
            libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
        }
    }
    let _ = handle.kill();
}

/// What a failure message shows of a child's output.
#[derive(Debug, Default, PartialEq)]
pub struct Summary {
    /// The first line that reads like an error, with its 1-based number.
    pub first_error: Option<(usize, String)>,
    /// The last lines, with their numbers.
    pub tail: VecDeque<(usize, String)>,
}

impl Summary {
    pub fn is_empty(&self) -> bool {
        self.first_error.is_none() && self.tail.is_empty()
    }

    /// One line: the error line, then the last lines (without repeating it), joined by ` | `.
    pub fn line(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        let mut gap = false;
        if let Some((n, l)) = &self.first_error {
            parts.push(l);
            gap = self.tail.front().is_some_and(|(first, _)| first > &(n + 1));
        }
        let after: Vec<&str> = self
            .tail
            .iter()
            .filter(|(n, _)| self.first_error.as_ref().is_none_or(|(e, _)| n > e))
            .map(|(_, l)| l.as_str())
            .collect();
        if gap && !after.is_empty() {
            parts.push("...");
        }
        parts.extend(after);
        parts.join(" | ")
    }
}

/// Whether a line of a child's output names the cause of its failure.
pub fn looks_like_error(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    [
        "error",
        "fatal",
        "no space left",
        "disk is full",
        "permission denied",
        "panicked",
        "traceback",
        "cannot ",
        "could not",
    ]
    .iter()
    .any(|w| l.contains(w))
}

/// Read a log file line by line, never more than one capped line in memory.
pub fn summarize(path: &Path) -> std::io::Result<Summary> {
    summarize_reader(std::fs::File::open(path)?)
}

fn summarize_reader(r: impl std::io::Read) -> std::io::Result<Summary> {
    let mut r = BufReader::new(r);
    let mut s = Summary::default();
    let mut line: Vec<u8> = Vec::new();
    let mut number = 0usize;
    let mut finish = |line: &mut Vec<u8>, s: &mut Summary| {
        number += 1;
        let text = String::from_utf8_lossy(line).trim().to_string();
        line.clear();
        if text.is_empty() {
            return;
        }
        let text = if text.chars().count() > LINE_CHARS {
            format!("{}...", text.chars().take(LINE_CHARS).collect::<String>())
        } else {
            text.to_string()
        };
        if s.first_error.is_none() && looks_like_error(&text) {
            s.first_error = Some((number, text.clone()));
        }
        s.tail.push_back((number, text));
        if s.tail.len() > TAIL_LINES {
            s.tail.pop_front();
        }
    };
    // Bytes of one line kept: enough for LINE_CHARS characters of UTF-8.
    let keep = LINE_CHARS * 4 + 4;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            if !line.is_empty() {
                finish(&mut line, &mut s);
            }
            break;
        }
        let (chunk, used, ends) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..i], i + 1, true),
            None => (buf, buf.len(), false),
        };
        let room = keep.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        r.consume(used);
        if ends {
            finish(&mut line, &mut s);
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_line_in_the_middle_of_long_output_is_kept_with_the_last_lines() {
        let mut text = String::new();
        for i in 0..1000 {
            text.push_str(&format!("pg_restore: processing item {i}\n"));
        }
        text.push_str("pg_restore: error: could not execute query: ERROR:  relation \"t\" already exists\n");
        for i in 0..1000 {
            text.push_str(&format!("pg_restore: processing item {i} again\n"));
        }
        text.push_str("pg_restore: warning: errors ignored on restore: 1\n");
        let s = summarize_reader(text.as_bytes()).unwrap();
        let line = s.line();
        assert!(line.starts_with("pg_restore: error: could not execute query: ERROR:  relation"), "{line}");
        assert!(line.contains(" | ... | ") && line.ends_with("errors ignored on restore: 1"), "{line}");
        assert!(line.len() < 2000, "{}", line.len());
    }

    #[test]
    fn a_huge_line_is_capped_and_no_error_line_shows_the_last_lines() {
        let text = format!("{}\nlast words\n", "x".repeat(5_000_000));
        let line = summarize_reader(text.as_bytes()).unwrap().line();
        assert!(line.len() < 1000 && line.ends_with("... | last words"), "{}", &line[..line.len().min(400)]);
    }
}
