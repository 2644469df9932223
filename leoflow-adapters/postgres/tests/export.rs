//! The logical export (no `pg_dump`): a database's rows, awkward values included, come back
//! identical in a fresh database, identity sequences continue after the loaded rows, and an
//! export from a newer schema is refused.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use leoflow_postgres::export::{export, import};
use leoflow_postgres::testing::TestCluster;
use leoflow_postgres::{schema_version, Error, PostgresConfig};
use sqlx::{Connection, Row};

async fn migrated() -> String {
    let url = TestCluster::shared().fresh_database().await.unwrap();
    PostgresConfig::new(url.clone()).build().await.unwrap();
    url
}

async fn rows(url: &str, query: &str) -> Vec<String> {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query(query)
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect()
}

#[tokio::test]
async fn an_export_loads_into_a_fresh_database_unchanged() {
    let source = migrated().await;
    let mut conn = sqlx::PgConnection::connect(&source).await.unwrap();
    for sql in [
        "INSERT INTO variables (key, value, description) VALUES ('tab', E'a\\tb\\nc\\\\', NULL), ('uni', 'ünï ☃', 'd')",
        "INSERT INTO dags (dag_id, latest_version, created_at, last_registered_at) VALUES ('d', 1, now(), now())",
        "INSERT INTO audit_log (at, event, extra) VALUES (now(), 'one', '{\"k\": [1]}'), (now(), 'two', '{}')",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    let _ = conn.close().await;

    let dump = export(&source).await.unwrap();
    assert_eq!(dump.schema_version, schema_version());
    let names: Vec<&str> = dump.tables.iter().map(|t| t.name.as_str()).collect();
    assert!(!names.contains(&"_sqlx_migrations"), "{names:?}");
    let position = |n: &str| names.iter().position(|t| *t == n).unwrap();
    assert!(position("dags") < position("dag_versions"), "{names:?}");

    let target = TestCluster::shared().fresh_database().await.unwrap();
    import(&target, &dump).await.unwrap();
    PostgresConfig::new(target.clone()).build().await.unwrap();
    for query in [
        "SELECT key || '=' || value || '/' || coalesce(description, '-') FROM variables ORDER BY key",
        "SELECT id::text || event || extra::text FROM audit_log ORDER BY id",
        "SELECT dag_id FROM dags",
    ] {
        assert_eq!(rows(&source, query).await, rows(&target, query).await, "{query}");
    }
    // The identity column continues after the restored rows.
    let mut conn = sqlx::PgConnection::connect(&target).await.unwrap();
    let id: i64 =
        sqlx::query("INSERT INTO audit_log (at, event) VALUES (now(), 'three') RETURNING id")
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .get(0);
    assert_eq!(id, 3);

    let mut newer = dump.clone();
    newer.schema_version = schema_version() + 1;
    let fresh = TestCluster::shared().fresh_database().await.unwrap();
    assert!(matches!(
        import(&fresh, &newer).await,
        Err(Error::SchemaTooNew { .. })
    ));
}
