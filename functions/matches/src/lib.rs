//! The `matches` function: the read API of competitions, teams and matches (DESIGN.md section 3).
//! Every route needs a user token; answers come from Redis when cached, else from PostgreSQL
//! (`shared::catalog`). A cached answer is one Redis round trip: the handlers take the caller's
//! token unchecked ([`UncheckedUser`]) and `shared::catalog` checks the account with the state read
//! in the same `MGET` as the data version and the body, before it answers.

// The handlers' futures (the account check, the data version and the load of
// `shared::catalog::body::cached_read`) nest deeper than the default limit lets rustc compute
// their layout.
#![recursion_limit = "256"]

use axum::{Router, extract::State, routing::get};
use shared::{
    Services,
    auth::UncheckedUser,
    catalog::{self, MatchFilter, MatchesQuery, TeamsQuery, body::JsonBody},
    http::{ApiError, ApiPath, ApiQuery},
    ids::MatchId,
};

pub fn router(services: Services) -> Router {
    shared::http::finish(
        Router::new()
            .route("/api/competitions", get(competitions))
            .route("/api/teams", get(teams))
            .route("/api/matches", get(matches))
            .route("/api/matches/{id}", get(match_by_id))
            .with_state(services),
    )
}

async fn competitions(State(services): State<Services>, caller: UncheckedUser) -> Result<JsonBody, ApiError> {
    catalog::competitions(&services, caller).await
}

async fn teams(
    State(services): State<Services>,
    caller: UncheckedUser,
    ApiQuery(query): ApiQuery<TeamsQuery>,
) -> Result<JsonBody, ApiError> {
    catalog::teams(&services, caller, &query).await
}

async fn matches(
    State(services): State<Services>,
    caller: UncheckedUser,
    ApiQuery(query): ApiQuery<MatchesQuery>,
) -> Result<JsonBody, ApiError> {
    let filter = MatchFilter::parse(&query)?;
    catalog::list_matches(&services, caller, &filter).await
}

async fn match_by_id(
    State(services): State<Services>,
    caller: UncheckedUser,
    ApiPath(id): ApiPath<String>,
) -> Result<JsonBody, ApiError> {
    let id = MatchId::parse(&id).map_err(|e| ApiError::invalid_field("id", e))?;
    catalog::match_detail(&services, caller, id).await
}
