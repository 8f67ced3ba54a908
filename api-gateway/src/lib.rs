//! The API Gateway side of an API function. lambda_http turns the gateway's event into an HTTP
//! request whose extensions hold the request context; this crate moves what the domain needs from
//! it into the domain's own types, so `shared` never depends on Lambda:
//!
//! - `requestContext.requestId` (the gateway's id, `$context.requestId` of its access log) ->
//!   [`GatewayRequestId`], which the shared request envelope makes the request's one id;
//!   when an event has none (an invocation that did not come through the gateway), the Lambda
//!   invocation's own request id.

use axum::{
    Router,
    extract::Request,
    middleware::{self, Next},
    response::Response,
};
use lambda_http::{RequestExt, request::RequestContext};
pub use shared::http::request_id::{GatewayRequestId, XrayTraceId};

/// Serves `router` as this Lambda function (what every API function's `main` ends with).
pub async fn run(router: Router) -> Result<(), lambda_http::Error> {
    lambda_http::run(with_gateway_context(router)).await
}

/// `router` with the gateway's request context moved into the domain's types.
pub fn with_gateway_context(router: Router) -> Router {
    router.layer(middleware::from_fn(gateway_context))
}

async fn gateway_context(mut request: Request, next: Next) -> Response {
    if let Some(id) = gateway_request_id(&request) {
        request.extensions_mut().insert(GatewayRequestId(id));
    }
    // The invocation's X-Ray trace id (the runtime's `Lambda-Runtime-Trace-Id`, also exported as
    // `_X_AMZN_TRACE_ID`): a field of every log line of the request.
    let trace = request.lambda_context_ref().and_then(|c| c.xray_trace_id.clone()).filter(|t| !t.is_empty());
    if let Some(trace) = trace {
        request.extensions_mut().insert(XrayTraceId(trace));
    }
    next.run(request).await
}

fn gateway_request_id(request: &Request) -> Option<String> {
    let from_gateway = match request.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
        _ => None,
    };
    from_gateway
        .filter(|id| !id.is_empty())
        .or_else(|| request.lambda_context_ref().map(|c| c.request_id.clone()).filter(|id| !id.is_empty()))
}

#[cfg(test)]
mod tests {
    use axum::{body::Body, routing::get};
    use http_body_util::BodyExt;
    use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn the_gateway_request_id_is_the_response_and_error_id_even_when_a_client_sends_one() {
        let app = with_gateway_context(shared::http::finish(Router::new().route("/ok", get(|| async { "ok" }))));
        let mut ctx = ApiGatewayV2httpRequestContext::default();
        ctx.request_id = Some("Hf3xWjyZoAMEVrw=".into());
        let req = Request::get("/nope")
            .header("x-request-id", "forged")
            .extension(RequestContext::ApiGatewayV2(ctx))
            .body(Body::empty())
            .unwrap();
        let res = app.oneshot(req).await.unwrap();
        assert_eq!(res.status(), 404);
        assert_eq!(res.headers()["x-request-id"], "Hf3xWjyZoAMEVrw=");
        let body: serde_json::Value =
            serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(body["error"]["request_id"], "Hf3xWjyZoAMEVrw=");
    }
}
