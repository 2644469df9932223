//! Registered DAGs and their immutable versions. A version is identified by the content
//! hash of its spec, so registering the same spec twice creates one version.

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::dag::DagSpec;

/// A DAG as the control plane knows it, across its versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DagRecord {
    pub dag_id: String,
    pub is_paused: bool,
    /// False once deregistered; its history may remain.
    pub is_active: bool,
    /// The version new runs are pinned to.
    pub latest_version: u32,
    pub created_at: DateTime<Utc>,
    pub last_registered_at: DateTime<Utc>,
}

/// One immutable version of a DAG.
#[derive(Debug, Clone, PartialEq)]
pub struct DagVersion {
    pub dag_id: String,
    /// 1-based, in registration order.
    pub version_number: u32,
    /// The free-form `dag_version` label of the spec.
    pub label: String,
    pub spec_hash: String,
    pub spec: Arc<DagSpec>,
    pub created_at: DateTime<Utc>,
}

/// The sha256 (hex) of the spec's canonical JSON, leaving out the `dag_version` label:
/// recompiling an unchanged DAG under a new label is the same version.
///
/// Canonical JSON here means: object keys sorted by their UTF-8 bytes, no whitespace,
/// serde_json's number and string formatting. It does not depend on serde_json's
/// `preserve_order` feature.
pub fn content_hash(spec: &DagSpec) -> String {
    let mut value = serde_json::to_value(spec).expect("a DagSpec always serialises to JSON");
    if let Value::Object(map) = &mut value {
        map.remove("dag_version");
    }
    let mut canonical = String::new();
    write_canonical(&value, &mut canonical);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{}", Value::String(k.clone()));
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::{TaskKind, TaskSpec};

    fn spec(label: &str) -> DagSpec {
        DagSpec {
            schema_version: "1.0".into(),
            dag_id: "d".into(),
            dag_version: label.into(),
            image: String::new(),
            description: None,
            owner: None,
            tags: vec![],
            schedule: None,
            schedule_timezone: None,
            start_date: None,
            end_date: None,
            catchup: false,
            max_active_runs: None,
            max_active_tasks: None,
            dagrun_timeout_seconds: None,
            default_args: None,
            params: std::collections::BTreeMap::default(),
            doc_md: None,
            fileloc: None,
            staging: None,
            tasks: vec![TaskSpec::new("a", TaskKind::Empty)],
            source: None,
        }
    }

    #[test]
    fn hash_ignores_the_label_but_not_the_content() {
        let a = content_hash(&spec("dev-1"));
        assert_eq!(a, content_hash(&spec("dev-2")));
        assert_eq!(a.len(), 64);
        let mut changed = spec("dev-1");
        changed.tasks[0].retries = Some(1);
        assert_ne!(a, content_hash(&changed));
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let mut out = String::new();
        write_canonical(
            &serde_json::json!({"b": {"z": 1, "a": [true, null]}, "a": "x"}),
            &mut out,
        );
        assert_eq!(out, r#"{"a":"x","b":{"a":[true,null],"z":1}}"#);
    }
}
