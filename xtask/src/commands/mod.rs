//! One module per `cargo xtask` command. `paper` is `sweep` over its grid; `demo` is too,
//! and then says whether the committed demo was reproduced.

pub mod bench;
pub mod demo;
pub mod figures;
pub mod page;
pub mod setup;
pub mod sweep;
pub mod tables;
pub mod test;
