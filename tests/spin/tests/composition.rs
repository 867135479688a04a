//! The app Spin would run: every flow component of `spin.toml` with the adapter plugged in (as
//! `wac plug` and Spin's dependency composition do) must import only Spin's platform world and
//! export exactly one HTTP handler Spin accepts.

use gpt_user_spin_tests::artifacts::{ADAPTER_WASM, FLOW_COMPONENTS, SIGNUP_WASM};
use gpt_user_spin_tests::compose::plug_into;
use gpt_user_spin_tests::platform::{Platform, component_interface};

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e} (built by tests/spin/build.rs)"))
}

#[test]
fn every_composed_flow_component_imports_only_what_spin_provides_and_exports_one_http_handler() {
    let platform = Platform::load().unwrap();
    assert!(!FLOW_COMPONENTS.is_empty());
    for (id, wasm) in FLOW_COMPONENTS {
        let composed = plug_into(&read(wasm), &read(ADAPTER_WASM)).unwrap_or_else(|e| panic!("the adapter plugs into {id}: {e:#}"));
        let (imports, exports) = component_interface(&composed).unwrap();
        assert!(!imports.iter().any(|i| i.starts_with("gpt-user:")), "{id}: our interfaces are all plugged: {imports:?}");
        if let Err(problems) = platform.check(&imports, &exports) {
            panic!("{id} composed would not run on Spin 4.1:\n{}", problems.join("\n"));
        }
    }
}

#[test]
fn the_adapter_alone_imports_only_what_spin_provides() {
    let platform = Platform::load().unwrap();
    let (imports, _) = component_interface(&read(ADAPTER_WASM)).unwrap();
    let missing: Vec<&String> = imports.iter().filter(|i| !platform.allows_import(i)).collect();
    assert!(missing.is_empty(), "the adapter imports what Spin lacks: {missing:?}");
}

#[test]
fn the_adapter_exports_every_interface_a_flow_component_imports_from_our_package() {
    let (_, adapter_exports) = component_interface(&read(ADAPTER_WASM)).unwrap();
    for (id, wasm) in FLOW_COMPONENTS {
        let (imports, _) = component_interface(&read(wasm)).unwrap();
        for import in imports.iter().filter(|i| i.starts_with("gpt-user:accounts/")) {
            assert!(adapter_exports.contains(import), "{id} imports {import}, which the adapter does not export: {adapter_exports:?}");
        }
    }
}

#[test]
fn the_sign_up_component_without_the_adapter_is_rejected() {
    let platform = Platform::load().unwrap();
    let (imports, exports) = component_interface(&read(SIGNUP_WASM)).unwrap();
    let problems = platform.check(&imports, &exports).expect_err("our own interfaces are not part of Spin");
    assert!(problems.iter().any(|p| p.contains("gpt-user:accounts/store@0.1.0")), "{problems:?}");
}

#[test]
fn an_unlisted_import_or_a_missing_handler_is_rejected() {
    let platform = Platform::load().unwrap();
    let handler = vec!["wasi:http/incoming-handler@0.2.12".to_owned()];
    let fine = vec!["wasi:io/streams@0.2.12".to_owned(), "fermyon:spin/sqlite@2.0.0".to_owned()];
    assert!(platform.check(&fine, &handler).is_ok());
    let unlisted = vec!["wasi:io/streams@0.2.12".to_owned(), "wasi:nn/inference@0.2.0".to_owned()];
    assert!(platform.check(&unlisted, &handler).is_err());
    let wrong_minor = vec!["wasi:io/streams@0.3.0".to_owned()];
    assert!(platform.check(&wrong_minor, &handler).is_err());
    assert!(platform.check(&fine, &[]).is_err(), "no handler");
    assert!(platform.check(&fine, &["wasi:cli/run@0.2.0".to_owned()]).is_err(), "not an HTTP trigger export");
    let two = vec![handler[0].clone(), "wasi:http/handler@0.3.0".to_owned()];
    assert!(platform.check(&fine, &two).is_err(), "two handlers");
}
