//! Reproducible mode (`compute.reproducible`): the same config gives the same bits on any
//! x86-64 CPU with AVX2.
//!
//! libtorch picks its CPU kernels by the instruction set: ATen's vectorised kernels
//! (including its random normal draws) dispatch on AVX2 / AVX-512, oneDNN's convolutions on
//! the widest ISA, MKL's GEMM on the CPU's vendor and units; and its reductions split work
//! by thread count. Each switch below pins one of them. They are read from the environment
//! once, when a library first runs, so a process that needs them and lacks them executes
//! itself again with them set ([`enter`]) before libtorch does anything: no call order to
//! get right. Which of them change this machine's numbers was measured (docs/reliability.md).
//!
//! Our own kernels need no switch: the one-pass Adam's vector paths do the same arithmetic
//! (no fused multiply-add), and the loader's arithmetic is per element.

use anyhow::{Result, bail};

/// The environment of reproducible mode: each variable and the value it is pinned to.
pub const SWITCHES: &[(&str, &str)] = &[
    // ATen's kernels (and its vectorised Box-Muller draws): the AVX2 versions.
    ("ATEN_CPU_CAPABILITY", "avx2"),
    // oneDNN (convolutions, some matmuls): at most AVX2 (both names it has read).
    ("ONEDNN_MAX_CPU_ISA", "AVX2"),
    ("DNNL_MAX_CPU_ISA", "AVX2"),
    // MKL (GEMM): conditional numerical reproducibility on the AVX2 path, strict, and no
    // wider instructions.
    ("MKL_CBWR", "AVX2,STRICT"),
    ("MKL_ENABLE_INSTRUCTIONS", "AVX2"),
    // One OpenMP thread: reductions then add in one order whatever the core count.
    ("OMP_NUM_THREADS", "1"),
    ("MKL_NUM_THREADS", "1"),
];

/// libtorch's intra-op threads in reproducible mode.
pub const THREADS: i32 = 1;

/// Set in the environment of a process started by [`enter`], so it cannot loop.
const MARK: &str = "ADN_REPRODUCIBLE";

/// Whether every switch has its pinned value in this process's environment.
pub fn active() -> bool {
    SWITCHES
        .iter()
        .all(|(k, v)| std::env::var_os(k).is_some_and(|x| x == *v))
}

/// The switches as `NAME=value`, for the run record.
pub fn switches() -> Vec<String> {
    SWITCHES.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// Makes this process reproducible when `wanted`: returns at once when the switches are
/// already set (and pins libtorch's threads); otherwise executes this program again, with
/// the same arguments and the switches set, and does not return unless that fails.
pub fn enter(wanted: bool) -> Result<()> {
    if !wanted {
        return Ok(());
    }
    if !cpu_has_avx2() {
        bail!(
            "compute.reproducible needs a CPU with AVX2 (the kernels it pins); this one has \
             none: set compute.reproducible = false"
        );
    }
    if active() {
        tch::set_num_threads(THREADS);
        return Ok(());
    }
    if std::env::var_os(MARK).is_some() {
        bail!(
            "reproducible mode could not set its kernel switches ({}): something in the \
             environment overrides them",
            switches().join(" ")
        );
    }
    restart_with_switches()
}

/// [`enter`] for rescoring recorded runs (`eval`, `explain`): reproducible when any of them
/// was recorded so, so that it is rescored with the kernels it ran with; returns whether.
/// A folder whose config cannot be read is left to the command, which says what is wrong
/// with it.
pub fn enter_for_runs<P: AsRef<std::path::Path>>(run_dirs: &[P]) -> Result<bool> {
    let wanted = run_dirs.iter().any(|d| {
        crate::config::Config::load(&d.as_ref().join(adn_record::files::CONFIG), &[])
            .is_ok_and(|c| c.compute.reproducible)
    });
    enter(wanted)?;
    Ok(wanted)
}

#[cfg(target_arch = "x86_64")]
fn cpu_has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_has_avx2() -> bool {
    false
}

#[cfg(unix)]
fn restart_with_switches() -> Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("reproducible mode: cannot find this program: {e}"))?;
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    tracing::info!(
        "reproducible mode: restarting with {}",
        switches().join(" ")
    );
    let err = std::process::Command::new(&exe)
        .args(args)
        .envs(SWITCHES.iter().map(|(k, v)| (*k, *v)))
        .env(MARK, "1")
        .exec();
    bail!(
        "reproducible mode: cannot restart {} with its kernel switches: {err}",
        exe.display()
    )
}

#[cfg(not(unix))]
fn restart_with_switches() -> Result<()> {
    bail!(
        "reproducible mode sets its kernel switches by restarting, which needs Unix; set them \
         yourself: {}",
        switches().join(" ")
    )
}
