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
    let has_cuda = Path::new(&lib_dir).join("libtorch_cuda.so").exists();
    if has_cuda && env::var_os("ADN_NO_CUDA").is_none() {
        // Keep libtorch_cuda.so as a dependency although no Rust symbol uses it: loading it
        // registers the CUDA backend. On a machine without a GPU it loads and reports none.
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
