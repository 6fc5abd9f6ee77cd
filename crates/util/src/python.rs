//! The project's Python: the interpreter with torch, safetensors and pip that
//! `cargo xtask setup` installs into the workspace's `.venv`.
//!
//! One rule, used by every entry point (the `adn` binary, the tests, xtask):
//!
//! 1. `$ADN_PYTHON`, when set: the user's choice wins;
//! 2. `.venv/bin/python` of the workspace holding the current folder (the nearest folder at
//!    or above it whose `Cargo.toml` declares `[workspace]`);
//! 3. `.venv/bin/python` of the workspace this binary was built in, so an installed `adn`
//!    run from elsewhere still finds the venv it was built beside;
//! 4. `python3` on the `PATH`.

use std::fs;
use std::path::{Path, PathBuf};

/// The environment variable that names the project's Python explicitly.
pub const PYTHON_ENV: &str = "ADN_PYTHON";

/// The project's Python by the rule above.
pub fn project_python() -> PathBuf {
    if let Some(p) = std::env::var_os(PYTHON_ENV) {
        return PathBuf::from(p);
    }
    let candidates = [workspace_root(), Some(built_workspace())];
    candidates
        .into_iter()
        .flatten()
        .map(|root| venv_python(&root))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("python3"))
}

/// `<root>/.venv/bin/python`.
pub fn venv_python(root: &Path) -> PathBuf {
    root.join(".venv/bin/python")
}

/// The nearest folder at or above the current one whose `Cargo.toml` declares a workspace.
pub fn workspace_root() -> Option<PathBuf> {
    let mut dir = std::env::current_dir().ok()?;
    loop {
        let toml = dir.join("Cargo.toml");
        if fs::read_to_string(&toml).is_ok_and(|t| t.contains("[workspace]")) {
            return Some(dir);
        }
        if !dir.pop() {
            return None;
        }
    }
}

/// The workspace this crate was compiled in.
fn built_workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_is_found_from_inside_it() {
        let root = workspace_root().expect("tests run inside the workspace");
        assert!(root.join("crates/util/Cargo.toml").is_file());
        assert_eq!(
            root.canonicalize().unwrap(),
            built_workspace().canonicalize().unwrap()
        );
    }
}
