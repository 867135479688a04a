//! URLs with credentials, shown without them.

/// `scheme://host[:port][/database]`: no user, password or query (PostgreSQL takes a password in
/// the query too). A SQLite URL is its path. Anything that does not look like a host is hidden
/// rather than guessed at.
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return match url.split_once(':') {
            Some((scheme, _)) if scheme.chars().all(|c| c.is_ascii_alphanumeric() || c == '+') => format!("{scheme}:…"),
            _ => "(unparsable URL)".into(),
        };
    };
    if scheme == "sqlite" {
        return format!("sqlite://{}", rest.split('?').next().unwrap_or_default());
    }
    // The last `@` ends the credentials (a password may hold `/` or `?` unencoded).
    let after_credentials = rest.rfind('@').map_or(rest, |at| &rest[at + 1..]);
    let end = after_credentials.find(['/', '?', '#']).unwrap_or(after_credentials.len());
    let (authority, tail) = after_credentials.split_at(end);
    let database = tail.strip_prefix('/').map(|t| t.split(['?', '#']).next().unwrap_or_default()).unwrap_or_default();
    let host_like = |s: &str, extra: &str| s.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c) || extra.contains(c));
    if authority.is_empty() || !host_like(authority, ":[]%") || !host_like(database, "") {
        return format!("{scheme}://…");
    }
    if database.is_empty() { format!("{scheme}://{authority}") } else { format!("{scheme}://{authority}/{database}") }
}

/// `url` without its `user:password@`, the rest (host, port, path, query) as it was.
pub fn without_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rfind('@') {
            Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// `text` with the credentials of `url` (the whole user-info and the password alone) replaced by
/// `***`, for error messages that might quote them.
pub fn scrub(text: &str, url: &str) -> String {
    let Some((_, rest)) = url.split_once("://") else { return text.to_owned() };
    let Some(at) = rest.rfind('@') else { return text.to_owned() };
    let user_info = &rest[..at];
    let mut out = text.replace(user_info, "***");
    if let Some((_, password)) = user_info.split_once(':').filter(|(_, p)| p.len() >= 3) {
        out = out.replace(password, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_url_shows_host_port_and_database_only() {
        assert_eq!(mask_url("postgres://app:s3cret@db.example.com:5432/gpt?sslmode=require"), "postgres://db.example.com:5432/gpt");
        assert_eq!(mask_url("postgresql://db/gpt"), "postgresql://db/gpt");
        assert_eq!(mask_url("postgres://u:p@[::1]:5432"), "postgres://[::1]:5432");
        assert_eq!(mask_url("smtps://user:pw@mail.example.com:465"), "smtps://mail.example.com:465");
    }

    #[test]
    fn a_password_with_slashes_or_a_query_password_never_shows() {
        for url in ["postgres://app:pa/ss?w@db:5432/gpt", "postgres://db/gpt?user=a@b&password=hunter22", "postgres://db/gpt?password=hunter22"] {
            let masked = mask_url(url);
            assert!(!masked.contains("pa/ss") && !masked.contains("hunter22") && !masked.contains("app"), "{url} → {masked}");
        }
        assert_eq!(mask_url("postgres://app:pa/ss?w@db:5432/gpt"), "postgres://db:5432/gpt");
    }

    #[test]
    fn a_sqlite_url_is_its_path() {
        assert_eq!(mask_url("sqlite:///var/lib/gpt-user/gpt-user.db?mode=rwc"), "sqlite:///var/lib/gpt-user/gpt-user.db");
    }

    #[test]
    fn credentials_come_off_a_url_and_the_rest_stays() {
        assert_eq!(without_credentials("smtp://u:p@ss@mail:587?tls=required"), "smtp://mail:587?tls=required");
        assert_eq!(without_credentials("smtp://mail:25"), "smtp://mail:25");
    }

    #[test]
    fn credentials_are_scrubbed_from_messages() {
        let url = "postgres://app:s3cret@db:5432/gpt";
        assert_eq!(scrub("login app:s3cret refused; password s3cret", url), "login *** refused; password ***");
        assert_eq!(scrub("connection refused", "sqlite:///x.db"), "connection refused");
    }
}
