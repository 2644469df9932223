//! `leoflow db backup -o FILE` and `leoflow db restore -i FILE [--force]`: a tar.gz holding
//! `MANIFEST.json` (format, leoflow and schema versions, how the database was dumped), the
//! home's `config.yaml` and the database: `datastore.sql`, a plain `pg_dump`, when the
//! system has a `pg_dump` that can dump the server; else (the downloaded PostgreSQL has no
//! client programs) `datastore/tables.json` plus one `datastore/<table>.copy` per table, in
//! `COPY` text format ([`leoflow_postgres::export`]). Restore refuses an archive without a
//! manifest, one from a newer format or schema, and — without `--force` — a home that is
//! already set up.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use chrono::Utc;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use leoflow_postgres::cluster::Binaries;
use leoflow_postgres::export::{Export, Table};
use serde::{Deserialize, Serialize};

use crate::home::Home;
use crate::lite::datastore::system_postgres_allowed;
use crate::Error;

/// The newest archive format this build reads: 1 holds `datastore.sql`, 2 (written
/// without `pg_dump`) holds `datastore/`.
const MANIFEST_VERSION: u32 = 2;

/// `MANIFEST.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub manifest_version: u32,
    pub leoflow_version: String,
    /// The highest migration applied to the dumped database.
    pub schema_version: i64,
    pub created_at: String,
    /// How the database was dumped.
    #[serde(default)]
    pub datastore_format: Format,
}

/// How an archive holds the database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `datastore.sql`, replayed with `psql`.
    #[default]
    PgDump,
    /// `datastore/`, loaded through `leoflow_postgres::export::import`.
    Copy,
}

/// A table of `datastore/tables.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TableEntry {
    name: String,
    columns: Vec<String>,
}

/// The database in an archive.
#[derive(Debug)]
pub enum Dump {
    Sql(Vec<u8>),
    Export(Export),
}

/// Dumps the database at `url` and the home's configuration into `output`.
pub async fn backup(home: &Home, url: &str, output: &Path) -> Result<Manifest, Error> {
    let dump = match pg_dump(url)? {
        Some(sql) => Dump::Sql(sql),
        None => Dump::Export(leoflow_postgres::export::export(url).await?),
    };
    let (manifest_version, datastore_format) = match dump {
        Dump::Sql(_) => (1, Format::PgDump),
        Dump::Export(_) => (2, Format::Copy),
    };
    let manifest = Manifest {
        manifest_version,
        leoflow_version: env!("CARGO_PKG_VERSION").into(),
        schema_version: leoflow_postgres::schema_version(),
        created_at: Utc::now().to_rfc3339(),
        datastore_format,
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
    append(
        &mut tar,
        "MANIFEST.json",
        &pretty(&manifest).map_err(io("write"))?,
    )
    .map_err(io("write"))?;
    if let Ok(config) = std::fs::read(home.config_file()) {
        append(&mut tar, "config.yaml", &config).map_err(io("write"))?;
    }
    match &dump {
        Dump::Sql(sql) => append(&mut tar, "datastore.sql", sql).map_err(io("write"))?,
        Dump::Export(export) => {
            let entries: Vec<TableEntry> = export
                .tables
                .iter()
                .map(|t| TableEntry {
                    name: t.name.clone(),
                    columns: t.columns.clone(),
                })
                .collect();
            append(
                &mut tar,
                "datastore/tables.json",
                &pretty(&entries).map_err(io("write"))?,
            )
            .map_err(io("write"))?;
            for table in &export.tables {
                append(
                    &mut tar,
                    &format!("datastore/{}.copy", table.name),
                    &table.data,
                )
                .map_err(io("write"))?;
            }
        }
    }
    tar.into_inner()
        .and_then(GzEncoder::finish)
        .map_err(io("write"))?;
    Ok(manifest)
}

fn pretty<T: Serialize>(value: &T) -> std::io::Result<Vec<u8>> {
    serde_json::to_vec_pretty(value).map_err(Into::into)
}

/// A plain dump by the system's `pg_dump`; `None` without one (or with one too old for the
/// server), when the archive holds our own export instead.
fn pg_dump(url: &str) -> Result<Option<Vec<u8>>, Error> {
    let Some(program) = system_tool("pg_dump") else {
        return Ok(None);
    };
    match run_tool(
        &program,
        &[
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--format=plain",
            &format!("--dbname={url}"),
        ],
    ) {
        Ok(sql) => Ok(Some(sql)),
        Err(Error::Usage(message)) if message.contains("version mismatch") => {
            println!(
                "  {} cannot dump this server (an older major version); using Leoflow's own export",
                program.display()
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
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
    pub dump: Dump,
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
    let mut files = BTreeMap::new();
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
        files.insert(name, data);
    }
    let manifest: Manifest = serde_json::from_slice(
        &files
            .remove("MANIFEST.json")
            .ok_or_else(|| corrupt("no MANIFEST.json".into()))?,
    )
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
    let dump = match manifest.datastore_format {
        Format::PgDump => Dump::Sql(
            files
                .remove("datastore.sql")
                .ok_or_else(|| corrupt("no datastore.sql".into()))?,
        ),
        Format::Copy => {
            let entries: Vec<TableEntry> = serde_json::from_slice(
                &files
                    .remove("datastore/tables.json")
                    .ok_or_else(|| corrupt("no datastore/tables.json".into()))?,
            )
            .map_err(|e| corrupt(format!("datastore/tables.json: {e}")))?;
            let mut tables = Vec::new();
            for entry in entries {
                let data = files
                    .remove(&format!("datastore/{}.copy", entry.name))
                    .ok_or_else(|| corrupt(format!("no datastore/{}.copy", entry.name)))?;
                tables.push(Table {
                    name: entry.name,
                    columns: entry.columns,
                    data,
                });
            }
            Dump::Export(Export {
                schema_version: manifest.schema_version,
                tables,
            })
        }
    };
    Ok(Archive {
        config: files.remove("config.yaml"),
        manifest,
        dump,
    })
}

/// Loads an archive's database into the (empty) database at `url`, and its configuration
/// into the home.
pub async fn restore(home: &Home, archive: &Archive, url: &str) -> Result<(), Error> {
    match &archive.dump {
        Dump::Sql(sql) => replay(home, sql, url)?,
        Dump::Export(export) => leoflow_postgres::export::import(url, export).await?,
    }
    if let Some(config) = &archive.config {
        let text = String::from_utf8_lossy(config);
        let parsed = serde_yaml_ng::from_str(&text)
            .map_err(|e| Error::Usage(format!("the archive's config.yaml is invalid: {e}")))?;
        home.create()?;
        home.save(&parsed)?;
    }
    Ok(())
}

/// Replays a `pg_dump` SQL file with the system's `psql`.
fn replay(home: &Home, sql: &[u8], url: &str) -> Result<(), Error> {
    let psql = system_tool("psql").ok_or_else(|| {
        Error::Usage(
            "this backup holds a pg_dump SQL file, and restoring it needs psql, which was not found; install the PostgreSQL client programs (Debian/Ubuntu: `sudo apt-get install postgresql-client`, macOS: `brew install libpq`)".into(),
        )
    })?;
    let tmp = home.root().join("restore.sql");
    std::fs::write(&tmp, sql).map_err(|source| Error::Io {
        action: "write",
        path: tmp.clone(),
        source,
    })?;
    let file = tmp.display().to_string();
    let result = run_tool(
        &psql,
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
    result.map(|_| ())
}

/// A system PostgreSQL client program: next to the system's server binaries, else on
/// PATH; never with `LEOFLOW_SYSTEM_POSTGRES=0`.
fn system_tool(name: &str) -> Option<PathBuf> {
    if !system_postgres_allowed() {
        return None;
    }
    let beside = Binaries::find()
        .ok()
        .map(|b| b.dir.join(name))
        .filter(|p| p.is_file());
    beside.or_else(|| {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

fn run_tool(program: &Path, args: &[&str]) -> Result<Vec<u8>, Error> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Usage(format!("cannot run {}: {e}", program.display())))?;
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
            datastore_format: Format::PgDump,
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

        let newer_format = archive(&[("MANIFEST.json", &manifest(3, 1)), ("datastore.sql", b"")]);
        let err = read(newer_format.path()).unwrap_err().to_string();
        assert!(err.contains("upgrade leoflow"), "{err}");

        let ok = archive(&[
            ("MANIFEST.json", &manifest(1, 1)),
            ("datastore.sql", b"SELECT 1;"),
        ]);
        let read_back = read(ok.path()).unwrap();
        assert!(matches!(&read_back.dump, Dump::Sql(sql) if sql == b"SELECT 1;"));
        assert_eq!(read_back.config, None);

        // Format 2: our own export; a table listed without its data is a corrupt archive.
        let copy_manifest = serde_json::to_vec(&Manifest {
            manifest_version: 2,
            leoflow_version: "0.1.0".into(),
            schema_version: 1,
            created_at: "2026-01-01T00:00:00Z".into(),
            datastore_format: Format::Copy,
        })
        .unwrap();
        let tables = br#"[{"name": "dags", "columns": ["dag_id"]}]"#;
        let missing = archive(&[
            ("MANIFEST.json", &copy_manifest),
            ("datastore/tables.json", tables),
        ]);
        let err = read(missing.path()).unwrap_err().to_string();
        assert!(err.contains("no datastore/dags.copy"), "{err}");
        let complete = archive(&[
            ("MANIFEST.json", &copy_manifest),
            ("datastore/tables.json", tables),
            ("datastore/dags.copy", b"d\n"),
        ]);
        let Dump::Export(export) = read(complete.path()).unwrap().dump else {
            panic!("not an export");
        };
        assert_eq!(export.tables[0].name, "dags");
        assert_eq!(export.tables[0].data, b"d\n");
    }
}
