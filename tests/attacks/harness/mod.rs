//! What every threat class shares: rows and their expectations, the sandbox
//! environment, the transports, the checks and the runners. A class module
//! imports it whole (`use crate::harness::*`) and writes only tables.

mod answer;
mod checks;
mod env;
mod h2raw;
mod headers;
mod raw_rows;
mod reasons;
mod rows;
mod runners;
mod targets;
mod transports;

pub use answer::Answer;
pub use env::Env;
pub use raw_rows::{H2Row, RawRow, h2, raw};
pub use reasons::*;
pub use rows::{Auth, Row, Want, fwd, get, req};
pub use runners::{Run, Tables, run_class};
pub use targets::*;
