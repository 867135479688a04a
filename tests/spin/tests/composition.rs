//! The app Spin would run: every flow component of `spin.toml` with the adapter plugged in (as
//! `wac plug` and Spin's dependency composition do) must import only Spin's platform world and
//! export exactly one HTTP handler Spin accepts. So must an embedding application's component
//! (`examples/orders`) with our auth component plugged into its `auth` import and the adapter
//! plugged into what that brings in.

use gpt_user_spin_tests::artifacts::{ADAPTER_WASM, EXAMPLE_ORDERS_WASM, FLOW_COMPONENTS, SIGNUP_WASM};
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
fn the_example_with_our_auth_component_and_the_adapter_imports_only_what_spin_provides() {
    let platform = Platform::load().unwrap();
    let (_, auth) = FLOW_COMPONENTS.iter().find(|(id, _)| *id == "auth").expect("spin.toml has the auth component");
    // `wac plug --plug gpt_user_auth.wasm gpt_user_example_orders.wasm -o orders.wasm`
    let with_auth = plug_into(&read(EXAMPLE_ORDERS_WASM), &read(auth)).expect("our auth component plugs into the example's auth import");
    let (imports, exports) = component_interface(&with_auth).unwrap();
    assert!(!imports.contains(&"gpt-user:accounts/auth@0.1.0".to_owned()), "auth is plugged: {imports:?}");
    assert!(imports.contains(&"gpt-user:accounts/store@0.1.0".to_owned()), "what auth needs is now imported: {imports:?}");
    assert_eq!(exports, ["wasi:http/incoming-handler@0.2.12"], "only the example's own handler, not our auth component's");
    // `wac plug --plug gpt_user_spin_adapter.wasm orders.wasm -o orders-spin.wasm`
    let composed = plug_into(&with_auth, &read(ADAPTER_WASM)).expect("the adapter plugs into what auth imports");
    let (imports, exports) = component_interface(&composed).unwrap();
    assert!(!imports.iter().any(|i| i.starts_with("gpt-user:")), "our interfaces are all plugged: {imports:?}");
    if let Err(problems) = platform.check(&imports, &exports) {
        panic!("the example composed would not run on Spin 4.1:\n{}", problems.join("\n"));
    }
}

#[test]
fn the_example_without_our_auth_component_is_rejected() {
    let platform = Platform::load().unwrap();
    let (imports, exports) = component_interface(&read(EXAMPLE_ORDERS_WASM)).unwrap();
    assert!(imports.iter().all(|i| !i.starts_with("gpt-user:") || i == "gpt-user:accounts/auth@0.1.0"), "it sees only auth: {imports:?}");
    let problems = platform.check(&imports, &exports).expect_err("auth is not part of Spin");
    assert!(problems.iter().any(|p| p.contains("gpt-user:accounts/auth@0.1.0")), "{problems:?}");
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
    let with_auth = vec![handler[0].clone(), "gpt-user:accounts/auth@0.1.0".to_owned()];
    assert!(platform.check(&fine, &with_auth).is_ok(), "an export besides the one handler is Spin's to ignore");
}
