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

/// Paths of the wasm components built by `build.rs`.
pub mod artifacts {
    include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
}
