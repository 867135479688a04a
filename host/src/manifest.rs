//! The parts of `spin.toml` our host uses: HTTP routes, component sources and variable defaults.
//! Spin-only keys (`dependencies`, `sqlite_databases`, `build`, ...) are ignored.

use std::collections::HashMap;

use anyhow::Context as _;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `/exact` or `/prefix` for a Spin wildcard route `/prefix/...`.
    pub path: String,
    pub wildcard: bool,
    pub component: String,
}

impl Route {
    pub fn matches(&self, path: &str) -> bool {
        if self.wildcard {
            path == self.path || path.strip_prefix(&self.path).is_some_and(|rest| rest.starts_with('/') || self.path.ends_with('/'))
        } else {
            path == self.path
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Manifest {
    /// Most specific first: exact routes, then longer prefixes.
    pub routes: Vec<Route>,
    /// Component id → `source` path.
    pub sources: HashMap<String, String>,
    /// `[variables]` defaults.
    pub variables: HashMap<String, String>,
}

impl Manifest {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let doc: toml::Table = text.parse().context("spin.toml is not valid TOML")?;
        let mut manifest = Manifest::default();
        let triggers = doc.get("trigger").and_then(|t| t.get("http")).and_then(|h| h.as_array()).cloned().unwrap_or_default();
        for t in triggers {
            let route = t.get("route").and_then(|r| r.as_str()).context("an http trigger has no route")?;
            let component = t.get("component").and_then(|c| c.as_str()).context("an http trigger names no component")?;
            let (path, wildcard) = match route.strip_suffix("/...") {
                Some(prefix) => (if prefix.is_empty() { "/".to_owned() } else { prefix.to_owned() }, true),
                None => (route.to_owned(), false),
            };
            manifest.routes.push(Route { path, wildcard, component: component.to_owned() });
        }
        manifest.routes.sort_by_key(|r| (r.wildcard, std::cmp::Reverse(r.path.len())));
        for (id, component) in doc.get("component").and_then(|c| c.as_table()).into_iter().flatten() {
            let source = component.get("source").and_then(|s| s.as_str()).with_context(|| format!("component {id} has no source"))?;
            manifest.sources.insert(id.clone(), source.to_owned());
        }
        for (name, var) in doc.get("variables").and_then(|v| v.as_table()).into_iter().flatten() {
            if let Some(default) = var.get("default").and_then(|d| d.as_str()) {
                manifest.variables.insert(name.clone(), default.to_owned());
            }
        }
        Ok(manifest)
    }

    pub fn route(&self, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_manifest_routes_every_signup_path() {
        let m = Manifest::parse(crate::artifacts::SPIN_TOML).unwrap();
        for path in ["/api/signup/init", "/api/signup/verify", "/signup/verify", "/openapi.json", "/healthz", "/privacy"] {
            assert_eq!(m.route(path).map(|r| r.component.as_str()), Some("signup"), "{path}");
        }
        assert!(m.route("/api/signupx").is_none());
        assert!(m.route("/nothing").is_none());
        for source in m.sources.values() {
            assert!(crate::artifacts::component(source).is_some(), "{source} is embedded");
        }
    }
}
