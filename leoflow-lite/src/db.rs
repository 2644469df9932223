//! `leoflow db migrate|reset`: Lite's database on the managed cluster (started for the
//! command and stopped after, unless it was already running) or on a DSN.

use leoflow_postgres::PostgresConfig;

use crate::cli::{DbArgs, DbCommand};
use crate::home::Home;
use crate::lite::datastore;
use crate::Error;

/// `leoflow db …`.
pub fn run(command: &DbCommand) -> Result<(), Error> {
    let (args, reset) = match command {
        DbCommand::Migrate(args) => (args, false),
        DbCommand::Reset(args) => {
            if !args.yes {
                return Err(Error::Usage(
                    "`leoflow db reset` deletes every run, log and XCom of Lite's database; pass --yes to confirm".into(),
                ));
            }
            (&args.db, true)
        }
    };
    on_database(args, |url| async move {
        if reset {
            leoflow_postgres::reset_database(&url).await?;
        } else {
            leoflow_postgres::ensure_database(&url).await?;
        }
        PostgresConfig::new(url).build().await?;
        Ok(())
    })?;
    if reset {
        println!(
            "database reset and migrated to schema {}",
            leoflow_postgres::schema_version()
        );
    } else {
        println!(
            "database migrated to schema {}",
            leoflow_postgres::schema_version()
        );
    }
    Ok(())
}

/// Runs `work` on the database `args` names, starting (and then stopping) the managed
/// cluster if needed.
fn on_database<F, Fut>(args: &DbArgs, work: F) -> Result<(), Error>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    let home = Home::resolve()?;
    let store = datastore::resolve(&args.postgres, &home)?;
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
