//! Creating and dropping the database a URL names, through the server's `postgres`
//! maintenance database: what `leoflow lite` and `leoflow db reset` need before
//! [`PostgresConfig::build`](crate::PostgresConfig::build) can migrate it.

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Executor, Row};

use crate::error::Error;
use crate::migrate;
use crate::PostgresConfig;

/// Creates the database `url` names unless it exists; true when it was created.
pub async fn ensure_database(url: &str) -> Result<bool, Error> {
    let (options, name) = target(url)?;
    let mut admin = maintenance(&options).await?;
    let exists: bool = sqlx::query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(&name)
        .fetch_one(&mut admin)
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|e| migrate::connect_error(&options, &e))?;
    if !exists {
        admin
            .execute(format!("CREATE DATABASE {}", quote(&name)).as_str())
            .await
            .map_err(|e| migrate::connect_error(&options, &e))?;
    }
    let _ = admin.close().await;
    Ok(!exists)
}

/// Drops the database `url` names (disconnecting its sessions) and creates it empty.
pub async fn reset_database(url: &str) -> Result<(), Error> {
    let (options, name) = target(url)?;
    let mut admin = maintenance(&options).await?;
    for sql in [
        format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote(&name)),
        format!("CREATE DATABASE {}", quote(&name)),
    ] {
        admin
            .execute(sql.as_str())
            .await
            .map_err(|e| migrate::connect_error(&options, &e))?;
    }
    let _ = admin.close().await;
    Ok(())
}

/// The connection options of `url` and the database it names.
fn target(url: &str) -> Result<(PgConnectOptions, String), Error> {
    let options = PostgresConfig::new(url).connect_options()?;
    let name = options.get_database().unwrap_or("postgres").to_string();
    Ok((options, name))
}

async fn maintenance(options: &PgConnectOptions) -> Result<PgConnection, Error> {
    let admin = options.clone().database("postgres");
    PgConnection::connect_with(&admin)
        .await
        .map_err(|e| migrate::connect_error(options, &e))
}

/// A quoted SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote("leoflow"), "\"leoflow\"");
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }
}
