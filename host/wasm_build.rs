//! The one nested cargo build of every wasm component, shared by the build scripts of the host
//! (`host/build.rs`) and of the Spin tests (`tests/spin/build.rs`) through `#[path]`.
//!
//! Both must run exactly the same `cargo build` (same package set, so the same feature
//! unification): two different sets would compile the shared crates with different features,
//! and whichever build script ran second would rewrite the `.wasm` files the other's crate had
//! already embedded — `gpt-user` (which `include_bytes!` them) would then be stale and compiled
//! again by the next cargo call, e.g. `scripts/serve.sh` after the test build.

use std::path::Path;
use std::process::Command;

/// Test-only components, built beside the flow components of `spin.toml`: the trap (WASIp2), the
/// shared one (WASIp3, instance reuse), and the
/// example of an embedding application's component (`examples/orders`).
pub const TEST_PACKAGES: [&str; 3] = ["gpt-user-test-trap", "gpt-user-test-shared", "gpt-user-example-orders"];

/// Where the nested build puts its artifacts, relative to the workspace root.
pub const WASM_DIR: &str = "target/wasm/wasm32-wasip2/release";

/// Every path the nested build reads, for `cargo:rerun-if-changed`.
pub fn watch(root: &Path) {
    for dir in ["components", "wit", "schema", "tests/components", "examples"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("spin.toml").display());
    println!("cargo:rerun-if-changed={}", root.join("Cargo.lock").display());
}

/// `spin.toml`, parsed.
pub fn manifest(root: &Path) -> toml::Table {
    let text = std::fs::read_to_string(root.join("spin.toml")).expect("spin.toml is readable");
    text.parse().expect("spin.toml is valid TOML")
}

/// (component id, `source`) of every component `spin.toml` names.
pub fn flows(manifest: &toml::Table) -> Vec<(String, String)> {
    let components = manifest.get("component").and_then(|c| c.as_table()).into_iter().flatten();
    components
        .map(|(id, component)| {
            let source = component.get("source").and_then(|s| s.as_str()).unwrap_or_else(|| panic!("component {id} has no source"));
            (id.clone(), source.to_owned())
        })
        .collect()
}

/// The adapter every flow component's `gpt-user:accounts` dependency points at (its path).
pub fn adapter(manifest: &toml::Table) -> String {
    let mut adapter: Option<String> = None;
    for (id, component) in manifest.get("component").and_then(|c| c.as_table()).into_iter().flatten() {
        let dependency = component.get("dependencies").and_then(|d| d.get("gpt-user:accounts")).and_then(|d| d.get("path"));
        let path = dependency.and_then(|p| p.as_str()).unwrap_or_else(|| panic!("component {id} does not plug in the adapter"));
        assert!(adapter.as_deref().is_none_or(|a| a == path), "every flow component plugs in the same adapter");
        adapter = Some(path.to_owned());
    }
    adapter.expect("spin.toml plugs the adapter into the flow components")
}

/// `…/gpt_user_signup.wasm` is the artifact of package `gpt-user-signup`.
pub fn package_of(path: &str) -> String {
    Path::new(path).file_stem().and_then(|s| s.to_str()).unwrap_or_else(|| panic!("not a wasm path: {path}")).replace('_', "-")
}

/// Builds every flow component, the adapter and the test components (release, wasm32-wasip2,
/// own target dir `target/wasm`, so it never waits on the outer build's lock).
pub fn build_all(root: &Path, manifest: &toml::Table) {
    let flows = flows(manifest);
    let adapter = adapter(manifest);
    let packages = flows.iter().map(|(_, source)| source.as_str()).chain([adapter.as_str()]).map(package_of);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir"]).arg(root.join("target/wasm"));
    for p in packages.chain(TEST_PACKAGES.map(String::from)) {
        cmd.args(["-p", &p]);
    }
    // The outer build's settings (profile, target, flags, jobserver) are for the host, not for
    // the guests; leaking them would build the guests wrongly or rebuild them every time.
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_") && key != "CARGO_HOME" || ["RUSTFLAGS", "RUSTC_WRAPPER", "RUSTC", "RUSTDOC"].contains(&key.as_str()) {
            cmd.env_remove(key);
        }
    }
    let status = cmd.status().expect("cargo can be run to build the wasm components");
    assert!(
        status.success(),
        "building the wasm components failed (is the wasm32-wasip2 target installed? `rustup target add wasm32-wasip2`)"
    );
}
