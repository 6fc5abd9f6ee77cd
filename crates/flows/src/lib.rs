//! The normalizing flows: DifferNet's, exactly as its official code builds it, and the
//! flow families beside it ([`fastflow`], [`csflow`], [`cflow`]).
//!
//! Eight blocks of [fixed permutation, GLOW affine coupling with a soft `atan` clamp] map a
//! feature vector to a latent `z` with a tractable log-determinant; the loss is the negative
//! log-likelihood of `z` under a standard normal. Permutations reproduce NumPy's legacy
//! `np.random.seed(k); np.random.permutation(d)` bit for bit ([`numpy_rng`]), so a flow
//! trained here and one trained by the Python code see the same channel order.

mod all_in_one;
pub mod cflow;
pub mod coupling;
pub mod csflow;
pub mod fastflow;
pub mod flow;
mod init;
pub mod numpy_rng;
pub mod optim;

pub use cflow::{
    Cflow, CflowConfig, cflow_likelihood, cflow_loss, cflow_map, cflow_score, fibers,
    positional_encoding_2d,
};
pub use csflow::{CsFlow, CsFlowConfig, csflow_loss, csflow_map, csflow_score};
pub use fastflow::{FastFlow, FastFlowConfig, fastflow_loss, fastflow_map, fastflow_score};
pub use flow::{DifferNetFlow, FlowConfig, FlowKind, Param, nll_loss, nll_parts, volume_charge};
pub use optim::{Adam, AdamConfig};
