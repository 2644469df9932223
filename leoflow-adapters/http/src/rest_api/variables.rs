//! `/api/v2/variables`: create, read, update, delete and list variables. Values whose key
//! looks secret (password, token, api_key, …) are shown as `***`, as Airflow masks them.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use leoflow_ports::datastore::{self, Variable};
use serde::Deserialize;
use serde_json::{json, Value};

use super::query::{like, Params};
use super::{shapes, Api};
use crate::problem::{datastore_problem, Problem};

const SENSITIVE: &[&str] = &[
    "access_token",
    "api_key",
    "apikey",
    "authorization",
    "passphrase",
    "passwd",
    "password",
    "private_key",
    "secret",
    "token",
    "credential",
    "access_key",
];

fn masked(key: &str) -> bool {
    let k = key.to_lowercase();
    SENSITIVE.iter().any(|s| k.contains(s))
}

fn variable(v: &Variable) -> Value {
    json!({
        "key": v.key,
        "value": if masked(&v.key) { "***" } else { v.value.as_str() },
        "description": v.description,
        "is_encrypted": false,
        "team_name": null,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VariableBody {
    key: String,
    value: Value,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    team_name: Option<String>,
}

impl VariableBody {
    /// Airflow stores strings as they are and any other JSON as its text.
    fn into_variable(self) -> Result<Variable, Problem> {
        if self.team_name.is_some() {
            return Err(Problem::bad_request(
                "team_name is not supported: Leoflow has no multi-team mode",
            ));
        }
        check_key(&self.key)?;
        let value = match self.value {
            Value::String(s) => s,
            other => other.to_string(),
        };
        Ok(Variable {
            key: self.key,
            value,
            description: self.description,
        })
    }
}

fn check_key(key: &str) -> Result<(), Problem> {
    if key.is_empty() || key.len() > 250 || key.chars().any(|c| c.is_control() || c == '/') {
        return Err(Problem::bad_request(format!(
            "variable key {key:?} is not usable: use 1 to 250 printable characters without `/`"
        )));
    }
    Ok(())
}

async fn load(api: &Api, key: &str) -> Result<Variable, Problem> {
    api.engine
        .datastore()
        .get_variable(key)
        .await
        .map_err(datastore_problem)?
        .ok_or_else(|| {
            Problem::not_found(format!(
                "variable {key:?} not found; create it with POST /api/v2/variables"
            ))
        })
}

/// `GET /api/v2/variables`.
pub async fn list(State(api): State<Arc<Api>>, q: RawQuery) -> Result<Json<Value>, Problem> {
    let q = Params::from(q);
    let page = q.page()?;
    let order = q.order_by(&["key", "id", "_val", "description", "is_encrypted"])?;
    let pattern = q.one("variable_key_pattern");
    let mut vars = api
        .engine
        .datastore()
        .list_variables()
        .await
        .map_err(datastore_problem)?;
    vars.retain(|v| pattern.is_none_or(|p| like(p, &v.key)));
    if matches!(order, Some((_, true))) {
        vars.reverse();
    }
    let total = vars.len();
    let items = page.apply(vars).iter().map(variable).collect();
    Ok(Json(shapes::collection("variables", items, total)))
}

/// `GET /api/v2/variables/{variable_key}`.
pub async fn get(
    State(api): State<Arc<Api>>,
    Path(key): Path<String>,
) -> Result<Json<Value>, Problem> {
    Ok(Json(variable(&load(&api, &key).await?)))
}

/// `POST /api/v2/variables`: 201, or 409 when the key exists.
pub async fn create(State(api): State<Arc<Api>>, body: Body) -> Result<Response, Problem> {
    let var = api.json::<VariableBody>(body).await?.into_variable()?;
    let store = api.engine.datastore();
    if store
        .get_variable(&var.key)
        .await
        .map_err(datastore_problem)?
        .is_some()
    {
        return Err(Problem::conflict(format!(
            "variable {:?} already exists; update it with PATCH /api/v2/variables/{}",
            var.key, var.key
        )));
    }
    store.put_variable(&var).await.map_err(datastore_problem)?;
    Ok((StatusCode::CREATED, Json(variable(&var))).into_response())
}

/// `PATCH /api/v2/variables/{variable_key}` (`update_mask`: value, description).
pub async fn patch(
    State(api): State<Arc<Api>>,
    Path(key): Path<String>,
    q: RawQuery,
    body: Body,
) -> Result<Json<Value>, Problem> {
    let q = Params::from(q);
    let mask = q.all("update_mask");
    if let Some(bad) = mask
        .iter()
        .find(|m| !matches!(**m, "value" | "description"))
    {
        return Err(Problem::bad_request(format!(
            "update_mask {bad:?} is not supported; use value and/or description"
        )));
    }
    let new = api.json::<VariableBody>(body).await?.into_variable()?;
    if new.key != key {
        return Err(Problem::bad_request(format!(
            "the body's key {:?} differs from the path's {key:?}; a variable cannot be renamed",
            new.key
        )));
    }
    let mut var = load(&api, &key).await?;
    if mask.is_empty() || mask.contains(&"value") {
        var.value = new.value;
    }
    if mask.is_empty() || mask.contains(&"description") {
        var.description = new.description;
    }
    api.engine
        .datastore()
        .put_variable(&var)
        .await
        .map_err(datastore_problem)?;
    Ok(Json(variable(&var)))
}

/// `DELETE /api/v2/variables/{variable_key}`: 204, or 404.
pub async fn delete(
    State(api): State<Arc<Api>>,
    Path(key): Path<String>,
) -> Result<Response, Problem> {
    match api.engine.datastore().delete_variable(&key).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(datastore::Error::NotFound { .. }) => {
            Err(Problem::not_found(format!("variable {key:?} not found")))
        }
        Err(e) => Err(datastore_problem(e)),
    }
}
