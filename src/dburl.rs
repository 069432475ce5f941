//! Database URLs, read in one place: which engine a URL names and, for SQLite, which file.
//! Every command, the config resolution and `copy` read a URL through `DbUrl::parse`, so one
//! spelling of a SQLite file (`sqlite:///abs`, `sqlite:/abs`, `sqlite://rel`, `sqlite:rel`, with or
//! without `?options`) means the same file everywhere.

use crate::exit::UsageError;
use std::path::{Path, PathBuf};

/// The engine a URL names, and what is already known of it without connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbUrl {
    /// The SQLite file (absolute, or relative to the working folder as written).
    Sqlite(PathBuf),
    Postgres,
    Mysql,
}

impl DbUrl {
    /// `what` names the URL in the error (`live.url`, `--from`): the one line says what to fix.
    pub fn parse(url: &str, what: &str) -> Result<DbUrl, UsageError> {
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
        match scheme {
            "sqlite" => match sqlite_file(url) {
                Some(p) => Ok(DbUrl::Sqlite(p)),
                None => Err(UsageError(format!("{what} {url:?} names no file: use sqlite:///path/to/file.db"))),
            },
            "postgres" | "postgresql" => Ok(DbUrl::Postgres),
            "mysql" | "mariadb" => Ok(DbUrl::Mysql),
            _ => Err(UsageError(format!(
                "{what} {:?} has no known scheme: use sqlite:///path/to/file.db, postgres://user@host/db or mysql://user@host/db",
                crate::redact::url(url)
            ))),
        }
    }

    /// The SQLite file of `url`, when it is a SQLite URL that names one.
    pub fn sqlite(url: &str) -> Option<PathBuf> {
        match DbUrl::parse(url, "url") {
            Ok(DbUrl::Sqlite(p)) => Some(p),
            _ => None,
        }
    }

    /// A SQLite URL with a relative file made absolute against `base` (a config's folder);
    /// any other URL unchanged.
    pub fn anchored(url: String, base: &Path) -> String {
        match DbUrl::sqlite(&url) {
            Some(p) if p.is_relative() => format!("sqlite://{}", base.join(p).display()),
            _ => url,
        }
    }
}

/// `sqlite:` then `//` (optional) then the path, up to `?`.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty()).then(|| PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_sqlite_file_names_the_same_file() {
        for url in ["sqlite:///srv/app.db", "sqlite:/srv/app.db", "sqlite:///srv/app.db?mode=ro"] {
            assert_eq!(DbUrl::sqlite(url), Some(PathBuf::from("/srv/app.db")), "{url}");
        }
        for url in ["sqlite://app.db", "sqlite:app.db"] {
            assert_eq!(DbUrl::sqlite(url), Some(PathBuf::from("app.db")), "{url}");
        }
        assert_eq!(DbUrl::anchored("sqlite:app.db".into(), Path::new("/etc/x")), "sqlite:///etc/x/app.db");
        assert_eq!(DbUrl::anchored("sqlite:/srv/a.db".into(), Path::new("/etc/x")), "sqlite:/srv/a.db");
        assert_eq!(DbUrl::anchored("postgres://h/db".into(), Path::new("/etc/x")), "postgres://h/db");
    }

    #[test]
    fn a_url_without_a_file_or_a_scheme_says_what_to_write() {
        let e = DbUrl::parse("sqlite://", "live.url").unwrap_err();
        assert!(e.0.contains("live.url") && e.0.contains("names no file"), "{}", e.0);
        let e = DbUrl::parse("postgress://u:secret@h/db", "live.url").unwrap_err();
        assert!(e.0.contains("no known scheme") && !e.0.contains("secret"), "{}", e.0);
        assert!(matches!(DbUrl::parse("mariadb://h/db", "x"), Ok(DbUrl::Mysql)));
        assert!(matches!(DbUrl::parse("postgresql://h/db", "x"), Ok(DbUrl::Postgres)));
    }
}
