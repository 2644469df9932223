//! Schema migrations: the SQL files of `migrations/` embedded in the binary, applied on
//! start (forward-only), behind a drift check that refuses a database migrated by a newer
//! leoflow. sqlx's migrator holds a Postgres advisory lock while it works, so several
//! processes starting at once apply each migration exactly once.

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Row};

use crate::error::Error;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The highest schema version this build knows.
pub fn schema_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Brings the database up to [`schema_version`], refusing a newer schema.
pub(crate) async fn migrate(options: &PgConnectOptions) -> Result<(), Error> {
    // A dedicated connection: if anything fails half-way, closing it releases the
    // migrator's session-level advisory lock.
    let mut conn = connect(options).await?;
    let result = async {
        refuse_newer(&mut conn).await?;
        MIGRATOR.run_direct(&mut conn).await.map_err(from_migrate)
    }
    .await;
    let _ = conn.close().await;
    result
}

/// Checks, without migrating, that the database is exactly at [`schema_version`].
pub(crate) async fn check(options: &PgConnectOptions) -> Result<(), Error> {
    let mut conn = connect(options).await?;
    let result = async {
        refuse_newer(&mut conn).await?;
        let database = applied_max(&mut conn).await?.unwrap_or(0);
        if database < schema_version() {
            return Err(Error::SchemaTooOld {
                database,
                known: schema_version(),
            });
        }
        Ok(())
    }
    .await;
    let _ = conn.close().await;
    result
}

async fn connect(options: &PgConnectOptions) -> Result<PgConnection, Error> {
    PgConnection::connect_with(options)
        .await
        .map_err(|e| connect_error(options, &e))
}

pub(crate) fn connect_error(options: &PgConnectOptions, e: &sqlx::Error) -> Error {
    Error::Connect {
        target: describe(options),
        message: e.to_string(),
    }
}

/// `host:port/database` or `socket-dir/database`, never the password.
pub(crate) fn describe(options: &PgConnectOptions) -> String {
    let database = options.get_database().unwrap_or("(default database)");
    match options.get_socket() {
        Some(dir) => format!("Unix socket {}, database {database}", dir.display()),
        None => format!(
            "{}:{}, database {database}",
            options.get_host(),
            options.get_port()
        ),
    }
}

async fn refuse_newer(conn: &mut PgConnection) -> Result<(), Error> {
    if let Some(database) = applied_max(conn).await? {
        let known = schema_version();
        if database > known {
            return Err(Error::SchemaTooNew { database, known });
        }
    }
    Ok(())
}

/// The highest applied migration, `None` on a database leoflow never migrated.
pub(crate) async fn applied_max(conn: &mut PgConnection) -> Result<Option<i64>, Error> {
    let exists: bool = sqlx::query("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|e| Error::Migrate {
            message: e.to_string(),
        })?;
    if !exists {
        return Ok(None);
    }
    sqlx::query("SELECT max(version) FROM _sqlx_migrations")
        .fetch_one(&mut *conn)
        .await
        .and_then(|row| row.try_get::<Option<i64>, _>(0))
        .map_err(|e| Error::Migrate {
            message: e.to_string(),
        })
}

fn from_migrate(e: MigrateError) -> Error {
    match e {
        MigrateError::VersionMissing(database) => Error::SchemaTooNew {
            database,
            known: schema_version(),
        },
        MigrateError::VersionMismatch(version) => Error::SchemaModified { version },
        MigrateError::Dirty(version) => Error::SchemaDirty { version },
        other => Error::Migrate {
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_migrations_are_numbered_from_one() {
        let versions: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        assert_eq!(versions.first(), Some(&1));
        assert!(
            versions.windows(2).all(|w| w[1] == w[0] + 1),
            "{versions:?}"
        );
        assert_eq!(schema_version(), *versions.last().unwrap());
    }

    #[test]
    fn drift_message_says_what_to_do() {
        let msg = Error::SchemaTooNew {
            database: 7,
            known: 3,
        }
        .to_string();
        assert_eq!(
            msg,
            "database schema 7 is newer than this leoflow (knows up to 3); upgrade leoflow"
        );
    }
}
