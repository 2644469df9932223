//! The embedded Python files and their one-time materialisation into a cache directory keyed
//! by their content hash, written to a temporary directory and renamed into place so that
//! concurrent processes never see a half-written tree.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

pub(crate) use embedded::{FILES, HASH};

/// Written last into a materialised tree; its presence means the tree is complete.
const MARKER: &str = ".leoflow-shim-complete";

/// Where materialised trees live: `$LEOFLOW_HOME/shim`, else `$XDG_CACHE_HOME/leoflow/shim`,
/// else `~/.cache/leoflow/shim`, else a per-user folder in the system temp directory.
pub(crate) fn default_root() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(home) = var("LEOFLOW_HOME") {
        return PathBuf::from(home).join("shim");
    }
    if let Some(cache) = var("XDG_CACHE_HOME") {
        return PathBuf::from(cache).join("leoflow").join("shim");
    }
    if let Some(home) = var("HOME") {
        return PathBuf::from(home)
            .join(".cache")
            .join("leoflow")
            .join("shim");
    }
    let user = var("USER").map_or_else(|| "user".into(), |u| u.to_string_lossy().into_owned());
    std::env::temp_dir()
        .join(format!("leoflow-{user}"))
        .join("shim")
}

/// Makes sure `<root>/<HASH>` holds every embedded file and returns that path.
pub(crate) fn materialise(root: &Path) -> io::Result<PathBuf> {
    let target = root.join(HASH);
    if target.join(MARKER).is_file() {
        return Ok(target);
    }
    fs::create_dir_all(root)?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    static ATTEMPT: AtomicU32 = AtomicU32::new(0);
    let attempt = ATTEMPT.fetch_add(1, Ordering::Relaxed);
    let staging = root.join(format!(
        ".tmp-{HASH}-{}-{nanos}-{attempt}",
        std::process::id()
    ));
    let written = write_tree(&staging);
    if let Err(e) = written {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    match fs::rename(&staging, &target) {
        Ok(()) => Ok(target),
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            if target.join(MARKER).is_file() {
                // Another process won the race; its tree is identical.
                Ok(target)
            } else if target.exists() {
                // A tree without its marker (interrupted by hand?): replace it.
                fs::remove_dir_all(&target)?;
                materialise(root)
            } else {
                Err(e)
            }
        }
    }
}

fn write_tree(dir: &Path) -> io::Result<()> {
    for (rel, bytes) in FILES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, bytes)?;
    }
    fs::write(dir.join(MARKER), HASH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_holds_the_parser_and_the_airflow_packages_but_no_tests() {
        let names: Vec<&str> = FILES.iter().map(|(n, _)| *n).collect();
        for required in [
            "leoflow_shim/__init__.py",
            "leoflow_shim/__main__.py",
            "leoflow_shim/cli.py",
            "airflow/__init__.py",
            "airflow/sdk/__init__.py",
        ] {
            assert!(names.contains(&required), "{required} missing: {names:?}");
        }
        for name in &names {
            assert!(!name.starts_with("tests/"), "{name}");
            assert!(!name.contains("__pycache__"), "{name}");
            assert!(
                Path::new(name).extension().is_none_or(|e| e != "pyc"),
                "{name}"
            );
            assert!(!name.contains('\\'), "{name}");
        }
        assert_eq!(HASH.len(), 16);
    }

    #[test]
    fn materialising_twice_reuses_the_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let first = materialise(tmp.path()).unwrap();
        assert_eq!(first, tmp.path().join(HASH));
        for (rel, bytes) in FILES {
            assert_eq!(&fs::read(first.join(rel)).unwrap(), bytes, "{rel}");
        }
        let stamp = fs::metadata(first.join(MARKER))
            .unwrap()
            .modified()
            .unwrap();
        let second = materialise(tmp.path()).unwrap();
        assert_eq!(first, second);
        let again = fs::metadata(second.join(MARKER))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(stamp, again, "the tree was rewritten");
        let leftovers: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[test]
    fn concurrent_materialisation_is_safe() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let root = root.clone();
                std::thread::spawn(move || materialise(&root).unwrap())
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), root.join(HASH));
        }
        assert!(root.join(HASH).join(MARKER).is_file());
        let names: Vec<_> = fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [HASH.to_string()], "temporary trees left behind");
    }

    #[test]
    fn an_incomplete_tree_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join(HASH);
        fs::create_dir_all(target.join("airflow")).unwrap();
        fs::write(target.join("airflow/__init__.py"), "broken").unwrap();
        let dir = materialise(tmp.path()).unwrap();
        assert!(dir.join(MARKER).is_file());
        let (_, bytes) = FILES
            .iter()
            .find(|(n, _)| *n == "airflow/__init__.py")
            .unwrap();
        assert_eq!(&fs::read(dir.join("airflow/__init__.py")).unwrap(), bytes);
    }
}
