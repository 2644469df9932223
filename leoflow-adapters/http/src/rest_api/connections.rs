//! `/api/v2/connections`: create, read, update, delete and list connections. The password
//! and extra are encrypted with AES-256-GCM (`crate::cipher`) before the datastore sees
//! them; the password is write-only (always `null` in responses), the extra is returned
//! decrypted. An omitted or empty password in a PATCH keeps the stored one, since
//! Airflow's UI never has it to send back.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use leoflow_ports::datastore::{self, Connection};
use serde::Deserialize;
use serde_json::{json, Value};

use super::query::{like, Params};
use super::{shapes, Api};
use crate::problem::{datastore_problem, Problem};

fn connection(api: &Api, c: &Connection) -> Result<Value, Problem> {
    let extra = c
        .extra_ciphertext
        .as_deref()
        .map(|x| api.cipher.decrypt(x))
        .transpose()
        .map_err(|e| Problem::internal(format!("connection {:?}: {e}", c.conn_id)))?;
    Ok(json!({
        "connection_id": c.conn_id,
        "conn_type": c.conn_type,
        "description": c.description,
        "host": c.host,
        "login": c.login,
        "schema": c.schema,
        "port": c.port,
        "password": null,
        "extra": extra,
        "team_name": null,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectionBody {
    connection_id: String,
    conn_type: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    login: Option<String>,
    #[serde(default)]
    schema: Option<String>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    extra: Option<String>,
    #[serde(default)]
    team_name: Option<String>,
}

impl ConnectionBody {
    fn check(&self) -> Result<(), Problem> {
        let id = &self.connection_id;
        if id.is_empty()
            || id.len() > 200
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(Problem::bad_request(format!(
                "connection_id {id:?} is not usable: use 1 to 200 letters, digits, `_`, `-` or `.`"
            )));
        }
        if self.conn_type.trim().is_empty() {
            return Err(Problem::bad_request(
                "conn_type is required (for example postgres, http, mysql)",
            ));
        }
        if self.team_name.is_some() {
            return Err(Problem::bad_request(
                "team_name is not supported: Leoflow has no multi-team mode",
            ));
        }
        if let Some(extra) = &self.extra {
            if !extra.trim().is_empty() && serde_json::from_str::<Value>(extra).is_err() {
                return Err(Problem::bad_request(
                    "extra must be a JSON document in a string, for example \"{\\\"timeout\\\": 5}\"",
                ));
            }
        }
        Ok(())
    }
}

async fn load(api: &Api, id: &str) -> Result<Connection, Problem> {
    api.engine
        .datastore()
        .get_connection(id)
        .await
        .map_err(datastore_problem)?
        .ok_or_else(|| {
            Problem::not_found(format!(
                "connection {id:?} not found; create it with POST /api/v2/connections"
            ))
        })
}

/// `GET /api/v2/connections`.
pub async fn list(State(api): State<Arc<Api>>, q: RawQuery) -> Result<Json<Value>, Problem> {
    let q = Params::from(q);
    let page = q.page()?;
    let order = q.order_by(&[
        "connection_id",
        "conn_type",
        "description",
        "host",
        "port",
        "id",
    ])?;
    let pattern = q.one("connection_id_pattern");
    let mut conns = api
        .engine
        .datastore()
        .list_connections()
        .await
        .map_err(datastore_problem)?;
    conns.retain(|c| pattern.is_none_or(|p| like(p, &c.conn_id)));
    if matches!(order, Some((_, true))) {
        conns.reverse();
    }
    let total = conns.len();
    let items = page
        .apply(conns)
        .iter()
        .map(|c| connection(&api, c))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(shapes::collection("connections", items, total)))
}

/// `GET /api/v2/connections/{connection_id}`.
pub async fn get(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    Ok(Json(connection(&api, &load(&api, &id).await?)?))
}

fn seal(api: &Api, plain: Option<&str>) -> Option<String> {
    plain
        .filter(|p| !p.is_empty())
        .map(|p| api.cipher.encrypt(p))
}

/// `POST /api/v2/connections`: 201, or 409 when the id exists.
pub async fn create(State(api): State<Arc<Api>>, body: Body) -> Result<Response, Problem> {
    let b: ConnectionBody = api.json(body).await?;
    b.check()?;
    let store = api.engine.datastore();
    if store
        .get_connection(&b.connection_id)
        .await
        .map_err(datastore_problem)?
        .is_some()
    {
        return Err(Problem::conflict(format!(
            "connection {:?} already exists; update it with PATCH /api/v2/connections/{}",
            b.connection_id, b.connection_id
        )));
    }
    let c = Connection {
        password_ciphertext: seal(&api, b.password.as_deref()),
        extra_ciphertext: seal(&api, b.extra.as_deref()),
        conn_id: b.connection_id,
        conn_type: b.conn_type,
        description: b.description,
        host: b.host,
        login: b.login,
        schema: b.schema,
        port: b.port,
    };
    store.put_connection(&c).await.map_err(datastore_problem)?;
    Ok((StatusCode::CREATED, Json(connection(&api, &c)?)).into_response())
}

const FIELDS: &[&str] = &[
    "conn_type",
    "description",
    "host",
    "login",
    "schema",
    "port",
    "password",
    "extra",
];

/// `PATCH /api/v2/connections/{connection_id}` (`update_mask` limits the fields).
pub async fn patch(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    q: RawQuery,
    body: Body,
) -> Result<Json<Value>, Problem> {
    let q = Params::from(q);
    let mask = q.all("update_mask");
    if let Some(bad) = mask.iter().find(|m| !FIELDS.contains(m)) {
        return Err(Problem::bad_request(format!(
            "update_mask {bad:?} is not a connection field; use {}",
            FIELDS.join(", ")
        )));
    }
    let wants = |f: &str| mask.is_empty() || mask.contains(&f);
    let b: ConnectionBody = api.json(body).await?;
    b.check()?;
    if b.connection_id != id {
        return Err(Problem::bad_request(format!(
            "the body's connection_id {:?} differs from the path's {id:?}; a connection cannot be renamed",
            b.connection_id
        )));
    }
    let mut c = load(&api, &id).await?;
    if wants("conn_type") {
        c.conn_type = b.conn_type;
    }
    if wants("description") {
        c.description = b.description;
    }
    if wants("host") {
        c.host = b.host;
    }
    if wants("login") {
        c.login = b.login;
    }
    if wants("schema") {
        c.schema = b.schema;
    }
    if wants("port") {
        c.port = b.port;
    }
    if wants("password") && b.password.as_deref().is_some_and(|p| !p.is_empty()) {
        c.password_ciphertext = seal(&api, b.password.as_deref());
    }
    if wants("extra") {
        c.extra_ciphertext = seal(&api, b.extra.as_deref());
    }
    api.engine
        .datastore()
        .put_connection(&c)
        .await
        .map_err(datastore_problem)?;
    Ok(Json(connection(&api, &c)?))
}

/// `DELETE /api/v2/connections/{connection_id}`: 204, or 404.
pub async fn delete(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    match api.engine.datastore().delete_connection(&id).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(datastore::Error::NotFound { .. }) => {
            Err(Problem::not_found(format!("connection {id:?} not found")))
        }
        Err(e) => Err(datastore_problem(e)),
    }
}
