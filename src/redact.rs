//! Secret removal for anything that is shown: URLs in messages, command lines in errors.
//! Every string that may hold a connection URL passes through here before it is printed.

/// `postgres://eden:secret@host/db` becomes `postgres://eden:***@host/db`.
pub fn url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn password_in_url_is_masked() {
        assert_eq!(super::url("postgres://eden:s3cret@db:5432/eden"), "postgres://eden:***@db:5432/eden");
        assert_eq!(super::url("mysql://root@127.0.0.1/x"), "mysql://root@127.0.0.1/x");
        assert_eq!(super::url("sqlite:///srv/eden.db"), "sqlite:///srv/eden.db");
    }
}
