//! The `matches` function: the read API of competitions, teams and matches (DESIGN.md section 3).
//! Every route needs a user token; answers come from Redis when cached, else from PostgreSQL
//! (`shared::catalog`).

use axum::{Json, Router, extract::State, routing::get};
use shared::{
    Services,
    auth::AuthUser,
    catalog::{self, CompetitionList, MatchDetail, MatchFilter, MatchesQuery, TeamList, TeamsQuery, body::JsonBody},
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

async fn competitions(State(services): State<Services>, _user: AuthUser) -> Result<Json<CompetitionList>, ApiError> {
    Ok(Json(catalog::competitions(&services).await?))
}

async fn teams(
    State(services): State<Services>,
    _user: AuthUser,
    ApiQuery(query): ApiQuery<TeamsQuery>,
) -> Result<Json<TeamList>, ApiError> {
    Ok(Json(catalog::teams(&services, &query).await?))
}

async fn matches(
    State(services): State<Services>,
    _user: AuthUser,
    ApiQuery(query): ApiQuery<MatchesQuery>,
) -> Result<JsonBody, ApiError> {
    let filter = MatchFilter::parse(&query)?;
    // the cached page's JSON as it is, not decoded and encoded again (issue 13)
    catalog::body::list_matches_body(&services, &filter).await
}

async fn match_by_id(
    State(services): State<Services>,
    _user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<MatchDetail>, ApiError> {
    let id = MatchId::parse(&id).map_err(|e| ApiError::invalid_field("id", e))?;
    Ok(Json(catalog::match_detail(&services, id).await?))
}
