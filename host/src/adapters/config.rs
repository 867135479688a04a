//! `wasi:config/store@0.2.0-draft-2024-09-27` — the version Spin provides, so components link on
//! both runtimes (wasmtime-wasi-config implements a different draft). Values come from
//! `spin.toml`'s `[variables]` defaults overlaid with the host configuration.

use crate::bindings::config::{self, Error};
use crate::runtime::HostState;

impl config::Host for HostState {
    async fn get(&mut self, key: String) -> Result<Option<String>, Error> {
        Ok(self.shared.variables.get(&key).cloned())
    }

    async fn get_all(&mut self) -> Result<Vec<(String, String)>, Error> {
        Ok(self.shared.variables.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}
