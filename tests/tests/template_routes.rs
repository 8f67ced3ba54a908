//! template.yaml is the single source of the API's routes: the local router must say the same.

use integration_tests::{function_name, resources, root, template, template_routes, watch_routes};

#[test]
fn the_local_router_has_exactly_the_routes_of_the_template() {
    let template_routes = template_routes(&template());
    let watch = watch_routes();
    assert!(!template_routes.is_empty());
    let expected: String =
        template_routes.iter().map(|((method, path), function)| format!("  {method} {path} -> {function}\n")).collect();
    assert_eq!(
        watch, template_routes,
        "[workspace.metadata.lambda.watch.router] in Cargo.toml must match the HttpApi events of template.yaml:\n{expected}"
    );
}

#[test]
fn every_function_of_the_template_is_a_crate_built_for_graviton_with_cargo_lambda() {
    let template = template();
    let globals = &template["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(globals["Architectures"][0].as_str(), Some("arm64"));
    for (id, resource) in resources(&template) {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let name = function_name(&resource).unwrap_or_else(|| panic!("{id} has no CodeUri"));
        assert!(root().join("functions").join(&name).join("Cargo.toml").exists(), "{id}: no crate functions/{name}");
        assert_eq!(resource["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"), "{id}");
        assert_eq!(resource["Metadata"]["BuildProperties"]["Binary"].as_str(), Some(name.as_str()), "{id}");
    }
}

#[test]
fn the_catch_all_goes_to_a_function_that_answers_the_json_404() {
    let routes = template_routes(&template());
    assert_eq!(routes.get(&("ANY".to_string(), "$default".to_string())).map(String::as_str), Some("health"));
}
