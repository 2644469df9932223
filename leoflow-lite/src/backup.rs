//! `leoflow db backup -o FILE` and `leoflow db restore -i FILE [--force]`: a tar.gz holding
//! `MANIFEST.json` (format, leoflow and schema versions), the home's `config.yaml` and
//! `datastore.sql` (a plain `pg_dump` of Lite's database). Restore refuses an archive
//! without a manifest, one from a newer format or schema, and — without `--force` — a
//! home that is already set up.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use chrono::Utc;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use leoflow_postgres::cluster::Binaries;
use serde::{Deserialize, Serialize};

use crate::home::Home;
use crate::Error;

/// The archive format this build writes and reads.
const MANIFEST_VERSION: u32 = 1;

/// `MANIFEST.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub manifest_version: u32,
    pub leoflow_version: String,
    /// The highest migration applied to the dumped database.
    pub schema_version: i64,
    pub created_at: String,
}

/// Dumps the database at `url` and the home's configuration into `output`.
pub fn backup(home: &Home, url: &str, output: &Path) -> Result<Manifest, Error> {
    let dump = run_tool(
        "pg_dump",
        &[
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--format=plain",
            &format!("--dbname={url}"),
        ],
    )?;
    let manifest = Manifest {
        manifest_version: MANIFEST_VERSION,
        leoflow_version: env!("CARGO_PKG_VERSION").into(),
        schema_version: leoflow_postgres::schema_version(),
        created_at: Utc::now().to_rfc3339(),
    };
    let io = |action| {
        move |source| Error::Io {
            action,
            path: output.to_path_buf(),
            source,
        }
    };
    let file = File::create(output).map_err(io("create"))?;
    let mut tar = tar::Builder::new(GzEncoder::new(file, flate2::Compression::default()));
    let manifest_json = serde_json::to_vec_pretty(&manifest).map_err(|e| io("write")(e.into()))?;
    append(&mut tar, "MANIFEST.json", &manifest_json).map_err(io("write"))?;
    if let Ok(config) = std::fs::read(home.config_file()) {
        append(&mut tar, "config.yaml", &config).map_err(io("write"))?;
    }
    append(&mut tar, "datastore.sql", &dump).map_err(io("write"))?;
    tar.into_inner()
        .and_then(GzEncoder::finish)
        .map_err(io("write"))?;
    Ok(manifest)
}

fn append<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    data: &[u8],
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o600);
    header.set_cksum();
    tar.append_data(&mut header, name, data)
}

/// What an archive holds.
#[derive(Debug)]
pub struct Archive {
    pub manifest: Manifest,
    pub config: Option<Vec<u8>>,
    pub dump: Vec<u8>,
}

/// Reads and checks an archive.
pub fn read(input: &Path) -> Result<Archive, Error> {
    let corrupt = |why: String| {
        Error::Usage(format!(
            "{} is not a usable Leoflow backup ({why}); pass an archive written by `leoflow db backup`",
            input.display()
        ))
    };
    let file = File::open(input).map_err(|source| Error::Io {
        action: "open",
        path: input.to_path_buf(),
        source,
    })?;
    let mut archive = tar::Archive::new(GzDecoder::new(file));
    let (mut manifest, mut config, mut dump) = (None, None, None);
    let entries = archive.entries().map_err(|e| corrupt(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt(e.to_string()))?;
        let name = entry
            .path()
            .map_err(|e| corrupt(e.to_string()))?
            .display()
            .to_string();
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .map_err(|e| corrupt(e.to_string()))?;
        match name.as_str() {
            "MANIFEST.json" => manifest = Some(data),
            "config.yaml" => config = Some(data),
            "datastore.sql" => dump = Some(data),
            _ => {}
        }
    }
    let manifest: Manifest =
        serde_json::from_slice(&manifest.ok_or_else(|| corrupt("no MANIFEST.json".into()))?)
            .map_err(|e| corrupt(format!("MANIFEST.json: {e}")))?;
    if manifest.manifest_version == 0 {
        return Err(corrupt("manifest_version 0".into()));
    }
    if manifest.manifest_version > MANIFEST_VERSION {
        return Err(Error::Usage(format!(
            "{} uses backup format {}, newer than this leoflow reads ({MANIFEST_VERSION}); upgrade leoflow",
            input.display(),
            manifest.manifest_version
        )));
    }
    if manifest.schema_version > leoflow_postgres::schema_version() {
        return Err(Error::Usage(format!(
            "{} holds database schema {}, newer than this leoflow knows ({}); restore it with a newer leoflow",
            input.display(),
            manifest.schema_version,
            leoflow_postgres::schema_version()
        )));
    }
    let dump = dump.ok_or_else(|| corrupt("no datastore.sql".into()))?;
    Ok(Archive {
        manifest,
        config,
        dump,
    })
}

/// Replays an archive's dump into the (empty) database at `url`, and its configuration
/// into the home.
pub fn restore(home: &Home, archive: &Archive, url: &str) -> Result<(), Error> {
    let tmp = home.root().join("restore.sql");
    std::fs::write(&tmp, &archive.dump).map_err(|source| Error::Io {
        action: "write",
        path: tmp.clone(),
        source,
    })?;
    let file = tmp.display().to_string();
    let result = run_tool(
        "psql",
        &[
            "--quiet",
            "--no-psqlrc",
            "--single-transaction",
            "--set=ON_ERROR_STOP=1",
            &format!("--file={file}"),
            &format!("--dbname={url}"),
        ],
    );
    let _ = std::fs::remove_file(&tmp);
    result?;
    if let Some(config) = &archive.config {
        let text = String::from_utf8_lossy(config);
        let parsed = serde_yaml_ng::from_str(&text)
            .map_err(|e| Error::Usage(format!("the archive's config.yaml is invalid: {e}")))?;
        home.create()?;
        home.save(&parsed)?;
    }
    Ok(())
}

/// A PostgreSQL client tool: next to the server binaries, else on PATH.
fn tool(name: &str) -> PathBuf {
    Binaries::find()
        .ok()
        .map(|b| b.dir.join(name))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn run_tool(name: &str, args: &[&str]) -> Result<Vec<u8>, Error> {
    let program = tool(name);
    let out = Command::new(&program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            Error::Usage(format!(
                "cannot run {}: {e}; install the PostgreSQL client tools (Debian/Ubuntu: `sudo apt-get install postgresql-client`)",
                program.display()
            ))
        })?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(Error::Usage(format!(
            "{} failed ({}): {}",
            program.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[(&str, &[u8])]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut tar = tar::Builder::new(GzEncoder::new(
            file.reopen().unwrap(),
            flate2::Compression::fast(),
        ));
        for (name, data) in entries {
            append(&mut tar, name, data).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
        file
    }

    fn manifest(version: u32, schema: i64) -> Vec<u8> {
        serde_json::to_vec(&Manifest {
            manifest_version: version,
            leoflow_version: "0.1.0".into(),
            schema_version: schema,
            created_at: "2026-01-01T00:00:00Z".into(),
        })
        .unwrap()
    }

    #[test]
    fn corrupt_and_newer_archives_are_refused_with_the_reason() {
        let garbage = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(garbage.path(), b"not a tarball").unwrap();
        let err = read(garbage.path()).unwrap_err().to_string();
        assert!(err.contains("not a usable Leoflow backup"), "{err}");

        let no_manifest = archive(&[("datastore.sql", b"")]);
        let err = read(no_manifest.path()).unwrap_err().to_string();
        assert!(err.contains("no MANIFEST.json"), "{err}");

        let newer_schema = archive(&[("MANIFEST.json", &manifest(1, 999)), ("datastore.sql", b"")]);
        let err = read(newer_schema.path()).unwrap_err().to_string();
        assert!(
            err.contains("schema 999") && err.contains("newer leoflow"),
            "{err}"
        );

        let newer_format = archive(&[("MANIFEST.json", &manifest(2, 1)), ("datastore.sql", b"")]);
        let err = read(newer_format.path()).unwrap_err().to_string();
        assert!(err.contains("upgrade leoflow"), "{err}");

        let ok = archive(&[
            ("MANIFEST.json", &manifest(1, 1)),
            ("datastore.sql", b"SELECT 1;"),
        ]);
        let read_back = read(ok.path()).unwrap();
        assert_eq!(read_back.dump, b"SELECT 1;");
        assert_eq!(read_back.config, None);
    }
}
