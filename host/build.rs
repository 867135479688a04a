//! Builds the flow components named in `spin.toml` with the test and Spin-only components
//! (`wasm_build.rs`, the same nested build as `tests/spin/build.rs`) and embeds the flow
//! components: `gpt-user serve` then needs nothing but its own binary.

use std::path::PathBuf;

#[path = "wasm_build.rs"]
mod wasm_build;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    wasm_build::watch(&root);
    let manifest = wasm_build::manifest(&root);
    wasm_build::build_all(&root, &manifest);

    let mut arms = String::new();
    for (id, source) in wasm_build::flows(&manifest) {
        let path = root.join(&source);
        assert!(path.exists(), "component {id}: {} was not built", path.display());
        arms.push_str(&format!("        {source:?} => Some(include_bytes!({:?})),\n", path.display().to_string()));
    }
    let wasm_dir = root.join(wasm_build::WASM_DIR);
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
