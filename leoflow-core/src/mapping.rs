//! Dynamic task mapping: how many instances a mapped task expands to, and which
//! arguments instance `map_index` receives (the cartesian product of `expand` sources,
//! last parameter varying fastest, or one dict of `expand_kwargs` per instance).

use std::collections::BTreeMap;

use leoflow_ports::dag::{MapSource, MapSpec, XComRef};
use serde_json::Value;

/// Reads the value of an upstream XCom reference (`None` when absent).
pub trait Resolve {
    fn resolve(&self, r: &XComRef) -> Option<Value>;
}

impl<F: Fn(&XComRef) -> Option<Value>> Resolve for F {
    fn resolve(&self, r: &XComRef) -> Option<Value> {
        self(r)
    }
}

/// The values one source maps over.
fn items(source: &MapSource, resolve: &dyn Resolve) -> Result<Vec<Value>, String> {
    match source {
        MapSource::Literal(values) => Ok(values.clone()),
        MapSource::Xcom(r) => {
            match resolve.resolve(r) {
                Some(Value::Array(values)) => Ok(values),
                Some(Value::Object(map)) => Ok(map
                    .into_iter()
                    .map(|(k, v)| Value::Array(vec![Value::String(k), v]))
                    .collect()),
                Some(other) => Err(format!(
                "cannot map over the value of {:?} (key {:?}): expected a list or a dict, got {}",
                r.task_id, r.key, kind(&other)
            )),
                None => Err(format!(
                    "cannot map over {:?} (key {:?}): it pushed no value; return a list from it",
                    r.task_id, r.key
                )),
            }
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a dict",
    }
}

/// Every instance's mapped arguments, in `map_index` order.
pub fn expand(
    map: &MapSpec,
    resolve: &dyn Resolve,
) -> Result<Vec<BTreeMap<String, Value>>, String> {
    if let Some(source) = &map.expand_kwargs {
        return items(source, resolve)?
            .into_iter()
            .map(|v| match v {
                Value::Object(m) => Ok(m.into_iter().collect()),
                other => Err(format!(
                    "expand_kwargs needs a list of dicts, found {}",
                    kind(&other)
                )),
            })
            .collect();
    }
    let mut combos: Vec<BTreeMap<String, Value>> = vec![BTreeMap::new()];
    for (param, source) in map.expand.iter().flatten() {
        let values = items(source, resolve)?;
        let mut next = Vec::with_capacity(combos.len() * values.len());
        for combo in &combos {
            for v in &values {
                let mut c = combo.clone();
                c.insert(param.clone(), v.clone());
                next.push(c);
            }
        }
        combos = next;
    }
    Ok(combos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn no_xcom(_: &XComRef) -> Option<Value> {
        None
    }

    #[test]
    fn literal_lists_expand_one_instance_per_element() {
        let map: MapSpec =
            serde_json::from_value(json!({"expand": {"x": {"literal": [1, 2, 3]}}})).unwrap();
        let e = expand(&map, &no_xcom).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[2]["x"], json!(3));
    }

    #[test]
    fn several_parameters_give_the_cartesian_product() {
        let map: MapSpec =
            serde_json::from_value(json!({"expand": {"a": {"literal": [1, 2]}, "b": "up"}}))
                .unwrap();
        let up = |r: &XComRef| (r.task_id == "up").then(|| json!(["x", "y", "z"]));
        let e = expand(&map, &up).unwrap();
        assert_eq!(e.len(), 6);
        assert_eq!(
            (e[0]["a"].clone(), e[0]["b"].clone()),
            (json!(1), json!("x"))
        );
        assert_eq!(
            (e[4]["a"].clone(), e[4]["b"].clone()),
            (json!(2), json!("y"))
        );
    }

    #[test]
    fn expand_kwargs_and_dict_sources() {
        let map: MapSpec = serde_json::from_value(json!({"expand_kwargs": "up"})).unwrap();
        let up = |_: &XComRef| Some(json!([{"a": 1}, {"a": 2, "b": 3}]));
        let e = expand(&map, &up).unwrap();
        assert_eq!(e[1]["b"], json!(3));
        let map: MapSpec = serde_json::from_value(json!({"expand": {"kv": "up"}})).unwrap();
        let up = |_: &XComRef| Some(json!({"k": 1}));
        assert_eq!(expand(&map, &up).unwrap()[0]["kv"], json!(["k", 1]));
    }

    #[test]
    fn empty_lists_give_no_instances_and_bad_values_explain_themselves() {
        let map: MapSpec = serde_json::from_value(json!({"expand": {"x": "up"}})).unwrap();
        assert!(expand(&map, &|_: &XComRef| Some(json!([])))
            .unwrap()
            .is_empty());
        let err = expand(&map, &|_: &XComRef| Some(json!(5))).unwrap_err();
        assert!(
            err.contains("expected a list or a dict, got a number"),
            "{err}"
        );
        assert!(expand(&map, &no_xcom)
            .unwrap_err()
            .contains("pushed no value"));
    }
}
