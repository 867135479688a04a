//! A host for `fermyon:spin/sqlite@2.0.0` over a real SQLite file, as Spin's own host does it
//! (rusqlite, one connection per `open`, errors as `io(<sqlite message>)`).
//!
//! Defined on the linker by hand: six small types and two functions, and the types are checked
//! against the adapter's import by wasmtime at link time, so a drift from the WIT fails loudly.

use std::time::Duration;

use wasmtime::component::{ComponentType, Lift, Linker, Lower, Resource, ResourceType};

use crate::harness::HostState;

pub const INTERFACE: &str = "fermyon:spin/sqlite@2.0.0";

/// The resource behind `connection`.
pub struct Connection(rusqlite::Connection);

#[derive(ComponentType, Lift, Lower, Clone, Debug, PartialEq)]
#[component(variant)]
pub enum Value {
    #[component(name = "integer")]
    Integer(i64),
    #[component(name = "real")]
    Real(f64),
    #[component(name = "text")]
    Text(String),
    #[component(name = "blob")]
    Blob(Vec<u8>),
    #[component(name = "null")]
    Null,
}

#[derive(ComponentType, Lift, Lower, Clone, Debug)]
#[component(record)]
pub struct RowResult {
    values: Vec<Value>,
}

#[derive(ComponentType, Lift, Lower, Clone, Debug)]
#[component(record)]
pub struct QueryResult {
    columns: Vec<String>,
    rows: Vec<RowResult>,
}

#[derive(ComponentType, Lift, Lower, Clone, Debug)]
#[component(variant)]
pub enum SqlError {
    #[component(name = "no-such-database")]
    NoSuchDatabase,
    #[component(name = "access-denied")]
    AccessDenied,
    #[component(name = "invalid-connection")]
    InvalidConnection,
    #[component(name = "database-full")]
    DatabaseFull,
    #[component(name = "io")]
    Io(String),
}

fn io(e: rusqlite::Error) -> SqlError {
    SqlError::Io(e.to_string())
}

pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let mut sqlite = linker.instance(INTERFACE)?;
    sqlite.resource("connection", ResourceType::host::<Connection>(), |mut store, rep| {
        store.data_mut().table().delete(Resource::<Connection>::new_own(rep))?;
        Ok(())
    })?;
    sqlite.func_wrap("[static]connection.open", |mut store, (name,): (String,)| {
        let state = store.data_mut();
        // Only `default` exists, as with `sqlite_databases = ["default"]` in spin.toml.
        let opened = if name != "default" {
            Err(SqlError::NoSuchDatabase)
        } else {
            rusqlite::Connection::open(&state.sqlite_file).map_err(io).and_then(|c| {
                // Several instances share the file, as on Spin; wait for the write lock.
                c.busy_timeout(Duration::from_secs(5)).map_err(io)?;
                Ok(c)
            })
        };
        Ok((match opened {
            Ok(conn) => Ok(state.table().push(Connection(conn))?),
            Err(e) => Err(e),
        },))
    })?;
    sqlite.func_wrap(
        "[method]connection.execute",
        |mut store, (this, sql, params): (Resource<Connection>, String, Vec<Value>)| {
            let conn = &store.data_mut().table().get(&this)?.0;
            Ok((execute(conn, &sql, params),))
        },
    )?;
    Ok(())
}

fn execute(conn: &rusqlite::Connection, sql: &str, params: Vec<Value>) -> Result<QueryResult, SqlError> {
    let mut stmt = conn.prepare(sql).map_err(io)?;
    let columns: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let params: Vec<rusqlite::types::Value> = params
        .into_iter()
        .map(|v| match v {
            Value::Integer(i) => rusqlite::types::Value::Integer(i),
            Value::Real(r) => rusqlite::types::Value::Real(r),
            Value::Text(t) => rusqlite::types::Value::Text(t),
            Value::Blob(b) => rusqlite::types::Value::Blob(b),
            Value::Null => rusqlite::types::Value::Null,
        })
        .collect();
    let mut rows = stmt.query(rusqlite::params_from_iter(params)).map_err(io)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(io)? {
        let values = (0..columns.len())
            .map(|i| match row.get_ref(i) {
                Ok(rusqlite::types::ValueRef::Integer(n)) => Value::Integer(n),
                Ok(rusqlite::types::ValueRef::Real(r)) => Value::Real(r),
                Ok(rusqlite::types::ValueRef::Text(t)) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                Ok(rusqlite::types::ValueRef::Blob(b)) => Value::Blob(b.to_vec()),
                _ => Value::Null,
            })
            .collect();
        out.push(RowResult { values });
    }
    Ok(QueryResult { columns, rows: out })
}
