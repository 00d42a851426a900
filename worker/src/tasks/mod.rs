//! The native tasks every worker has.

mod echo;
mod sleep;

pub use echo::Echo;
pub use sleep::Sleep;
