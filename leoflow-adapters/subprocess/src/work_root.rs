//! Where agents create their per-attempt work directories (`LEOFLOW_WORK_ROOT`). Every
//! attempt creates a directory, writes its context and result files and deletes them
//! again; on a journaling disk file system that metadata work costs more CPU than a small
//! task itself. So, unless configured otherwise, the executor gives its agents a private
//! directory on the memory file system `/dev/shm` when the host has one, and removes it
//! when the executor goes away. Without `/dev/shm` agents use their default (`TMPDIR`).

use std::fs::{self, DirBuilder};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The memory file system a private work root is created on.
const MEMORY_FS: &str = "/dev/shm";

/// Where this executor's agents put their work directories.
#[derive(Debug)]
pub(crate) enum WorkRoot {
    /// A directory the operator chose (`SubprocessConfig::work_root`); left as it is.
    Configured(PathBuf),
    /// A private directory this executor created; removed on drop.
    Private(PathBuf),
}

impl WorkRoot {
    /// The configured directory, else a new private one on `/dev/shm`, else none (the
    /// agents' default).
    pub(crate) fn choose(configured: Option<&Path>) -> Option<WorkRoot> {
        match configured {
            Some(dir) => Some(WorkRoot::Configured(dir.to_path_buf())),
            None => Self::private_in(Path::new(MEMORY_FS)),
        }
    }

    /// A new directory only this user can enter, under `parent` (which must exist); never
    /// an existing one, so another user of a shared `parent` cannot prepare it.
    pub(crate) fn private_in(parent: &Path) -> Option<WorkRoot> {
        if !parent.is_dir() {
            return None;
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        for n in 0..8u32 {
            let path = parent.join(format!(
                "leoflow-work-{}-{nanos:09}-{n}",
                std::process::id()
            ));
            match DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Some(WorkRoot::Private(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    tracing::debug!(error = %e, dir = %parent.display(), "no private work root");
                    return None;
                }
            }
        }
        None
    }

    pub(crate) fn path(&self) -> &Path {
        match self {
            WorkRoot::Configured(p) | WorkRoot::Private(p) => p,
        }
    }
}

impl Drop for WorkRoot {
    fn drop(&mut self) {
        if let WorkRoot::Private(path) = self {
            let _ = fs::remove_dir_all(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_private_root_is_new_owner_only_and_removed_on_drop() {
        let parent = std::env::temp_dir().join(format!("lf-wr-{}", std::process::id()));
        fs::create_dir_all(&parent).expect("parent");
        let a = WorkRoot::private_in(&parent).expect("a private root");
        let b = WorkRoot::private_in(&parent).expect("another one");
        assert_ne!(a.path(), b.path());
        let mode = fs::metadata(a.path()).expect("exists").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        fs::write(a.path().join("left-over"), b"x").expect("write");
        let path = a.path().to_path_buf();
        drop(a);
        assert!(!path.exists());
        drop(b);
        fs::remove_dir_all(&parent).expect("cleanup");
    }

    #[test]
    fn a_configured_root_is_kept_and_a_missing_parent_gives_none() {
        let dir = std::env::temp_dir();
        drop(WorkRoot::choose(Some(&dir)));
        assert!(dir.is_dir());
        assert!(WorkRoot::private_in(Path::new("/nonexistent/leoflow")).is_none());
    }
}
