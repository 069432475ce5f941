//! Ctrl-C, SIGTERM and SIGHUP: stop cleanly. The child processes rehearse started (git, pg_dump,
//! mysqldump, the new code's schema command) are killed, one line says what state things are in,
//! and the exit code is 130. Database sessions end with the process: the server rolls back an open
//! transaction, so live is never left half-changed, and the next run recreates the test copy (a
//! half-made one is marked incomplete or replaced). During `--live` the line points at `recover`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

static CHILDREN: Mutex<Vec<Arc<duct::Handle>>> = Mutex::new(Vec::new());
static PROMOTING: AtomicBool = AtomicBool::new(false);

/// Exit code after an interruption (128 + SIGINT, as shells report it).
pub const INTERRUPTED: i32 = 130;

/// Install the handler thread; call once, first thing in main.
pub fn install() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else { return };
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            for child in CHILDREN.lock().map(|c| c.clone()).unwrap_or_default() {
                for pid in child.pids() {
                    // The child's whole process group (see crate::process), then the child.
                    // SAFETY: kill(2) with a negative pid signals that process group; no memory
                    // is touched.
                    unsafe {
                        libc::kill(-(pid as libc::pid_t), libc::SIGTERM);
                    }
                }
                let _ = child.kill();
            }
            let name = match sig {
                SIGINT => "Ctrl-C",
                SIGTERM => "SIGTERM",
                _ => "SIGHUP",
            };
            let state = if PROMOTING.load(Ordering::SeqCst) {
                "a --live run was interrupted: run `rehearse recover --config ...` to settle live before anything else"
            } else {
                "live was not changed; child processes were stopped, and the next run starts over"
            };
            eprintln!("rehearse: interrupted ({name}): {state}");
            std::process::exit(INTERRUPTED);
        }
    });
}

/// A started child, killed if rehearse is interrupted while it runs.
pub(crate) fn track(handle: Arc<duct::Handle>) {
    if let Ok(mut c) = CHILDREN.lock() {
        c.push(handle);
    }
}

pub(crate) fn untrack(handle: &Arc<duct::Handle>) {
    if let Ok(mut c) = CHILDREN.lock() {
        c.retain(|h| !Arc::ptr_eq(h, handle));
    }
}

/// Marks the span of a promotion to live (for the message after an interruption).
pub struct Promoting;

impl Promoting {
    pub fn start() -> Promoting {
        PROMOTING.store(true, Ordering::SeqCst);
        Promoting
    }
}

impl Drop for Promoting {
    fn drop(&mut self) {
        PROMOTING.store(false, Ordering::SeqCst);
    }
}
