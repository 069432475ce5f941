//! Exit codes, distinct per outcome and documented in `--help` and docs/exit-codes.md, so a shell
//! wrapper can act on them. Errors carry their class as a typed marker found by `code_of`.

/// The rehearsal passed (or the command did what was asked).
pub const OK: i32 = 0;
/// An error outside the categories below: a server that cannot be reached, a failing child process.
pub const ERROR: i32 = 1;
/// Usage or configuration error: a bad flag, config key, URL or hints file. Nothing was done.
pub const USAGE: i32 = 2;
/// A human must decide: a finding needs a human, a loss is not accepted, or a TODO is left.
/// Nothing was run.
pub const NEEDS_HUMAN: i32 = 3;
/// The script failed on the test copy (or on live with `--live`) and was rolled back, or
/// verification failed.
pub const REHEARSAL_FAILED: i32 = 4;
/// Refused by a safety guard (e.g. a test copy rehearse did not make).
pub const REFUSED: i32 = 5;
/// An upgrade bundle is damaged or altered (checksum or size differs): it was not used.
pub const BUNDLE_DAMAGED: i32 = 6;

pub const HELP: &str = "Exit codes: 0 passed, 1 error, 2 usage/config error, 3 needs a human \
(nothing run), 4 rehearsal failed (rolled back), 5 refused by a safety guard, 6 bundle damaged or altered.";

/// A usage or configuration error (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A refusal by a safety guard (exit 5).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// An upgrade bundle that fails its checks (exit 6).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BundleDamaged(pub String);

pub fn usage(e: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(UsageError(format!("{e:#}")))
}

/// The cause in words when an error is the machine's resources failing rather than what was asked
/// of it (a full disk is no fault of the new code's DDL), or None.
pub fn resource_cause(msg: &str) -> Option<&'static str> {
    let l = msg.to_ascii_lowercase();
    [
        ("no space left on device", "the disk is full"),
        ("disk is full", "the disk is full"),
        ("could not extend file", "the disk is full"),
        ("is full", "the disk is full"),
        ("quota exceeded", "a disk quota is reached"),
        ("file too large", "a file size limit is reached"),
        ("error writing to disk", "the disk took no more (full, or a file size limit)"),
        ("disk i/o error", "the disk failed a read or write"),
        ("out of memory", "memory ran out"),
        ("read-only file system", "the file system is read-only"),
        ("too many connections", "the server has no free connection"),
    ]
    .iter()
    .find(|(w, _)| l.contains(w))
    .map(|(_, c)| *c)
}

pub fn code_of(e: &anyhow::Error) -> i32 {
    if e.chain().any(|c| c.is::<UsageError>()) {
        USAGE
    } else if e.chain().any(|c| c.is::<BundleDamaged>()) {
        BUNDLE_DAMAGED
    } else if e.chain().any(|c| c.is::<Refused>()) {
        REFUSED
    } else if e.chain().any(|c| c.is::<crate::live::LiveFailed>()) {
        REHEARSAL_FAILED
    } else {
        ERROR
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_told_from_a_fault_of_the_sql() {
        let pg = "ERROR:  could not extend file \"base/16384/16385\": No space left on device";
        assert_eq!(resource_cause(pg), Some("the disk is full"));
        assert_eq!(resource_cause("database or disk is full"), Some("the disk is full"));
        assert_eq!(resource_cause("near \"TABEL\": syntax error"), None);
        assert_eq!(resource_cause("relation \"x\" does not exist"), None);
    }
}
