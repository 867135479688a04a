//! Builds every flow component `spin.toml` names, the Spin adapter its dependencies point at, and
//! the example of an embedding application's component (`examples/orders`), for wasm32-wasip2
//! with a nested cargo (own target dir `target/wasm`, the one `spin.toml` points at), and exposes
//! their paths as constants in `artifacts.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the nested build puts `examples/orders` (package `gpt-user-example-orders`).
const EXAMPLE: &str = "target/wasm/wasm32-wasip2/release/gpt_user_example_orders.wasm";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().and_then(|p| p.parent()).unwrap().to_path_buf();
    for dir in ["components", "wit", "schema", "examples"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("spin.toml").display());
    println!("cargo:rerun-if-changed={}", root.join("Cargo.lock").display());

    let manifest: toml::Table = std::fs::read_to_string(root.join("spin.toml")).unwrap().parse().expect("spin.toml is valid TOML");
    let mut flows: Vec<(String, String)> = Vec::new();
    let mut adapter = None;
    for (id, component) in manifest.get("component").and_then(|c| c.as_table()).into_iter().flatten() {
        let source = component.get("source").and_then(|s| s.as_str()).unwrap_or_else(|| panic!("component {id} has no source"));
        flows.push((id.clone(), source.to_owned()));
        let dependency = component.get("dependencies").and_then(|d| d.get("gpt-user:accounts")).and_then(|d| d.get("path"));
        if let Some(path) = dependency.and_then(|p| p.as_str()) {
            assert!(adapter.as_ref().is_none_or(|a| a == path), "every flow component plugs in the same adapter");
            adapter = Some(path.to_owned());
        }
    }
    let adapter = adapter.expect("spin.toml plugs the adapter into the flow components");
    let mut packages: Vec<String> = flows.iter().map(|(_, source)| source.as_str()).chain([adapter.as_str()]).map(package_of).collect();
    packages.push(package_of(EXAMPLE));

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root).args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir"]).arg(root.join("target/wasm"));
    for p in &packages {
        cmd.args(["-p", p]);
    }
    // The outer build's settings (profile, target, flags, jobserver) are for this test crate, not
    // for the guests; leaking them would build the guests wrongly or rebuild them every time.
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_") && key != "CARGO_HOME" || ["RUSTFLAGS", "RUSTC_WRAPPER", "RUSTC", "RUSTDOC"].contains(&key.as_str()) {
            cmd.env_remove(key);
        }
    }
    let status = cmd.status().expect("cargo can be run to build the wasm components");
    assert!(status.success(), "building the wasm components failed (is the wasm32-wasip2 target installed?)");

    let flow_list: String =
        flows.iter().map(|(id, source)| format!("    ({id:?}, {:?}),\n", root.join(source).display().to_string())).collect();
    let signup = flows.iter().find(|(id, _)| id == "signup").map(|(_, s)| root.join(s)).expect("spin.toml has the signup component");
    let generated = format!(
        "/// The workspace root (where `spin.toml` is).\n\
pub const WORKSPACE_ROOT: &str = {root:?};\n\
/// Every flow component of `spin.toml`: (component id, built file).\n\
pub const FLOW_COMPONENTS: &[(&str, &str)] = &[\n{flow_list}];\n\
/// The sign-up flow component, as `spin.toml`'s `source` names it.\n\
pub const SIGNUP_WASM: &str = {signup:?};\n\
/// The Spin adapter component.\n\
pub const ADAPTER_WASM: &str = {adapter:?};\n\
/// The example of an embedding application's component (imports `gpt-user:accounts/auth`).\n\
pub const EXAMPLE_ORDERS_WASM: &str = {example:?};\n",
        root = root.display().to_string(),
        signup = signup.display().to_string(),
        adapter = root.join(&adapter).display().to_string(),
        example = root.join(EXAMPLE).display().to_string(),
    );
    std::fs::write(PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("artifacts.rs"), generated).unwrap();
}

/// `…/gpt_user_signup.wasm` is the artifact of package `gpt-user-signup`.
fn package_of(path: &str) -> String {
    Path::new(path).file_stem().and_then(|s| s.to_str()).unwrap_or_else(|| panic!("not a wasm path: {path}")).replace('_', "-")
}
