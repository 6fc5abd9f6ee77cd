//! The resolved settings: what a run computes with on this machine. The config says what the
//! user asked (`auto`, `bf16`, `--device auto`); [`Settings::resolve`] turns that into
//! concrete values once, every stage reads them from here, and the run record stores them
//! typed, so `eval` and `explain` rebuild a run as it ran ([`Settings::recorded`]) rather
//! than as `auto` would resolve on the machine that reads it.

use adn_backbones::{AttentionTraining, FeatureExtractor, MemoryFormat, Precision};
use adn_record::{Machine, RunFacts};
use anyhow::Result;
use tch::Device;

use crate::config::{Config, PrecisionChoice};
use crate::device::DeviceChoice;

/// What a run computes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub device: Device,
    /// The frozen backbone's forward pass (`model.precision`).
    pub backbone_precision: Precision,
    /// The flow's matrix multiplies (`train.precision`).
    pub flow_precision: Precision,
    /// The activation layout (`ADN_MEMORY_FORMAT`; channels-last by default). Values agree
    /// up to float rounding, so it is not part of the config or the cache key.
    pub memory_format: MemoryFormat,
    /// The frozen backbone under CUDA autocast (float16): `model.mixed_precision` on a CUDA
    /// device, never on the CPU.
    pub cuda_autocast: bool,
    /// libtorch's intra-op threads.
    pub threads: i32,
    /// Reproducible mode (`compute.reproducible`): the kernels pinned to AVX2, one thread,
    /// fp32 for `auto` ([`super::reproducible`]).
    pub reproducible: bool,
}

impl Settings {
    /// What `cfg` asks for, on the device `choice` resolves to.
    pub fn resolve(cfg: &Config, choice: DeviceChoice) -> Result<Settings> {
        require_switches(cfg)?;
        Settings::on_device(cfg, choice.resolve_for(cfg.compute.reproducible)?)
    }

    /// What `cfg` asks for, on `device`.
    pub fn on_device(cfg: &Config, device: Device) -> Result<Settings> {
        let reproducible = cfg.compute.reproducible;
        // Reproducible mode means fp32 for `auto` (the config refuses an explicit bf16).
        let asked = |choice: PrecisionChoice| match choice {
            PrecisionChoice::Auto if reproducible => PrecisionChoice::Fp32,
            c => c,
        };
        Ok(Settings {
            device,
            backbone_precision: backbone_precision(
                asked(cfg.model.precision),
                device,
                cfg.model.attention_training,
            ),
            // Only DifferNet's flow has bfloat16 weight copies.
            flow_precision: match cfg.flow.kind {
                adn_flows::FlowKind::Differnet => {
                    flow_precision(asked(cfg.train.precision), device)
                }
                _ => Precision::Fp32,
            },
            memory_format: memory_format()?,
            cuda_autocast: device.is_cuda() && cfg.model.mixed_precision,
            threads: tch::get_num_threads(),
            reproducible,
        })
    }

    /// The settings of a recorded run on `device`: the precisions its manifest records
    /// (records from before they were recorded ran in fp32), whatever `auto` would mean
    /// here. `facts` is `None` for a record without run facts.
    pub fn recorded(cfg: &Config, device: Device, facts: Option<&RunFacts>) -> Result<Settings> {
        require_switches(cfg)?;
        let mut settings = Settings::on_device(cfg, device)?;
        if let Some(f) = facts {
            settings.backbone_precision = f.precision;
            settings.flow_precision = f.flow_precision;
        }
        Ok(settings)
    }

    /// `cfg` asking for exactly these precisions: the config a rescoring writes beside its
    /// scores, so that it says what they were computed with.
    pub fn pinned(&self, cfg: &Config) -> Config {
        let choice = |p: Precision| match p {
            Precision::Fp32 => PrecisionChoice::Fp32,
            Precision::Bf16 => PrecisionChoice::Bf16,
        };
        let mut pinned = cfg.clone();
        pinned.model.precision = choice(self.backbone_precision);
        pinned.train.precision = choice(self.flow_precision);
        pinned
    }
}

/// Refuses to compute a reproducible config's numbers in a process without the kernel
/// switches: they would be this CPU's fast ones, recorded as reproducible.
pub fn require_switches(cfg: &Config) -> Result<()> {
    if cfg.compute.reproducible && !super::reproducible::active() {
        anyhow::bail!(
            "this config asks for compute.reproducible, but the process was not started with \
             its kernel switches ({}); `adn run`, `eval`, `explain` and `extract` set them \
             themselves",
            super::reproducible::switches().join(" ")
        );
    }
    Ok(())
}

/// The backbone precision `choice` means on `device` for an extractor trained `training`:
/// `auto` is bf16 where there are bfloat16 units, but jointly trained attention always
/// trains in fp32.
pub fn backbone_precision(
    choice: PrecisionChoice,
    device: Device,
    training: AttentionTraining,
) -> Precision {
    match choice {
        PrecisionChoice::Fp32 => Precision::Fp32,
        PrecisionChoice::Bf16 => Precision::Bf16,
        PrecisionChoice::Auto if training == AttentionTraining::Joint => Precision::Fp32,
        PrecisionChoice::Auto if device.is_cuda() || cpu_has_bf16_units() => Precision::Bf16,
        PrecisionChoice::Auto => Precision::Fp32,
    }
}

/// The flow precision `choice` means on `device`.
pub fn flow_precision(choice: PrecisionChoice, device: Device) -> Precision {
    match choice {
        PrecisionChoice::Fp32 => Precision::Fp32,
        PrecisionChoice::Bf16 => Precision::Bf16,
        PrecisionChoice::Auto if device.is_cuda() || cpu_has_bf16_units() => Precision::Bf16,
        PrecisionChoice::Auto => Precision::Fp32,
    }
}

/// Whether this CPU has bfloat16 matrix units (`amx_bf16` or `avx512_bf16` in
/// `/proc/cpuinfo`; false where the file is absent).
pub fn cpu_has_bf16_units() -> bool {
    let flags = cpu_flags();
    flags.iter().any(|f| f == "amx_bf16" || f == "avx512_bf16")
}

/// The instruction-set extensions libtorch's CPU kernels (ATen's dispatch, oneDNN, MKL)
/// choose between.
const KERNEL_FEATURES: &[&str] = &[
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
];

/// The first CPU's flags in `/proc/cpuinfo`; none where the file is absent.
fn cpu_flags() -> Vec<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find(|l| l.starts_with("flags"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, flags)| flags.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The machine as a run record states it: CPU model, the kernel-relevant instruction-set
/// extensions it has, what libtorch was built with, and the kernel switches of reproducible
/// mode when it is on.
pub fn machine(reproducible: bool) -> Machine {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = info
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown".to_string(), |(_, name)| name.trim().to_string());
    let flags = cpu_flags();
    let cpu_features = KERNEL_FEATURES
        .iter()
        .filter(|f| flags.iter().any(|g| g == *f))
        .map(|f| f.to_string())
        .collect();
    let built = [
        ("mkl", tch::utils::has_mkl()),
        ("mkldnn", tch::utils::has_mkldnn()),
        ("openmp", tch::utils::has_openmp()),
        ("lapack", tch::utils::has_lapack()),
        ("cuda", tch::utils::has_cuda()),
    ];
    Machine {
        cpu,
        cpu_features,
        libtorch_build: built
            .iter()
            .filter(|(_, has)| *has)
            .map(|(name, _)| name.to_string())
            .collect(),
        reproducible,
        switches: if reproducible {
            super::reproducible::switches()
        } else {
            Vec::new()
        },
    }
}

/// The activation layout `ADN_MEMORY_FORMAT` asks for; channels-last when unset.
fn memory_format() -> Result<MemoryFormat> {
    match std::env::var("ADN_MEMORY_FORMAT") {
        Ok(v) => v
            .parse()
            .map_err(|e: String| anyhow::anyhow!("ADN_MEMORY_FORMAT: {e}")),
        Err(_) => Ok(MemoryFormat::default()),
    }
}

/// Runs `f` with the extractor in float32, then puts it back in its precision. Gradients
/// (the anomaly maps, Grad-CAM) are taken in float32: a bf16 backbone is cast up, exactly,
/// so they are the gradients of the weights the run scored with. The one place that casts.
pub fn in_fp32_for_gradients<T>(
    extractor: &mut FeatureExtractor,
    f: impl FnOnce(&FeatureExtractor) -> Result<T>,
) -> Result<T> {
    let precision = extractor.precision();
    extractor.set_precision(Precision::Fp32)?;
    let out = f(extractor);
    extractor.set_precision(precision)?;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_resolves_by_machine_and_joint_attention_trains_in_fp32() {
        let cpu = Device::Cpu;
        let cuda = Device::Cuda(0);
        let frozen = AttentionTraining::FrozenAtInit;
        let joint = AttentionTraining::Joint;
        assert_eq!(
            backbone_precision(PrecisionChoice::Auto, cpu, joint),
            Precision::Fp32
        );
        assert_eq!(
            backbone_precision(PrecisionChoice::Auto, cuda, frozen),
            Precision::Bf16
        );
        let here = backbone_precision(PrecisionChoice::Auto, cpu, frozen);
        assert_eq!(here == Precision::Bf16, cpu_has_bf16_units());
        assert_eq!(
            flow_precision(PrecisionChoice::Auto, cpu) == Precision::Bf16,
            cpu_has_bf16_units()
        );
        assert_eq!(flow_precision(PrecisionChoice::Fp32, cuda), Precision::Fp32);
        assert_eq!(flow_precision(PrecisionChoice::Bf16, cpu), Precision::Bf16);
    }
}
