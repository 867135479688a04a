//! Spin variables as the adapter reads them: `wasi:config/store@0.2.0-draft-2024-09-27`, the
//! version Spin provides (wasmtime-wasi-config 48 implements a different draft, `0.2.0-rc.1`).

use std::collections::HashMap;

use wasmtime::component::{ComponentType, Lift, Linker, Lower};

use crate::harness::HostState;

pub const INTERFACE: &str = "wasi:config/store@0.2.0-draft-2024-09-27";

#[derive(ComponentType, Lift, Lower, Clone, Debug)]
#[component(variant)]
pub enum ConfigError {
    #[component(name = "upstream")]
    Upstream(String),
    #[component(name = "io")]
    Io(String),
}

pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let mut config = linker.instance(INTERFACE)?;
    config.func_wrap("get", |store, (key,): (String,)| {
        let vars: &HashMap<String, String> = &store.data().vars;
        Ok((Ok::<_, ConfigError>(vars.get(&key).cloned()),))
    })?;
    config.func_wrap("get-all", |store, (): ()| {
        let vars: Vec<(String, String)> = store.data().vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        Ok((Ok::<_, ConfigError>(vars),))
    })?;
    Ok(())
}
