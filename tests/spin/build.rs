//! Builds every flow component `spin.toml` names, the Spin adapter its dependencies point at, and
//! the example of an embedding application's component (`examples/orders`), for wasm32-wasip2
//! with a nested cargo (own target dir `target/wasm`, the one `spin.toml` points at), and exposes
//! their paths as constants in `artifacts.rs`. The nested build is `host/wasm_build.rs`, the same
//! one the host's build script runs (one package set, so neither rewrites what the other built).

use std::path::{Path, PathBuf};

#[path = "../../host/wasm_build.rs"]
mod wasm_build;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().and_then(|p| p.parent()).unwrap().to_path_buf();
    wasm_build::watch(&root);
    let manifest = wasm_build::manifest(&root);
    wasm_build::build_all(&root, &manifest);
    let flows = wasm_build::flows(&manifest);
    let adapter = wasm_build::adapter(&manifest);
    let example = Path::new(wasm_build::WASM_DIR).join("gpt_user_example_orders.wasm");

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
        example = root.join(example).display().to_string(),
    );
    std::fs::write(PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("artifacts.rs"), generated).unwrap();
}
