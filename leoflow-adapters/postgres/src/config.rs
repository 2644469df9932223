//! `PostgresConfig`: what the adapter needs to know, and `build`, which connects, applies
//! the migrations and hands out every port implementation over one connection pool.

use std::time::Duration;

use leoflow_ports::datastore;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};

use crate::datastore::PgStore;
use crate::error::Error;
use crate::listen::ListenHub;
use crate::lock::PgLocks;
use crate::log::PgLogs;
use crate::migrate;
use crate::notify::PgNotifier;
use crate::xcom::PgXCom;

/// Settings of the Postgres adapter. `PostgresConfig::new(url)` gives the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE`; a Unix socket directory goes in
    /// `?host=/path`.
    pub url: String,
    /// Pool size shared by the datastore, XCom, logs and publishing (default 10). The
    /// LISTEN connection and one connection per held lease come on top.
    pub max_connections: u32,
    /// Connections kept open when idle (default 1).
    pub min_connections: u32,
    /// How long a query waits for a free connection before failing as unavailable.
    pub acquire_timeout: Duration,
    /// A pooled connection idle for longer than this is pinged before it is handed out, so
    /// connections killed by a server restart are replaced transparently (a restart always
    /// idles them longer than that). Busy connections skip the ping, which would cost a
    /// round trip per query. Default 100 ms; `None` never pings (a dead connection then
    /// fails one call as retryable `Unavailable`).
    pub ping_idle_after: Option<Duration>,
    /// XCom value cap, compact JSON bytes (default 256 KiB).
    pub xcom_max_value_bytes: usize,
    /// How long an XCom lives (default 7 days).
    pub xcom_ttl: Duration,
    /// How often a log follower re-reads when no NOTIFY arrives (default 1 s).
    pub log_poll_interval: Duration,
    /// How often the LISTEN connection pings itself; three missed intervals count as a
    /// dead connection (default 10 s).
    pub notify_ping_interval: Duration,
    /// Apply migrations on `build` (default true). When false, `build` only checks that
    /// the schema is exactly the one this build expects.
    pub migrate: bool,
}

impl PostgresConfig {
    pub fn new(url: impl Into<String>) -> PostgresConfig {
        PostgresConfig {
            url: url.into(),
            max_connections: 10,
            min_connections: 1,
            acquire_timeout: Duration::from_secs(10),
            ping_idle_after: Some(Duration::from_millis(100)),
            xcom_max_value_bytes: leoflow_ports::xcom::DEFAULT_MAX_VALUE_BYTES,
            xcom_ttl: Duration::from_secs(7 * 24 * 3600),
            log_poll_interval: Duration::from_secs(1),
            notify_ping_interval: Duration::from_secs(10),
            migrate: true,
        }
    }

    /// The connection options `url` describes, tagged with application name `leoflow`.
    pub fn connect_options(&self) -> Result<PgConnectOptions, Error> {
        let options: PgConnectOptions =
            self.url
                .parse()
                .map_err(|e: sqlx::Error| Error::InvalidUrl {
                    url: redact(&self.url),
                    message: e.to_string(),
                })?;
        Ok(options.application_name("leoflow"))
    }

    /// Connects, migrates (or checks the schema) and returns every adapter.
    pub async fn build(&self) -> Result<PostgresAdapters, Error> {
        let options = self.connect_options()?;
        if self.migrate {
            migrate::migrate(&options).await?;
        } else {
            migrate::check(&options).await?;
        }
        let ping_idle_after = self.ping_idle_after;
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections.max(1))
            .min_connections(self.min_connections.min(self.max_connections))
            .acquire_timeout(self.acquire_timeout)
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                Box::pin(async move {
                    if ping_idle_after.is_some_and(|after| meta.idle_for > after) {
                        // An error closes this connection; the pool opens a fresh one.
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options.clone())
            .await
            .map_err(|e| migrate::connect_error(&options, &e))?;
        let hub = ListenHub::new(options.clone(), pool.clone(), self.notify_ping_interval);
        Ok(PostgresAdapters {
            store: PgStore::new(pool.clone()),
            xcom: PgXCom::new(pool.clone(), self.xcom_max_value_bytes, self.xcom_ttl),
            locks: PgLocks::new(options.clone()),
            logs: PgLogs::new(pool.clone(), hub.clone(), self.log_poll_interval),
            notifier: PgNotifier::new(options, hub),
            health: PgHealthcheck { pool },
        })
    }
}

/// The URL with its password replaced, for error messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// Every port implementation the adapter provides, sharing one pool.
#[derive(Debug, Clone)]
pub struct PostgresAdapters {
    pub store: PgStore,
    pub xcom: PgXCom,
    pub locks: PgLocks,
    pub logs: PgLogs,
    pub notifier: PgNotifier,
    pub health: PgHealthcheck,
}

impl PostgresAdapters {
    pub fn pool(&self) -> &PgPool {
        self.store.pool()
    }
}

/// Answers "is the database reachable?" for readiness probes.
#[derive(Debug, Clone)]
pub struct PgHealthcheck {
    pool: PgPool,
}

impl PgHealthcheck {
    pub async fn check(&self) -> Result<(), datastore::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(crate::error::datastore)?;
        Ok(())
    }

    /// The database answers and has every migration this build knows applied (a newer
    /// schema, from a newer leoflow mid-upgrade, also passes).
    pub async fn check_schema(&self) -> Result<(), Error> {
        let mut conn = self.pool.acquire().await.map_err(|e| Error::Migrate {
            message: e.to_string(),
        })?;
        let database = migrate::applied_max(&mut conn).await?.unwrap_or(0);
        if database < migrate::schema_version() {
            return Err(Error::SchemaTooOld {
                database,
                known: migrate::schema_version(),
            });
        }
        Ok(())
    }
}

/// Applies the embedded migrations to the database of `config` and returns the schema
/// version it is at (`leoflow-server migrate`). Safe to run from several processes at once.
pub async fn migrate_database(config: &PostgresConfig) -> Result<i64, Error> {
    migrate::migrate(&config.connect_options()?).await?;
    Ok(migrate::schema_version())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_error_messages() {
        let cfg = PostgresConfig::new("postgres://leo:s3cret@db:99999/x");
        let err = cfg.connect_options().unwrap_err().to_string();
        assert!(!err.contains("s3cret"), "{err}");
        assert!(err.contains("leo:***@db"), "{err}");
        assert_eq!(redact("postgres://u@h/d"), "postgres://u@h/d");
    }

    #[test]
    fn socket_urls_parse() {
        let cfg = PostgresConfig::new("postgres://postgres@localhost/leoflow?host=/tmp/pg");
        let options = cfg.connect_options().unwrap();
        assert_eq!(
            options.get_socket().map(|p| p.display().to_string()),
            Some("/tmp/pg".into())
        );
        assert!(migrate::describe(&options).contains("/tmp/pg"));
    }
}
