//! One module per `cargo xtask` command. `demo` and `paper` are `sweep` over their grids.

pub mod bench;
pub mod figures;
pub mod setup;
pub mod sweep;
pub mod tables;
pub mod test;
