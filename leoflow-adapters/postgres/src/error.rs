//! Errors: the adapter's own start-up errors (bad URL, unreachable server, schema drift),
//! and the translation of sqlx errors into each port's error kinds, so the engine branches
//! on meaning (conflict, not found, retry later) rather than on SQLSTATE codes.

use leoflow_ports::{datastore, lock, log, notify, xcom};

/// Why the adapter could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("invalid Postgres URL `{url}`: {message}; expected postgres://USER:PASSWORD@HOST:PORT/DATABASE, or postgres://USER@localhost/DATABASE?host=/socket/dir for a Unix socket")]
    InvalidUrl { url: String, message: String },
    #[error("cannot connect to Postgres at {target}: {message}; check that the server is running and that the URL, user and password are right")]
    Connect { target: String, message: String },
    #[error("database schema {database} is newer than this leoflow (knows up to {known}); upgrade leoflow")]
    SchemaTooNew { database: i64, known: i64 },
    #[error("database schema {database} is older than this leoflow (needs {known}) and migrations are disabled; start once with migrations enabled")]
    SchemaTooOld { database: i64, known: i64 },
    #[error("database migration {version} differs from the one built into this leoflow; the migration was edited after it was applied: restore it, or use a fresh database")]
    SchemaModified { version: i64 },
    #[error("database migration {version} failed half-way and left the schema dirty; fix the database by hand (see the `_sqlx_migrations` table) and start again")]
    SchemaDirty { version: i64 },
    #[error("applying database migrations failed: {message}")]
    Migrate { message: String },
    #[error("exporting or importing the database failed: {message}")]
    Export { message: String },
}

/// What a driver error means, independent of the port it surfaced in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Conflict,
    NotFound,
    Invalid,
    Unavailable { retryable: bool },
}

/// Classifies a sqlx error and renders a message that says what went wrong.
pub(crate) fn classify(e: sqlx::Error) -> (Kind, String) {
    use sqlx::Error as E;
    match e {
        E::Database(db) => {
            let code = db.code().map(std::borrow::Cow::into_owned).unwrap_or_default();
            let kind = match code.as_str() {
                "23505" => Kind::Conflict,
                "23503" => Kind::NotFound,
                // Data exceptions (bad value, "\u0000" in jsonb, out of range) and
                // constraint checks: the request carried something the schema refuses.
                c if c.starts_with("22") || c == "23502" || c == "23514" => Kind::Invalid,
                // Serialization failure, deadlock, lock timeout, statement timeout, too
                // many connections, server shutting down or starting: try again later.
                "40001" | "40P01" | "55P03" | "57014" | "57P01" | "57P02" | "57P03" => {
                    Kind::Unavailable { retryable: true }
                }
                c if c.starts_with("08") || c.starts_with("53") => {
                    Kind::Unavailable { retryable: true }
                }
                _ => Kind::Unavailable { retryable: false },
            };
            let message = if code == "22P05" {
                "a JSON value contains the character U+0000, which Postgres cannot store in a \
                 jsonb column; remove it"
                    .to_string()
            } else {
                format!("Postgres error {code}: {}", db.message())
            };
            (kind, message)
        }
        E::RowNotFound => (Kind::NotFound, "row not found".into()),
        E::Io(io) => (
            Kind::Unavailable { retryable: true },
            format!("connection to Postgres failed ({io}); retry once the server is reachable"),
        ),
        E::Tls(tls) => (
            Kind::Unavailable { retryable: true },
            format!("TLS error talking to Postgres ({tls})"),
        ),
        E::Protocol(p) => (
            Kind::Unavailable { retryable: true },
            format!("unexpected reply from Postgres ({p}); the connection is reset"),
        ),
        E::PoolTimedOut => (
            Kind::Unavailable { retryable: true },
            "timed out waiting for a free Postgres connection; the server may be down or overloaded, or max_connections is too low".into(),
        ),
        E::PoolClosed => (
            Kind::Unavailable { retryable: false },
            "the Postgres connection pool is closed (the adapter is shutting down)".into(),
        ),
        e @ (E::ColumnDecode { .. } | E::Decode(_) | E::ColumnNotFound(_) | E::TypeNotFound { .. }) => (
            Kind::Unavailable { retryable: false },
            format!("unexpected data in the database ({e}); the schema does not match this leoflow"),
        ),
        other => (Kind::Unavailable { retryable: false }, other.to_string()),
    }
}

pub(crate) fn datastore(e: sqlx::Error) -> datastore::Error {
    let (kind, message) = classify(e);
    match kind {
        Kind::Conflict => datastore::Error::Conflict { what: message },
        Kind::NotFound => datastore::Error::NotFound { what: message },
        Kind::Invalid => datastore::Error::Invalid { message },
        Kind::Unavailable { retryable } => datastore::Error::Unavailable { message, retryable },
    }
}

pub(crate) fn xcom(e: sqlx::Error) -> xcom::Error {
    let (kind, message) = classify(e);
    xcom::Error::Unavailable {
        message,
        retryable: retryable(kind),
    }
}

pub(crate) fn log(e: sqlx::Error) -> log::Error {
    let (kind, message) = classify(e);
    log::Error::Unavailable {
        message,
        retryable: retryable(kind),
    }
}

pub(crate) fn notify(e: sqlx::Error) -> notify::Error {
    let (kind, message) = classify(e);
    notify::Error::Unavailable {
        message,
        retryable: retryable(kind),
    }
}

pub(crate) fn lock(e: sqlx::Error) -> lock::Error {
    let (kind, message) = classify(e);
    lock::Error::Unavailable {
        message,
        retryable: retryable(kind),
    }
}

fn retryable(kind: Kind) -> bool {
    matches!(kind, Kind::Unavailable { retryable: true })
}

/// A value that does not fit its column (a `u32` above `i32::MAX`, …).
pub(crate) fn out_of_range(what: &str, value: impl std::fmt::Display) -> datastore::Error {
    datastore::Error::Invalid {
        message: format!("{what} {value} is too large to store in Postgres"),
    }
}

/// A stored value this build cannot read back (an unknown state name, a negative count).
pub(crate) fn corrupt(message: impl std::fmt::Display) -> datastore::Error {
    datastore::Error::Unavailable {
        message: format!(
            "unexpected data in the database: {message}; the schema does not match this leoflow"
        ),
        retryable: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(e: sqlx::Error, kind: Kind, says: &str) {
        let (got, message) = classify(e);
        assert_eq!(got, kind, "{message}");
        assert!(message.contains(says), "{message}");
    }

    fn io() -> sqlx::Error {
        sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        ))
    }

    #[test]
    fn driver_errors_map_to_meanings() {
        let retry = Kind::Unavailable { retryable: true };
        let fatal = Kind::Unavailable { retryable: false };
        check(io(), retry, "retry once the server is reachable");
        check(sqlx::Error::PoolTimedOut, retry, "max_connections");
        check(sqlx::Error::PoolClosed, fatal, "shutting down");
        check(sqlx::Error::RowNotFound, Kind::NotFound, "not found");
        check(
            sqlx::Error::ColumnNotFound("x".into()),
            fatal,
            "does not match",
        );
    }

    #[test]
    fn each_port_keeps_the_kind() {
        assert!(matches!(
            datastore(io()),
            datastore::Error::Unavailable {
                retryable: true,
                ..
            }
        ));
        assert!(matches!(
            lock(io()),
            lock::Error::Unavailable {
                retryable: true,
                ..
            }
        ));
        assert!(matches!(
            xcom(sqlx::Error::PoolClosed),
            xcom::Error::Unavailable {
                retryable: false,
                ..
            }
        ));
    }
}
