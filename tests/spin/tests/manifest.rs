//! `spin.toml` parses and agrees with what the build produces: routes lead to components whose
//! `source` exists, the dependency key covers every import of our package and points at the
//! adapter, and every variable a component uses is declared at the application level.

use std::path::Path;

use gpt_user_spin_tests::artifacts::{ADAPTER_WASM, FLOW_COMPONENTS, SIGNUP_WASM, WORKSPACE_ROOT};
use gpt_user_spin_tests::platform::component_interface;
use toml::{Table, Value};

fn manifest() -> Table {
    let text = std::fs::read_to_string(Path::new(WORKSPACE_ROOT).join("spin.toml")).unwrap();
    text.parse().expect("spin.toml is valid TOML")
}

fn signup(m: &Table) -> &Table {
    component(m, "signup")
}

fn component<'m>(m: &'m Table, id: &str) -> &'m Table {
    m["component"][id].as_table().unwrap_or_else(|| panic!("[component.{id}]"))
}

fn same_file(relative: &str, built: &str) -> bool {
    Path::new(WORKSPACE_ROOT).join(relative).canonicalize().ok() == Path::new(built).canonicalize().ok()
}

#[test]
fn spin_toml_is_a_version_2_manifest_whose_routes_lead_to_built_components() {
    let m = manifest();
    assert_eq!(m["spin_manifest_version"].as_integer(), Some(2));
    let components = m["component"].as_table().unwrap();
    let routes = m["trigger"]["http"].as_array().expect("[[trigger.http]]");
    let routed: Vec<(&str, &str)> =
        routes.iter().map(|r| (r["route"].as_str().unwrap(), r["component"].as_str().unwrap())).collect();
    for (_, id) in &routed {
        let source = components[*id]["source"].as_str().unwrap();
        assert!(Path::new(WORKSPACE_ROOT).join(source).is_file(), "{id}: {source} is not built");
    }
    assert!(same_file(signup(&m)["source"].as_str().unwrap(), SIGNUP_WASM));
}

#[test]
fn the_dependency_covers_every_import_of_our_package_with_the_built_adapter() {
    let m = manifest();
    for (id, wasm) in FLOW_COMPONENTS {
        let c = component(&m, id);
        let deps = c["dependencies"].as_table().unwrap_or_else(|| panic!("[component.{id}.dependencies]"));
        let (imports, _) = component_interface(&std::fs::read(wasm).unwrap()).unwrap();
        let ours: Vec<&String> = imports.iter().filter(|i| i.starts_with("gpt-user:")).collect();
        assert!(!ours.is_empty(), "{id}");
        // Spin's rule (spin-compose `matches_import`): a key `ns:pkg` matches every `ns:pkg/iface@v`
        // import, `ns:pkg/iface` only that interface. Each import must be matched by exactly one key.
        let matches = |key: &str, import: &str| match key.split_once('/') {
            Some(_) => import.split('@').next() == Some(key) || import == key,
            None => import.split('/').next() == Some(key),
        };
        for import in &ours {
            let keys: Vec<&String> = deps.keys().filter(|k| matches(k, import)).collect();
            assert_eq!(keys.len(), 1, "{id}: {import} must be matched by exactly one dependency key: {keys:?}");
        }
        for (key, dep) in deps {
            assert!(ours.iter().any(|i| matches(key, i)), "{id}: Spin rejects key {key}: it matches no import");
            assert!(same_file(dep["path"].as_str().unwrap(), ADAPTER_WASM), "{id}: {key} must point at the built adapter");
        }
        assert_eq!(c["dependencies_inherit_configuration"].as_bool(), Some(true), "{id}");
        assert_eq!(c["sqlite_databases"].as_array().map(Vec::as_slice), Some(&[Value::from("default")][..]), "{id}");
        let hosts: Vec<&str> = c["allowed_outbound_hosts"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert!(hosts.contains(&"tcp://{{ smtp_address }}"), "{id}: SMTP over TCP must be allowed: {hosts:?}");
    }
}

#[test]
fn every_variable_a_component_reads_is_declared_by_the_application() {
    let m = manifest();
    let declared = m["variables"].as_table().unwrap();
    for (id, _) in FLOW_COMPONENTS {
        let used = component(&m, id)["variables"].as_table().unwrap_or_else(|| panic!("[component.{id}.variables]"));
        // The adapter reads these through the flow component's configuration (inherited).
        for key in ["smtp_address", "mail_from", "base_url"] {
            assert!(used.contains_key(key), "[component.{id}.variables] lacks {key}");
        }
        for (key, value) in used {
            let value = value.as_str().unwrap();
            let var = value.trim().trim_start_matches("{{").trim_end_matches("}}").trim();
            assert!(declared.contains_key(var), "{id}: {key} = {value:?} names an undeclared variable");
        }
    }
}

#[test]
fn dev_mode_is_a_variable_that_is_off_unless_set() {
    let m = manifest();
    assert_eq!(m["variables"]["dev"]["default"].as_str(), Some("false"), "[variables] dev must default to \"false\"");
    for (id, _) in FLOW_COMPONENTS {
        assert_eq!(component(&m, id)["variables"]["dev"].as_str(), Some("{{ dev }}"), "[component.{id}.variables] must map dev");
    }
}

#[test]
fn spin_build_builds_each_flow_component_and_the_adapter() {
    let m = manifest();
    for (id, wasm) in FLOW_COMPONENTS {
        let command = component(&m, id)["build"]["command"].as_str().unwrap();
        let package = Path::new(wasm).file_stem().unwrap().to_str().unwrap().replace('_', "-");
        for package in [format!("-p {package}"), "-p gpt-user-spin-adapter".into()] {
            assert!(command.contains(&package), "{id}: {command:?} lacks {package}");
        }
        assert!(command.contains("--target wasm32-wasip2") && command.contains("--target-dir target/wasm"), "{id}");
    }
}

/// Spin's HTTP router: an exact route wins, else the longest `prefix/...` wildcard.
fn spin_route<'m>(routed: &[(&str, &'m str)], path: &str) -> Option<&'m str> {
    if let Some((_, id)) = routed.iter().find(|(route, _)| *route == path) {
        return Some(id);
    }
    routed
        .iter()
        .filter_map(|(route, id)| route.strip_suffix("/...").map(|prefix| (prefix, *id)))
        .filter(|(prefix, _)| path == *prefix || path.starts_with(&format!("{prefix}/")))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, id)| id)
}

#[test]
fn every_route_of_a_flow_components_table_reaches_that_component() {
    use gpt_user_core::api::{AUTH_ROUTES, EMAIL_CHANGE_ROUTES, MCP_ROUTES, OAUTH_ROUTES, PROFILE_ROUTES, Route, SIGNUP_ROUTES};
    let tables: [(&str, &[Route]); 6] = [
        ("signup", SIGNUP_ROUTES),
        ("profile", PROFILE_ROUTES),
        ("email-change", EMAIL_CHANGE_ROUTES),
        ("auth", AUTH_ROUTES),
        ("mcp", MCP_ROUTES),
        ("oauth", OAUTH_ROUTES),
    ];
    assert_eq!(tables.len(), FLOW_COMPONENTS.len(), "a route table per component of spin.toml");
    let m = manifest();
    let routed: Vec<(&str, &str)> = m["trigger"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["route"].as_str().unwrap(), r["component"].as_str().unwrap()))
        .collect();
    for (id, routes) in tables {
        for route in routes {
            assert_eq!(spin_route(&routed, route.path), Some(id), "{} {} must reach component {id}", route.method, route.path);
        }
    }
}
