//! Builds the sign-up flow component and the Spin adapter for wasm32-wasip2 with a nested cargo
//! (own target dir `target/wasm`, the one `spin.toml` points at) and exposes their paths as
//! constants in `artifacts.rs`.

use std::path::PathBuf;
use std::process::Command;

const PACKAGES: [&str; 2] = ["gpt-user-signup", "gpt-user-spin-adapter"];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().and_then(|p| p.parent()).unwrap().to_path_buf();
    for dir in ["components", "wit", "schema"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("Cargo.lock").display());

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root).args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir"]).arg(root.join("target/wasm"));
    for p in PACKAGES {
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

    let wasm_dir = root.join("target/wasm/wasm32-wasip2/release");
    let generated = format!(
        "/// The workspace root (where `spin.toml` is).\n\
pub const WORKSPACE_ROOT: &str = {root:?};\n\
/// The sign-up flow component, as `spin.toml`'s `source` names it.\n\
pub const SIGNUP_WASM: &str = {signup:?};\n\
/// The Spin adapter component.\n\
pub const ADAPTER_WASM: &str = {adapter:?};\n",
        root = root.display().to_string(),
        signup = wasm_dir.join("gpt_user_signup.wasm").display().to_string(),
        adapter = wasm_dir.join("gpt_user_spin_adapter.wasm").display().to_string(),
    );
    std::fs::write(PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("artifacts.rs"), generated).unwrap();
}
