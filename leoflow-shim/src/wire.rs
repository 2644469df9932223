//! The parser CLI's stdout document, `{"dags": [...], "errors": [...]}`, and its conversion
//! to [`CompiledDag`]s: the shim's wire types stay here.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use leoflow_ports::dag::DagSpec;

use crate::{CompileError, CompiledDag, Error, DEV_VERSION};

/// The parsed document.
pub(crate) struct Document {
    pub dags: Vec<WireDag>,
    pub errors: Vec<CompileError>,
}

/// One dag.json object as the parser wrote it (no `dag_version`, `image` or `source`).
pub(crate) struct WireDag(Map<String, Value>);

impl Document {
    pub fn parse(stdout: &[u8]) -> Result<Document, Error> {
        let bad = |message: String| Error::BadOutput {
            message,
            excerpt: excerpt(stdout),
        };
        let value: Value =
            serde_json::from_slice(stdout).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        let Value::Object(mut top) = value else {
            return Err(bad("the document is not a JSON object".into()));
        };
        let Some(Value::Array(dags)) = top.remove("dags") else {
            return Err(bad("`dags` is missing or not an array".into()));
        };
        let Some(Value::Array(errors)) = top.remove("errors") else {
            return Err(bad("`errors` is missing or not an array".into()));
        };
        let dags = dags
            .into_iter()
            .map(|d| match d {
                Value::Object(map) => Ok(WireDag(map)),
                _ => Err(bad("an entry of `dags` is not an object".into())),
            })
            .collect::<Result<_, _>>()?;
        let errors = errors
            .into_iter()
            .map(|e| compile_error(&e).ok_or_else(|| bad(format!("malformed error entry {e}"))))
            .collect::<Result<_, _>>()?;
        Ok(Document { dags, errors })
    }
}

fn compile_error(value: &Value) -> Option<CompileError> {
    let file = value.get("file")?.as_str()?;
    let message = value.get("message")?.as_str()?;
    let line = match value.get("line") {
        None | Some(Value::Null) => None,
        Some(v) => Some(u32::try_from(v.as_u64()?).ok()?),
    };
    Some(CompileError {
        file: PathBuf::from(file),
        line,
        message: message.to_string(),
    })
}

impl WireDag {
    /// Fills in `dag_version` ([`DEV_VERSION`]), `image` (empty) and `source` (the file's
    /// text from `sources`, keyed by fileloc) and parses the result as a [`DagSpec`].
    pub fn into_spec(self, sources: &HashMap<String, String>) -> Result<CompiledDag, CompileError> {
        let mut map = self.0;
        let fileloc = map
            .get("fileloc")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let dag_id = map
            .get("dag_id")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        map.insert("dag_version".into(), Value::String(DEV_VERSION.into()));
        map.insert("image".into(), Value::String(String::new()));
        if let Some(text) = sources.get(&fileloc) {
            map.insert("source".into(), Value::String(text.clone()));
        }
        let bytes = serde_json::to_vec(&Value::Object(map)).unwrap_or_default();
        match DagSpec::from_json(&bytes) {
            Ok(spec) => Ok(CompiledDag {
                spec,
                file: PathBuf::from(&fileloc),
            }),
            Err(errors) => Err(CompileError {
                file: PathBuf::from(&fileloc),
                line: None,
                message: format!(
                    "the shim produced an invalid dag.json for DAG {dag_id:?} (a Leoflow bug; please report it): {}",
                    errors.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
                ),
            }),
        }
    }
}

/// The start of `bytes`, for error messages.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut cut: String = text.chars().take(400).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_bad(stdout: &str, expected: &str) {
        let Err(Error::BadOutput { message, .. }) = Document::parse(stdout.as_bytes()) else {
            panic!("{stdout} parsed");
        };
        assert!(message.contains(expected), "{message}");
    }

    #[test]
    fn malformed_documents_are_reported() {
        check_bad("Traceback", "invalid JSON");
        check_bad("[]", "not a JSON object");
        check_bad(r#"{"errors": []}"#, "`dags`");
        check_bad(r#"{"dags": []}"#, "`errors`");
        check_bad(r#"{"dags": [1], "errors": []}"#, "not an object");
        check_bad(
            r#"{"dags": [], "errors": [{"file": 1, "message": "x"}]}"#,
            "malformed",
        );
    }

    #[test]
    fn errors_keep_file_and_optional_line() {
        let doc = Document::parse(
            br#"{"dags": [], "errors": [{"file": "a.py", "line": 3, "message": "m"},
                                      {"file": "b.py", "line": null, "message": "n"}]}"#,
        )
        .unwrap();
        assert_eq!(doc.errors[0].to_string(), "a.py:3: m");
        assert_eq!(doc.errors[1].to_string(), "b.py: n");
    }

    #[test]
    fn dags_get_placeholders_and_their_source() {
        let doc = Document::parse(
            br#"{"dags": [{"schema_version": "1.0", "dag_id": "d", "fileloc": "dags/d.py",
                 "tasks": [{"task_id": "a", "type": "empty"}]}], "errors": []}"#,
        )
        .unwrap();
        let sources = HashMap::from([("dags/d.py".to_string(), "text".to_string())]);
        let dag = doc
            .dags
            .into_iter()
            .next()
            .unwrap()
            .into_spec(&sources)
            .unwrap();
        assert_eq!(dag.file, PathBuf::from("dags/d.py"));
        assert_eq!(dag.spec.dag_version, "dev");
        assert_eq!(dag.spec.image, "");
        assert_eq!(dag.spec.source.as_deref(), Some("text"));
    }

    #[test]
    fn an_invalid_dag_object_becomes_an_error_naming_the_path() {
        let doc = Document::parse(
            br#"{"dags": [{"schema_version": "1.0", "dag_id": "d", "fileloc": "d.py",
                 "tasks": [{"task_id": "a", "type": "empty", "retires": 1}]}], "errors": []}"#,
        )
        .unwrap();
        let err = doc
            .dags
            .into_iter()
            .next()
            .unwrap()
            .into_spec(&HashMap::new())
            .unwrap_err();
        assert_eq!(err.file, PathBuf::from("d.py"));
        assert!(err.message.contains("tasks[0].retires"), "{}", err.message);
    }
}
