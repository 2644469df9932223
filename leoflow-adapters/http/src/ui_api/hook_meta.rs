//! `GET /ui/connections/hook_meta`: the connection types the UI's connection form offers,
//! with the standard fields each one hides. Leoflow stores connections of any type; this
//! list only drives the form.

use axum::Json;
use serde_json::{json, Map, Value};

/// (type, display name, Airflow hook class, standard fields the form hides).
const TYPES: &[(&str, &str, &str, &[&str])] = &[
    ("generic", "Generic", "", &[]),
    (
        "http",
        "HTTP",
        "airflow.providers.http.hooks.http.HttpHook",
        &[],
    ),
    (
        "postgres",
        "Postgres",
        "airflow.providers.postgres.hooks.postgres.PostgresHook",
        &[],
    ),
    (
        "mysql",
        "MySQL",
        "airflow.providers.mysql.hooks.mysql.MySqlHook",
        &[],
    ),
    (
        "sqlite",
        "SQLite",
        "airflow.providers.sqlite.hooks.sqlite.SqliteHook",
        &["login", "password", "port", "url_schema"],
    ),
    (
        "mssql",
        "Microsoft SQL Server",
        "airflow.providers.microsoft.mssql.hooks.mssql.MsSqlHook",
        &[],
    ),
    (
        "oracle",
        "Oracle",
        "airflow.providers.oracle.hooks.oracle.OracleHook",
        &[],
    ),
    (
        "redis",
        "Redis",
        "airflow.providers.redis.hooks.redis.RedisHook",
        &["url_schema"],
    ),
    (
        "mongo",
        "MongoDB",
        "airflow.providers.mongo.hooks.mongo.MongoHook",
        &[],
    ),
    (
        "aws",
        "Amazon Web Services",
        "airflow.providers.amazon.aws.hooks.base_aws.AwsGenericHook",
        &["host", "port", "url_schema"],
    ),
    (
        "google_cloud_platform",
        "Google Cloud",
        "airflow.providers.google.common.hooks.base_google.GoogleBaseHook",
        &["host", "login", "password", "port", "url_schema"],
    ),
    (
        "snowflake",
        "Snowflake",
        "airflow.providers.snowflake.hooks.snowflake.SnowflakeHook",
        &["url_schema"],
    ),
    (
        "ssh",
        "SSH",
        "airflow.providers.ssh.hooks.ssh.SSHHook",
        &["url_schema"],
    ),
    (
        "ftp",
        "FTP",
        "airflow.providers.ftp.hooks.ftp.FTPHook",
        &["url_schema"],
    ),
    (
        "sftp",
        "SFTP",
        "airflow.providers.sftp.hooks.sftp.SFTPHook",
        &["url_schema"],
    ),
    (
        "kafka",
        "Apache Kafka",
        "airflow.providers.apache.kafka.hooks.base.KafkaBaseHook",
        &["login", "password", "port", "url_schema"],
    ),
];

const STANDARD_FIELDS: [&str; 6] = [
    "description",
    "url_schema",
    "host",
    "port",
    "login",
    "password",
];

/// `GET /ui/connections/hook_meta`.
pub async fn list() -> Json<Value> {
    let items = TYPES
        .iter()
        .map(|(kind, name, class, hidden)| {
            let fields: Map<String, Value> = STANDARD_FIELDS
                .iter()
                .map(|f| {
                    (
                        (*f).to_string(),
                        json!({"hidden": hidden.contains(f), "title": null, "placeholder": null}),
                    )
                })
                .collect();
            let default_conn = if *kind == "google_cloud_platform" {
                "google_cloud_default".to_string()
            } else {
                format!("{kind}_default")
            };
            json!({
                "connection_type": kind,
                "hook_class_name": (!class.is_empty()).then_some(*class),
                "default_conn_name": default_conn,
                "hook_name": name,
                "standard_fields": fields,
                "extra_fields": {},
            })
        })
        .collect();
    Json(Value::Array(items))
}
