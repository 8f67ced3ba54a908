//! Workspace-level tests: the template, the local router, the events and end-to-end runs.
//! Helpers to read `template.yaml` live here.

use std::collections::BTreeMap;

use serde_yaml::Value;

/// The repository root.
pub fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is in the root").to_path_buf()
}

/// `template.yaml`, parsed (CloudFormation tags such as `!Ref` become tagged values).
pub fn template() -> Value {
    let text = std::fs::read_to_string(root().join("template.yaml")).expect("template.yaml");
    serde_yaml::from_str(&text).expect("template.yaml is YAML")
}

/// Resources of the template by logical id.
pub fn resources(template: &Value) -> BTreeMap<String, Value> {
    template["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .map(|(k, v)| (k.as_str().expect("logical id").to_string(), v.clone()))
        .collect()
}

/// The function crate a `AWS::Serverless::Function` builds: the last part of its `CodeUri`.
pub fn function_name(resource: &Value) -> Option<String> {
    resource["Properties"]["CodeUri"].as_str().and_then(|uri| uri.rsplit('/').next()).map(str::to_string)
}

/// Every HTTP route of the template: (method, path) -> function crate. `$default` is the catch-all.
pub fn template_routes(template: &Value) -> BTreeMap<(String, String), String> {
    let mut routes = BTreeMap::new();
    for (_, resource) in resources(template) {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let Some(function) = function_name(&resource) else { continue };
        let Some(events) = resource["Properties"]["Events"].as_mapping() else { continue };
        for (_, event) in events {
            if event["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            let method = event["Properties"]["Method"].as_str().unwrap_or("ANY").to_uppercase();
            let path = event["Properties"]["Path"].as_str().expect("HttpApi event Path").to_string();
            routes.insert((method, path), function.clone());
        }
    }
    routes
}

/// The `cargo lambda watch` router of the root Cargo.toml, in the same form
/// (`"/{*rest}"` is written `$default`, a route for any method `ANY`).
pub fn watch_routes() -> BTreeMap<(String, String), String> {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
    let manifest: toml::Value = toml::from_str(&text).expect("Cargo.toml is TOML");
    let router = manifest["workspace"]["metadata"]["lambda"]["watch"]["router"].as_table().expect("watch router");
    let mut routes = BTreeMap::new();
    for (path, target) in router {
        let path = if path == "/{*rest}" { "$default".to_string() } else { path.clone() };
        match target {
            toml::Value::String(function) => {
                routes.insert(("ANY".to_string(), path), function.clone());
            }
            toml::Value::Array(entries) => {
                for entry in entries {
                    let method = entry["method"].as_str().expect("method").to_uppercase();
                    let function = entry["function"].as_str().expect("function").to_string();
                    routes.insert((method, path.clone()), function);
                }
            }
            other => panic!("unexpected router entry for {path}: {other:?}"),
        }
    }
    routes
}

/// The tag of a CloudFormation short-form intrinsic (`Ref`, `GetAtt`, `Sub`, ...) and its argument;
/// `None` for a plain value.
pub fn intrinsic(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(tagged) => Some((tagged.tag.to_string().trim_start_matches('!').to_string(), &tagged.value)),
        _ => None,
    }
}

/// The logical id named by `!Ref Id` (or `!GetAtt Id.Attribute`), if `value` is one.
pub fn referenced_id(value: &Value) -> Option<String> {
    let (tag, arg) = intrinsic(value)?;
    let arg = arg.as_str()?;
    match tag.as_str() {
        "Ref" => Some(arg.to_string()),
        "GetAtt" => arg.split('.').next().map(str::to_string),
        _ => None,
    }
}

/// The `AWS::Serverless::Function` resources of the template by logical id.
pub fn functions(template: &Value) -> BTreeMap<String, Value> {
    resources(template)
        .into_iter()
        .filter(|(_, resource)| resource["Type"].as_str() == Some("AWS::Serverless::Function"))
        .collect()
}

/// The events of a function whose `Type` is one of `types`, by event name.
pub fn events_of(function: &Value, types: &[&str]) -> Vec<(String, Value)> {
    let Some(events) = function["Properties"]["Events"].as_mapping() else { return Vec::new() };
    events
        .iter()
        .filter(|(_, event)| event["Type"].as_str().is_some_and(|t| types.contains(&t)))
        .map(|(name, event)| (name.as_str().unwrap_or_default().to_string(), event.clone()))
        .collect()
}

/// Every IAM statement of a function's inline `Policies` (SAM policy templates are not statements).
pub fn policy_statements(function: &Value) -> Vec<Value> {
    let mut statements = Vec::new();
    for policy in function["Properties"]["Policies"].as_sequence().into_iter().flatten() {
        for statement in policy["Statement"].as_sequence().into_iter().flatten() {
            statements.push(statement.clone());
        }
    }
    statements
}

/// A statement field that may be one value or a list, as a list.
pub fn one_or_many(value: &Value) -> Vec<Value> {
    match value {
        Value::Sequence(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}
