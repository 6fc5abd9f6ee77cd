//! `--device`: where libtorch runs.

use anyhow::{Result, bail};
use tch::Device;

/// Which device trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceChoice {
    Auto,
    Cpu,
    Cuda,
}

impl DeviceChoice {
    pub fn resolve(self) -> Result<Device> {
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Auto => Ok(Device::cuda_if_available()),
            DeviceChoice::Cuda if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
            DeviceChoice::Cuda => {
                bail!("--device cuda was asked for but libtorch sees no CUDA device")
            }
        }
    }

    /// [`DeviceChoice::resolve`], except that reproducible mode computes on the CPU: its
    /// switches pin the CPU's kernels, and CUDA's differ between GPUs. `auto` then means the
    /// CPU and `cuda` is refused.
    pub fn resolve_for(self, reproducible: bool) -> Result<Device> {
        match self {
            _ if !reproducible => self.resolve(),
            DeviceChoice::Cuda => bail!(
                "--device cuda: this config asks for compute.reproducible, which computes on \
                 the CPU (the same bits on any x86-64 CPU with AVX2; GPUs give other bits); \
                 use --device cpu, or set compute.reproducible = false"
            ),
            DeviceChoice::Auto | DeviceChoice::Cpu => Ok(Device::Cpu),
        }
    }

    /// The value as `--device` takes it.
    pub fn name(self) -> &'static str {
        match self {
            DeviceChoice::Auto => "auto",
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Cuda => "cuda",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproducible_mode_computes_on_the_cpu_whatever_the_machine_has() {
        assert_eq!(DeviceChoice::Auto.resolve_for(true).unwrap(), Device::Cpu);
        assert_eq!(DeviceChoice::Cpu.resolve_for(true).unwrap(), Device::Cpu);
        let e = DeviceChoice::Cuda.resolve_for(true).unwrap_err();
        assert!(format!("{e:#}").contains("compute.reproducible"), "{e:#}");
        assert_eq!(
            DeviceChoice::Auto.resolve_for(false).unwrap(),
            DeviceChoice::Auto.resolve().unwrap()
        );
    }
}
