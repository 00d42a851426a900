//! The native tasks every worker has (`echo`, `sleep`), and `abort`, for crash drills.

mod abort;
mod echo;
mod sleep;

pub use abort::Abort;
pub use echo::Echo;
pub use sleep::Sleep;
