//! Fresh PostgreSQL databases for tests, on the server `GPT_USER_TEST_POSTGRES_URL` names
//! (default `postgres://postgres@127.0.0.1:5432/postgres`, trust auth).

use sqlx::Connection as _;

/// A new, empty database: `(admin URL, database name)`. Drop it with [`drop_postgres_database`].
pub async fn fresh_postgres_database() -> (String, String) {
    let admin = std::env::var("GPT_USER_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    sqlx::any::install_default_drivers();
    let name = format!("gpt_user_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::AnyConnection::connect(&admin).await.expect("PostgreSQL is reachable (GPT_USER_TEST_POSTGRES_URL)");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
    (admin, name)
}

/// Drops a test database from a thread of its own (`Drop` cannot await), cutting its connections.
pub fn drop_postgres_database(admin: String, name: String) {
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            if let Ok(mut conn) = sqlx::AnyConnection::connect(&admin).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
            }
        });
    })
    .join();
}

/// A fresh database that is dropped with this value.
pub struct PgDatabase {
    admin: String,
    name: String,
}

impl PgDatabase {
    pub async fn fresh() -> Self {
        let (admin, name) = fresh_postgres_database().await;
        Self { admin, name }
    }

    pub fn url(&self) -> String {
        let (server, _) = self.admin.rsplit_once('/').unwrap();
        format!("{server}/{}", self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        drop_postgres_database(self.admin.clone(), self.name.clone());
    }
}
