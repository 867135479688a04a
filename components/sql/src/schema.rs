//! The schema: numbered migration files under `schema/`, portable across SQLite and PostgreSQL.

/// `(version, sql)`, ascending. Statements end with `;` at the end of a line.
pub const MIGRATIONS: [(i64, &str); 2] =
    [(1, include_str!("../../../schema/001_init.sql")), (2, include_str!("../../../schema/002_auth_failures.sql"))];

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
    fn the_schema_splits_into_its_create_statements() {
        let all: Vec<String> = MIGRATIONS.iter().flat_map(|(_, sql)| statements(sql)).collect();
        assert!(all.iter().all(|s| s.starts_with("CREATE ") && !s.contains(';') && !s.contains("--")), "{all:#?}");
        for table in ["users", "secrets", "outbox", "auth_failures"] {
            assert!(all.iter().any(|s| s.starts_with(&format!("CREATE TABLE IF NOT EXISTS {table} "))), "{table}");
        }
    }
}
