//! `MetaStore` on Postgres: users, variables, connections (ciphertext only), the audit
//! log and DAG import errors.

use async_trait::async_trait;
use leoflow_ports::datastore::{
    AuditEvent, Connection, Error, ImportError, MetaStore, Result, User, Variable,
};
use sqlx::postgres::PgRow;

use super::{count, get, json_text, offset, to_json_text, PgStore};
use crate::error::{corrupt, datastore as db};

fn user(row: &PgRow) -> Result<User> {
    Ok(User {
        username: get(row, "username")?,
        password_hash: get(row, "password_hash")?,
        role: get(row, "role")?,
        tenant: get(row, "tenant")?,
        is_active: get(row, "is_active")?,
        created_at: get(row, "created_at")?,
    })
}

fn variable(row: &PgRow) -> Result<Variable> {
    Ok(Variable {
        key: get(row, "key")?,
        value: get(row, "value")?,
        description: get(row, "description")?,
    })
}

fn connection(row: &PgRow) -> Result<Connection> {
    let port: Option<i32> = get(row, "port")?;
    Ok(Connection {
        conn_id: get(row, "conn_id")?,
        conn_type: get(row, "conn_type")?,
        description: get(row, "description")?,
        host: get(row, "host")?,
        login: get(row, "login")?,
        schema: get(row, "schema")?,
        port: port
            .map(|p| u16::try_from(p).map_err(|_| corrupt(format!("connection port {p}"))))
            .transpose()?,
        password_ciphertext: get(row, "password_ciphertext")?,
        extra_ciphertext: get(row, "extra_ciphertext")?,
    })
}

fn audit_event(row: &PgRow) -> Result<AuditEvent> {
    let id: i64 = get(row, "id")?;
    Ok(AuditEvent {
        id: u64::try_from(id).map_err(|_| corrupt(format!("audit id {id}")))?,
        at: get(row, "at")?,
        actor: get(row, "actor")?,
        event: get(row, "event")?,
        dag_id: get(row, "dag_id")?,
        run_id: get(row, "run_id")?,
        task_id: get(row, "task_id")?,
        extra: json_text(row, "extra")?,
    })
}

fn import_error(row: &PgRow) -> Result<ImportError> {
    Ok(ImportError {
        filename: get(row, "filename")?,
        message: get(row, "message")?,
        at: get(row, "at")?,
    })
}

const USER_COLUMNS: &str = "username, password_hash, role, tenant, is_active, created_at";
const CONNECTION_COLUMNS: &str = "conn_id, conn_type, description, host, login, schema, port, \
    password_ciphertext, extra_ciphertext";
const AUDIT_COLUMNS: &str = "id, at, actor, event, dag_id, run_id, task_id, extra::text AS extra";

#[async_trait]
impl MetaStore for PgStore {
    async fn put_user(&self, u: &User) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash,
                role = EXCLUDED.role, tenant = EXCLUDED.tenant,
                is_active = EXCLUDED.is_active, created_at = EXCLUDED.created_at"
        ))
        .bind(&u.username)
        .bind(&u.password_hash)
        .bind(&u.role)
        .bind(&u.tenant)
        .bind(u.is_active)
        .bind(u.created_at)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn get_user(&self, username: &str) -> Result<Option<User>> {
        sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username = $1"
        ))
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .as_ref()
        .map(user)
        .transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY username"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .iter()
        .map(user)
        .collect()
    }

    async fn put_variable(&self, var: &Variable) -> Result<()> {
        sqlx::query(
            "INSERT INTO variables (key, value, description) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE
                SET value = EXCLUDED.value, description = EXCLUDED.description",
        )
        .bind(&var.key)
        .bind(&var.value)
        .bind(&var.description)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn get_variable(&self, key: &str) -> Result<Option<Variable>> {
        sqlx::query("SELECT key, value, description FROM variables WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .as_ref()
            .map(variable)
            .transpose()
    }

    async fn list_variables(&self) -> Result<Vec<Variable>> {
        sqlx::query("SELECT key, value, description FROM variables ORDER BY key")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(variable)
            .collect()
    }

    async fn delete_variable(&self, key: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM variables WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(format!("variable `{key}`")));
        }
        Ok(())
    }

    async fn put_connection(&self, c: &Connection) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO connections ({CONNECTION_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (conn_id) DO UPDATE SET conn_type = EXCLUDED.conn_type,
                description = EXCLUDED.description, host = EXCLUDED.host,
                login = EXCLUDED.login, schema = EXCLUDED.schema, port = EXCLUDED.port,
                password_ciphertext = EXCLUDED.password_ciphertext,
                extra_ciphertext = EXCLUDED.extra_ciphertext"
        ))
        .bind(&c.conn_id)
        .bind(&c.conn_type)
        .bind(&c.description)
        .bind(&c.host)
        .bind(&c.login)
        .bind(&c.schema)
        .bind(c.port.map(i32::from))
        .bind(&c.password_ciphertext)
        .bind(&c.extra_ciphertext)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn get_connection(&self, conn_id: &str) -> Result<Option<Connection>> {
        sqlx::query(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections WHERE conn_id = $1"
        ))
        .bind(conn_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .as_ref()
        .map(connection)
        .transpose()
    }

    async fn list_connections(&self) -> Result<Vec<Connection>> {
        sqlx::query(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections ORDER BY conn_id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .iter()
        .map(connection)
        .collect()
    }

    async fn delete_connection(&self, conn_id: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM connections WHERE conn_id = $1")
            .bind(conn_id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(format!("connection `{conn_id}`")));
        }
        Ok(())
    }

    async fn append_audit(&self, e: &AuditEvent) -> Result<u64> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO audit_log (at, actor, event, dag_id, run_id, task_id, extra)
             VALUES ($1, $2, $3, $4, $5, $6, $7::json) RETURNING id",
        )
        .bind(e.at)
        .bind(&e.actor)
        .bind(&e.event)
        .bind(&e.dag_id)
        .bind(&e.run_id)
        .bind(&e.task_id)
        .bind(to_json_text(&e.extra))
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        u64::try_from(id).map_err(|_| corrupt(format!("audit id {id}")))
    }

    async fn list_audit(
        &self,
        dag_id: Option<&str>,
        limit: usize,
        offset_rows: usize,
    ) -> Result<(Vec<AuditEvent>, usize)> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (where_sql, first) = if dag_id.is_some() {
            ("WHERE dag_id = $1", 2)
        } else {
            ("", 1)
        };
        let list_sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log {where_sql}
             ORDER BY id DESC LIMIT ${first} OFFSET ${}",
            first + 1
        );
        let count_sql = format!("SELECT count(*) FROM audit_log {where_sql}");
        let mut list = sqlx::query(&list_sql);
        let mut total = sqlx::query_scalar::<_, i64>(&count_sql);
        if let Some(dag_id) = dag_id {
            list = list.bind(dag_id);
            total = total.bind(dag_id);
        }
        let rows = list
            .bind(limit)
            .bind(offset(offset_rows))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let total = total.fetch_one(&self.pool).await.map_err(db)?;
        let events = rows.iter().map(audit_event).collect::<Result<_>>()?;
        Ok((events, count(total)))
    }

    async fn put_import_error(&self, err: &ImportError) -> Result<()> {
        sqlx::query(
            "INSERT INTO import_errors (filename, message, at) VALUES ($1, $2, $3)
             ON CONFLICT (filename) DO UPDATE SET message = EXCLUDED.message, at = EXCLUDED.at",
        )
        .bind(&err.filename)
        .bind(&err.message)
        .bind(err.at)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn delete_import_error(&self, filename: &str) -> Result<()> {
        sqlx::query("DELETE FROM import_errors WHERE filename = $1")
            .bind(filename)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn list_import_errors(&self) -> Result<Vec<ImportError>> {
        sqlx::query("SELECT filename, message, at FROM import_errors ORDER BY filename")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(import_error)
            .collect()
    }
}
