//! The subprocess executor: every task attempt is one local `leoflow-agent` process in its
//! own process group, with a clean environment, killed with its whole tree on cancel.
//! Python attempts are forked from a warm runtime when it is up (`warm`), and start cold
//! otherwise. Development only: the task runs with the server user's rights, unsandboxed.

mod config;
mod executor;
mod warm;
mod work_root;

pub use config::SubprocessConfig;
pub use executor::SubprocessExecutor;
