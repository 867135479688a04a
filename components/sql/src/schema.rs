//! The schema: numbered migration files under `schema/`, portable across SQLite and PostgreSQL.
//! Every runtime applies each version once, in order, and records it in `schema_migrations`
//! (`version`, `applied_at`): from version 3 on a migration may alter a table, which is not
//! idempotent.

/// `(version, sql)`, ascending. Statements end with `;` at the end of a line.
pub const MIGRATIONS: [(i64, &str); 8] = [
    (1, include_str!("../../../schema/001_init.sql")),
    (2, include_str!("../../../schema/002_auth_failures.sql")),
    (3, include_str!("../../../schema/003_user_block_reason.sql")),
    (4, include_str!("../../../schema/004_email_change.sql")),
    (5, include_str!("../../../schema/005_outbox_dead.sql")),
    (6, include_str!("../../../schema/006_signup_cap.sql")),
    (7, include_str!("../../../schema/007_events.sql")),
    (8, include_str!("../../../schema/008_oauth.sql")),
];

/// Where a runtime records the versions it applied.
pub const CREATE_SCHEMA_MIGRATIONS: &str =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)";

/// Splits a migration file into statements (without the final `;`), dropping `--` comment lines
/// and blank lines.
pub fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        if line.trim_start().starts_with("--") || line.trim().is_empty() {
            continue;
        }
        let end = line.trim_end().ends_with(';');
        current.push_str(if end { line.trim_end().trim_end_matches(';') } else { line });
        current.push('\n');
        if end {
            out.push(std::mem::take(&mut current));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_splits_into_its_statements() {
        let all: Vec<String> = MIGRATIONS.iter().flat_map(|(_, sql)| statements(sql)).collect();
        assert!(
            all.iter().all(|s| (s.starts_with("CREATE ") || s.starts_with("ALTER TABLE ")) && !s.contains(';') && !s.contains("--")),
            "{all:#?}"
        );
        assert!(all.iter().any(|s| s.starts_with("ALTER TABLE users ADD COLUMN blocked_reason TEXT")));
        for table in ["users", "secrets", "outbox", "auth_failures", "email_changes", "ephemeral", "events", "oauth_clients", "oauth_grants", "oauth_tokens"] {
            assert!(all.iter().any(|s| s.starts_with(&format!("CREATE TABLE IF NOT EXISTS {table} "))), "{table}");
        }
    }
}
