//! Spin 4.1's platform world as listed in `tests/spin/spin-platform-imports.txt`, and the check a
//! component must pass to run there: every import listed (0.x patch versions match within their
//! minor, as wasmtime's semver linking does), and exactly one HTTP handler Spin accepts among its
//! exports. Other exports are allowed: Spin's HTTP trigger picks the handler by name
//! (`HandlerType::from_instance_pre` looks each known handler up and requires exactly one) and
//! never looks at the rest — our auth component also exports `gpt-user:accounts/auth`.

use std::path::PathBuf;

use anyhow::{Context, bail};

/// The list, kept in this crate so CI reads nothing from outside the repository. It was resolved
/// from Spin 4.1's `spin:up/platform@4.1.0` world; refresh it when the targeted Spin changes.
pub fn list_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("spin-platform-imports.txt")
}

/// What Spin provides and which HTTP exports it accepts.
#[derive(Debug, Clone)]
pub struct Platform {
    pub imports: Vec<String>,
    /// Handler patterns from the file's header; `@0.2.x` stands for any patch of 0.2.
    pub handlers: Vec<String>,
}

impl Platform {
    pub fn load() -> anyhow::Result<Self> {
        let path = list_path();
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!("cannot read Spin's platform import list at {} (it belongs to this crate)", path.display())
        })?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let imports: Vec<String> =
            text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect();
        let header = text.lines().find_map(|l| l.strip_prefix("# HTTP exports")).context("the list has no `# HTTP exports` line")?;
        let (_, names) = header.split_once(':').context("the HTTP exports line has no ':'")?;
        let handlers: Vec<String> = names
            .split(", ")
            .filter_map(|item| item.split_whitespace().next())
            .map(|name| name.trim_end_matches([',', ';']).to_owned())
            .filter(|name| name.contains(':') && name.contains('/'))
            .collect();
        if imports.is_empty() || handlers.is_empty() {
            bail!("the platform list is empty or unreadable");
        }
        Ok(Self { imports, handlers })
    }

    pub fn allows_import(&self, name: &str) -> bool {
        self.imports.iter().any(|listed| same_interface(name, listed))
    }

    pub fn is_handler(&self, name: &str) -> bool {
        self.handlers.iter().any(|pattern| match pattern.strip_suffix("x").filter(|p| p.ends_with(".")) {
            Some(prefix) => name.strip_prefix(prefix).is_some_and(|patch| !patch.is_empty() && patch.bytes().all(|b| b.is_ascii_digit())),
            None => name == pattern,
        })
    }

    /// Every reason the component with these imports and exports would not run on Spin.
    pub fn check(&self, imports: &[String], exports: &[String]) -> Result<(), Vec<String>> {
        let mut problems: Vec<String> =
            imports.iter().filter(|i| !self.allows_import(i)).map(|i| format!("import `{i}` is not provided by Spin")).collect();
        let handlers: Vec<&String> = exports.iter().filter(|e| self.is_handler(e)).collect();
        if handlers.len() != 1 {
            problems.push(format!("exports {exports:?}: want exactly one HTTP handler Spin accepts"));
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }
}

/// `ns:pkg/iface@0.2.N` matches a listed `@0.2.M` (same 0.x minor, no pre-release); otherwise the
/// names must be equal.
fn same_interface(name: &str, listed: &str) -> bool {
    if name == listed {
        return true;
    }
    let (Some((a, va)), Some((b, vb))) = (name.split_once('@'), listed.split_once('@')) else { return false };
    let minor = |v: &str| -> Option<(u64, u64)> {
        let mut parts = v.split('.');
        let (major, minor, patch) = (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?);
        (major == 0 && parts.next().is_none() && patch.parse::<u64>().is_ok()).then_some((major, minor))
    };
    a == b && minor(va).is_some() && minor(va) == minor(vb)
}

/// The top-level import and export names of a component binary.
pub fn component_interface(bytes: &[u8]) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    use wasmparser::{Parser, Payload};
    let (mut imports, mut exports, mut depth) = (Vec::new(), Vec::new(), 0usize);
    for payload in Parser::new(0).parse_all(bytes) {
        match payload? {
            // Nested modules and components bring their own sections; only depth 0 is the app.
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    imports.push(import?.name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    exports.push(export?.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok((imports, exports))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_version_matches_within_its_zero_minor_only() {
        assert!(same_interface("wasi:io/streams@0.2.12", "wasi:io/streams@0.2.6"));
        assert!(!same_interface("wasi:io/streams@0.3.0", "wasi:io/streams@0.2.6"));
        assert!(!same_interface("wasi:config/store@0.2.0-draft-2024-09-27", "wasi:config/store@0.2.0"));
        assert!(same_interface("spin:sqlite/sqlite@3.1.0", "spin:sqlite/sqlite@3.1.0"));
        assert!(!same_interface("spin:sqlite/sqlite@3.0.0", "spin:sqlite/sqlite@3.1.0"));
    }

    #[test]
    fn handler_patterns_accept_any_patch_of_their_minor() {
        let p = Platform::parse("# HTTP exports x: wasi:http/incoming-handler@0.2.x (any), fermyon:spin/inbound-http (exactly one)\na:b/c@1.0.0\n").unwrap();
        assert!(p.is_handler("wasi:http/incoming-handler@0.2.12"));
        assert!(p.is_handler("fermyon:spin/inbound-http"));
        assert!(!p.is_handler("wasi:http/incoming-handler@0.3.0"));
    }
}
