//! Builds the flow components named in `spin.toml` (nested cargo, own target dir `target/wasm`,
//! so it never waits on the outer build's lock) and embeds them: `gpt-user serve` then needs
//! nothing but its own binary. Also builds the test-only components under `tests/components`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Test-only components, built beside the flow components of `spin.toml`: the trap, and the
/// example of an embedding application's component (`examples/orders`).
const TEST_PACKAGES: [&str; 2] = ["gpt-user-test-trap", "gpt-user-example-orders"];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    for dir in ["components", "wit", "schema", "tests/components", "examples"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("spin.toml").display());
    println!("cargo:rerun-if-changed={}", root.join("Cargo.lock").display());

    let manifest = std::fs::read_to_string(root.join("spin.toml")).expect("spin.toml is readable");
    let manifest: toml::Table = manifest.parse().expect("spin.toml is valid TOML");
    build_components(&root, &flow_packages(&manifest));

    let mut arms = String::new();
    for (id, component) in manifest.get("component").and_then(|c| c.as_table()).into_iter().flatten() {
        let source = component.get("source").and_then(|s| s.as_str()).unwrap_or_else(|| panic!("component {id} has no source"));
        let path = root.join(source);
        assert!(path.exists(), "component {id}: {} was not built", path.display());
        arms.push_str(&format!("        {source:?} => Some(include_bytes!({:?})),\n", path.display().to_string()));
    }
    let wasm_dir = root.join("target/wasm/wasm32-wasip2/release");
    let generated = format!(
        "/// `spin.toml` as it was at build time.\n\
pub const SPIN_TOML: &str = include_str!({spin:?});\n\
/// Where the wasm artifacts were built (for tests and tools).\n\
pub const WASM_DIR: &str = {wasm_dir:?};\n\
/// The embedded component for a `source` path of `spin.toml`.\n\
pub fn component(source: &str) -> Option<&'static [u8]> {{\n    match source {{\n{arms}        _ => None,\n    }}\n}}\n",
        spin = root.join("spin.toml").display().to_string(),
        wasm_dir = wasm_dir.display().to_string(),
    );
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("artifacts.rs");
    std::fs::write(out, generated).unwrap();
}

/// The package of every component `spin.toml` names: its `source` is
/// `…/<crate name with underscores>.wasm`, the crate name of package `gpt-user-x` being `gpt_user_x`.
fn flow_packages(manifest: &toml::Table) -> Vec<String> {
    let components = manifest.get("component").and_then(|c| c.as_table()).into_iter().flatten();
    components
        .map(|(id, component)| {
            let source = component.get("source").and_then(|s| s.as_str()).unwrap_or_else(|| panic!("component {id} has no source"));
            let stem = Path::new(source).file_stem().and_then(|s| s.to_str()).unwrap_or_else(|| panic!("component {id}: bad source {source}"));
            stem.replace('_', "-")
        })
        .collect()
}

fn build_components(root: &Path, flow_packages: &[String]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir", "target/wasm"]);
    for p in flow_packages.iter().map(String::as_str).chain(TEST_PACKAGES) {
        cmd.args(["-p", p]);
    }
    // The outer build's settings are for the host, not for the guest.
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_") && key != "CARGO_HOME" || key == "RUSTFLAGS" || key == "RUSTC_WRAPPER" || key == "RUSTC" || key == "RUSTDOC" {
            cmd.env_remove(key);
        }
    }
    let status = cmd.status().expect("cargo can be run to build the wasm components");
    assert!(status.success(), "building the wasm components failed (is the wasm32-wasip2 target installed? `rustup target add wasm32-wasip2`)");
}
