//! The subprocess executor: every task attempt is one local `leoflow-agent` process in its
//! own process group, with a clean environment, killed with its whole tree on cancel.
//! Development only: the task runs with the server user's rights, unsandboxed.

mod config;
mod executor;

pub use config::SubprocessConfig;
pub use executor::SubprocessExecutor;
