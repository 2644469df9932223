//! `leoflow version [--json]`: the CLI version, the embedded shim's content hash and, when
//! the build recorded it (`LEOFLOW_GIT_COMMIT`), the commit.

use crate::cli::VersionArgs;
use crate::Error;

/// `leoflow version`.
pub fn run(args: &VersionArgs) -> Result<(), Error> {
    let version = env!("CARGO_PKG_VERSION");
    let commit = option_env!("LEOFLOW_GIT_COMMIT");
    let shim = leoflow_shim::content_hash();
    if args.json {
        let doc = serde_json::json!({
            "version": version,
            "shim_hash": shim,
            "git_commit": commit,
        });
        println!("{doc}");
    } else {
        let commit = commit.map(|c| format!(", commit {c}")).unwrap_or_default();
        println!("leoflow {version} (shim {shim}{commit})");
    }
    Ok(())
}
