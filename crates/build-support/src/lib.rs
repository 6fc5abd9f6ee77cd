//! Build-script helper shared by every crate that links libtorch through `tch`.
//!
//! torch-sys tells the linker where libtorch lives but gives the final binaries no rpath,
//! and rustc links with `--as-needed`, which drops `libtorch_cuda.so` because no Rust symbol
//! refers to it; CUDA then never initialises (tch-rs issue #980). A crate calls
//! [`link_libtorch`] from its `build.rs` (and depends on `torch-sys` directly so that cargo
//! hands it `DEP_TCH_LIBTORCH_LIB`) to get binaries, tests and benches that run without
//! `LD_LIBRARY_PATH` and see the GPU when there is one.

use std::env;
use std::path::Path;

/// Emits the link arguments for the calling package's binaries, tests, examples and benches.
pub fn link_libtorch() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=ADN_NO_CUDA");
    let Ok(lib_dir) = env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!(
            "cargo:warning=torch-sys did not report its library folder; \
             binaries will need LD_LIBRARY_PATH (run `cargo xtask setup`)"
        );
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
    // The version the binary is built against, for run records: `torch/version.py` in a
    // Python install, `build-version` in a libtorch archive.
    let root = Path::new(&lib_dir).join("..");
    let version = std::fs::read_to_string(root.join("version.py"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("__version__ = "))
                .map(|v| v.trim().trim_matches(['\'', '"']).to_string())
        })
        .or_else(|| {
            std::fs::read_to_string(root.join("build-version"))
                .ok()
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=ADN_LIBTORCH_VERSION={version}");
    let has_cuda = Path::new(&lib_dir).join("libtorch_cuda.so").exists();
    if has_cuda && env::var_os("ADN_NO_CUDA").is_none() {
        // Keep libtorch_cuda.so as a dependency although no Rust symbol uses it: loading it
        // registers the CUDA backend. On a machine without a GPU it loads and reports none.
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
