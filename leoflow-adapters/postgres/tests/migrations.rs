//! Embedded migrations on a real server: applied once even when several processes start
//! together, and refused with a clear message when the database does not match this build.

use leoflow_postgres::testing::TestCluster;
use leoflow_postgres::{schema_version, Error, PostgresConfig};
use sqlx::Connection;

async fn fresh_url() -> String {
    TestCluster::shared()
        .fresh_database()
        .await
        .expect("a fresh database")
}

async fn sql(url: &str, statement: &str) {
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .expect("the test connects");
    sqlx::query(statement)
        .execute(&mut conn)
        .await
        .expect("the statement runs");
}

/// Four processes start at once on a new database, three times over: sqlx's migrator
/// serialises them on an advisory lock, so every build succeeds and each migration is
/// recorded once (without the lock, concurrent `CREATE TABLE`s would fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_starts_migrate_once() {
    for _ in 0..3 {
        let url = fresh_url().await;
        let builds: Vec<_> = (0..4)
            .map(|_| {
                let config = PostgresConfig::new(url.clone());
                tokio::spawn(async move { config.build().await.map(|_| ()) })
            })
            .collect();
        for b in builds {
            b.await.unwrap().unwrap();
        }
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT version, count(*) FROM _sqlx_migrations GROUP BY version ORDER BY version",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let expected: Vec<(i64, i64)> = (1..=schema_version()).map(|v| (v, 1)).collect();
        assert_eq!(rows, expected);
    }
}

#[tokio::test]
async fn starting_again_changes_nothing() {
    let url = fresh_url().await;
    PostgresConfig::new(url.clone()).build().await.unwrap();
    PostgresConfig::new(url.clone()).build().await.unwrap();
    let mut off = PostgresConfig::new(url);
    off.migrate = false;
    off.build().await.unwrap();
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_leoflow_is_refused() {
    let url = fresh_url().await;
    PostgresConfig::new(url.clone()).build().await.unwrap();
    sql(
        &url,
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (999, 'from the future', true, '\\x00', 0)",
    )
    .await;
    let err = PostgresConfig::new(url.clone()).build().await.unwrap_err();
    assert!(
        matches!(err, Error::SchemaTooNew { database: 999, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "database schema 999 is newer than this leoflow (knows up to {}); upgrade leoflow",
            schema_version()
        )
    );
    let mut off = PostgresConfig::new(url);
    off.migrate = false;
    assert!(matches!(
        off.build().await.unwrap_err(),
        Error::SchemaTooNew { .. }
    ));
}

#[tokio::test]
async fn an_unmigrated_database_is_refused_when_migrations_are_off() {
    let mut off = PostgresConfig::new(fresh_url().await);
    off.migrate = false;
    let err = off.build().await.unwrap_err();
    assert!(
        matches!(err, Error::SchemaTooOld { database: 0, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("start once with migrations enabled"),
        "{err}"
    );
}

#[tokio::test]
async fn a_migration_edited_after_it_was_applied_is_refused() {
    let url = fresh_url().await;
    PostgresConfig::new(url.clone()).build().await.unwrap();
    sql(
        &url,
        "UPDATE _sqlx_migrations SET checksum = '\\x00' WHERE version = 1",
    )
    .await;
    let err = PostgresConfig::new(url).build().await.unwrap_err();
    assert!(
        matches!(err, Error::SchemaModified { version: 1 }),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_named_without_its_password() {
    let config = PostgresConfig::new(
        "postgres://leo:s3cret@localhost/leoflow?host=/nonexistent-leoflow-socket-dir",
    );
    let err = config.build().await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(
        message.contains("Unix socket /nonexistent-leoflow-socket-dir"),
        "{message}"
    );
    assert!(
        message.contains("check that the server is running"),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
}

/// CRC-32 (ISO-HDLC), as sqlx derives its migration lock id from the database name.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Holds the migrator's advisory lock (sqlx 0.8: `0x3d32ad9e * crc32(database name)`) the
/// way a process in the middle of migrating would: a second process waits for it instead of
/// migrating alongside. If sqlx changes its lock id this test fails, which is the point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_waits_for_a_migration_in_progress() {
    let url = fresh_url().await;
    let mut holder = sqlx::PgConnection::connect(&url)
        .await
        .expect("the test connects");
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut holder)
        .await
        .expect("current_database");
    let lock_id = 0x3d32_ad9e_i64 * i64::from(crc32(database.as_bytes()));
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(lock_id)
        .execute(&mut holder)
        .await
        .unwrap();

    let config = PostgresConfig::new(url);
    let start = tokio::spawn(async move { config.build().await.map(|_| ()) });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !start.is_finished(),
        "migrated while another migration held the lock"
    );
    let waiting: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks
         WHERE locktype = 'advisory' AND NOT granted
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(&mut holder)
    .await
    .unwrap();
    assert_eq!(
        waiting, 1,
        "the starting process should be waiting on the lock"
    );

    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(lock_id)
        .execute(&mut holder)
        .await
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), start)
        .await
        .expect("the start never finished after the lock was released")
        .unwrap()
        .unwrap();
}
