//! `leoflow db migrate|reset|backup|restore`: Lite's database on the managed cluster (started for the
//! command and stopped after, unless it was already running) or on a DSN.

use std::path::PathBuf;

use leoflow_postgres::PostgresConfig;

use crate::backup;
use crate::cli::{DbArgs, DbCommand};
use crate::home::Home;
use crate::lite::datastore;
use crate::Error;

/// `leoflow db …`.
pub fn run(command: &DbCommand) -> Result<(), Error> {
    match command {
        DbCommand::Migrate(args) => {
            on_database(args, |url| async move { migrate(url).await })?;
            println!(
                "database migrated to schema {}",
                leoflow_postgres::schema_version()
            );
        }
        DbCommand::Reset(args) => {
            if !args.yes {
                return Err(Error::Usage(
                    "`leoflow db reset` deletes every run, log and XCom of Lite's database; pass --yes to confirm".into(),
                ));
            }
            on_database(&args.db, |url| async move {
                leoflow_postgres::reset_database(&url).await?;
                migrate(url).await
            })?;
            println!(
                "database reset and migrated to schema {}",
                leoflow_postgres::schema_version()
            );
        }
        DbCommand::Backup(args) => {
            let home = Home::resolve()?;
            let output = args.output.clone().unwrap_or_else(|| {
                PathBuf::from(format!(
                    "leoflow-backup-{}.tar.gz",
                    chrono::Utc::now().format("%Y-%m-%dT%H%M%SZ")
                ))
            });
            let manifest = on_database(&args.db, |url| async move {
                migrate(url.clone()).await?;
                backup::backup(&home, &url, &output)
                    .await
                    .map(|m| (m, output))
            })?;
            let (manifest, output) = manifest;
            let size = std::fs::metadata(&output).map_or(0, |m| m.len());
            println!(
                "wrote {} ({size} bytes; schema {}, leoflow {}, database {})",
                output.display(),
                manifest.schema_version,
                manifest.leoflow_version,
                match manifest.datastore_format {
                    backup::Format::PgDump => "dumped by pg_dump",
                    backup::Format::Copy => "exported by Leoflow (no pg_dump found)",
                }
            );
        }
        DbCommand::Restore(args) => {
            let home = Home::resolve()?;
            let archive = backup::read(&args.input)?;
            if !args.force && home.config_file().exists() {
                return Err(Error::Usage(format!(
                    "{} is already set up; restoring replaces its configuration and every run, log and XCom: pass --force to confirm",
                    home.root().display()
                )));
            }
            let schema = archive.manifest.schema_version;
            on_database(&args.db, |url| async move {
                leoflow_postgres::reset_database(&url).await?;
                backup::restore(&home, &archive, &url).await?;
                migrate(url).await
            })?;
            println!("restored {} (schema {schema})", args.input.display());
        }
    }
    Ok(())
}

/// Creates the database if missing and applies the migrations (with the drift check).
async fn migrate(url: String) -> Result<(), Error> {
    leoflow_postgres::ensure_database(&url).await?;
    PostgresConfig::new(url).build().await?;
    Ok(())
}

/// Runs `work` on the database `args` names, starting (and then stopping) the managed
/// cluster if needed.
fn on_database<T, F, Fut>(args: &DbArgs, work: F) -> Result<T, Error>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let home = Home::resolve()?;
    let docker = matches!(
        args.postgres,
        datastore::Choice::Auto | datastore::Choice::Docker
    )
    .then(crate::docker::probe);
    let store = datastore::resolve(&args.postgres, &home, docker.as_ref())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(work(store.url.clone()));
    if let Some(managed) = &store.managed {
        managed.stop()?;
    }
    result
}
