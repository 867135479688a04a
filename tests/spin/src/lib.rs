//! Spin-side checks that need no Spin: what the composed app imports and exports against Spin
//! 4.1's platform world ([`platform`]), composition as `wac plug` does it ([`compose`]), the
//! adapter executed under wasmtime with a harness standing in for Spin's SQLite ([`harness`]),
//! and the composed app served over `wasi:http` in that harness ([`served`]).

pub mod compose;
pub mod harness;
pub mod platform;
pub mod served;
pub mod spin_sqlite;
pub mod spin_variables;

/// A fresh SQLite file `dir/name.db` for one test (tests run in parallel, each on its own file):
/// the directory made, the file and its WAL, shared-memory and journal files of an earlier run gone.
pub fn fresh_db_file(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let file = dir.join(format!("{name}.db"));
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    file
}

/// Paths of the wasm components built by `build.rs`.
pub mod artifacts {
    include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
}

/// `config` with wasmtime's compiled-code cache in `target/wasm/compiled` (as the host's tests
/// share it): the test processes compile each composed app once per build, not once each.
pub fn with_shared_compile_cache(config: &mut wasmtime::Config) -> anyhow::Result<&mut wasmtime::Config> {
    let mut cache = wasmtime::CacheConfig::new();
    cache.with_directory(std::path::Path::new(artifacts::WORKSPACE_ROOT).join("target/wasm/compiled"));
    Ok(config.cache(Some(wasmtime::Cache::new(cache).map_err(|e| anyhow::anyhow!("compile cache: {e}"))?)))
}
