//! A number format, as a run computes in it and as its record names it (`fp32`, `bf16`).
//! One type for the backbone, the flow, the manifest and the bench, so a precision is never
//! carried as a string and parsed again.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Fp32,
    /// bfloat16: the matrix units of recent CPUs (AMX, AVX-512 BF16) and GPUs run it several
    /// times faster than float32; pooled features differ from float32 by about 1 %
    /// (relative norm).
    Bf16,
}

impl Precision {
    /// The name in configs, records and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fp32" => Ok(Precision::Fp32),
            "bf16" => Ok(Precision::Bf16),
            other => Err(format!(
                "unknown precision {other:?} (expected fp32 or bf16)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_json_and_unknown_ones_are_refused() {
        for p in [Precision::Fp32, Precision::Bf16] {
            assert_eq!(p.name().parse::<Precision>().unwrap(), p);
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{p}\""));
            assert_eq!(serde_json::from_str::<Precision>(&json).unwrap(), p);
        }
        for bad in ["auto", "fp16", "", "BF16"] {
            assert!(bad.parse::<Precision>().unwrap_err().contains(bad));
            assert!(serde_json::from_str::<Precision>(&format!("\"{bad}\"")).is_err());
        }
    }
}
