//! Hot reload: the PATH is watched through OS notifications (`notify`); changes are
//! debounced, then only the units they touch are recompiled and registered (the engine
//! keeps identical specs as one version). A unit that no longer compiles gets an import
//! error and its last good version keeps running.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use leoflow_core::Engine;
use leoflow_shim::Shim;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::lite::dags::{describe, Dags, Unit};
use crate::Error;

/// How long the tree must stay quiet before a reload.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// A running watch; dropping it stops watching.
pub struct Watch {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Watch {
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Starts watching `dags.root()`.
pub fn start(mut dags: Dags, shim: Arc<Shim>, engine: Engine) -> Result<Watch, Error> {
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            if event.kind.is_access() {
                return;
            }
            for path in event.paths {
                let _ = tx.send(path);
            }
        }
    })
    .map_err(|e| Error::Usage(format!("cannot watch for file changes: {e}")))?;
    watcher
        .watch(dags.root(), RecursiveMode::Recursive)
        .map_err(|e| {
            Error::Usage(format!(
                "cannot watch {} for changes: {e}; on Linux, raise fs.inotify.max_user_watches",
                dags.root().display()
            ))
        })?;
    let task = tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut changed = BTreeSet::from([first]);
            // Debounce: editors write several events per save.
            while let Ok(Some(path)) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                changed.insert(path);
            }
            let changed: Vec<PathBuf> = changed
                .into_iter()
                .filter(|p| relevant(dags.root(), p))
                .collect();
            if changed.is_empty() {
                continue;
            }
            if let Err(e) = dags.rescan() {
                eprintln!("✗ {e}");
                continue;
            }
            let units: BTreeSet<Unit> = changed
                .iter()
                .filter_map(|p| dags.unit_of(p).cloned())
                .collect();
            if units.is_empty() {
                continue;
            }
            println!(
                "[{}] change detected → reloading …",
                chrono::Local::now().format("%H:%M:%S")
            );
            let mut results = BTreeMap::new();
            for unit in units {
                let loaded = dags.load(&unit, &shim, &engine).await;
                results.insert(unit, loaded);
            }
            for line in describe(&results) {
                println!("  {line}");
            }
        }
    });
    Ok(Watch {
        _watcher: watcher,
        task,
    })
}

/// Python sources and project files under `root`; not caches, compiled output or hidden
/// files.
fn relevant(root: &Path, path: &Path) -> bool {
    let inside = path.strip_prefix(root).unwrap_or(path);
    if inside.components().any(|c| {
        let c = c.as_os_str().to_string_lossy();
        c.starts_with('.') || c == "__pycache__"
    }) {
        return false;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    path.extension().is_some_and(|e| e == "py")
        || name == crate::project::FILE_NAME
        || path.is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sources_and_project_files_trigger_a_reload() {
        let root = Path::new("/tmp/.tmpX/w");
        let check = |p: &str| relevant(root, &root.join(p));
        assert!(check("p/dag.py"));
        assert!(check("p/leoflow.yaml"));
        assert!(!check("p/dag.json"));
        assert!(!check("p/__pycache__/dag.cpython-311.pyc"));
        assert!(!check("p/.dag.py.swp"));
    }
}
