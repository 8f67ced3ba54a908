//! Predictions: computing with the engine from data known before kick-off, storing, reading.
//!
//! `POST /api/predictions` starts with one Redis `MGET` ([`prefetch`]) of the caller's account
//! state, the data version and the match's cached context ([`context_key`]); it reads the match
//! and the version of its history in one query ([`models::match_context`]) only when Redis had no
//! context of the current data version, takes the fitted model from the model-state cache
//! ([`models::ModelCache`]: this process, then Redis, then a fit), predicts (microseconds) and
//! inserts the row: a warm request is one Redis round trip, the `INSERT` and no fitting (issue
//! 13). With an `Idempotency-Key` the first response is recorded in DynamoDB
//! ([`crate::idempotency`]).
//!
//! The cached context is stored as the catalog's bodies are ([`crate::catalog::body`]): the data
//! version it was read under (from the same statement, so the same snapshot), a newline, its
//! JSON; it answers only while Redis's data version ([`crate::catalog::version_key`]) is that
//! version, and lives [`CONTEXT_TTL`] at most, which also bounds how long a change that no writer
//! published (an ml_model version activated, a hand edit) stays unseen.

pub mod models;

use std::{str::FromStr, time::Duration, time::Instant};

use tracing::Instrument;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub use models::{MatchContext, ModelCache, ModelSource};

use crate::{
    Services,
    auth::{AuthUser, UncheckedUser},
    catalog::{Cursor, VERSION_TTL, body, parse_limit, record_cache, version_key},
    engine::Strategy,
    http::ApiError,
    idempotency,
    ids::{MatchId, PredictionId},
    metrics::{self, MetricValue},
};

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

/// The body of `POST /api/predictions` (these two fields only, as every body of the API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePrediction {
    #[schema(example = "match_9", pattern = r"^match_[1-9][0-9]{0,17}$")]
    pub match_id: String,
    /// `statistical`, `historical`, `ml_model` or `market` (`ml_model` combined with the match's
    /// opening odds).
    #[schema(example = "statistical", pattern = r"^(statistical|historical|ml_model|market)$")]
    pub strategy_type: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Probabilities {
    pub home: f64,
    pub draw: f64,
    pub away: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExpectedGoals {
    pub home: f64,
    pub away: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LikelyScore {
    pub home: i16,
    pub away: i16,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Markets {
    /// Probability of three goals or more.
    pub over_2_5: f64,
    /// Probability that both teams score.
    pub btts: f64,
}

/// A stored prediction (DESIGN.md section 3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Prediction {
    #[schema(value_type = String, example = "pred_1")]
    pub id: PredictionId,
    #[schema(value_type = String, example = "match_9")]
    pub match_id: MatchId,
    #[schema(example = "statistical")]
    pub strategy_type: String,
    pub model_version: String,
    /// Home win, draw, away win; they sum to 1.
    pub probabilities: Probabilities,
    pub expected_goals: ExpectedGoals,
    pub most_likely_score: LikelyScore,
    pub markets: Markets,
    /// What the market says, when the match has opening 1X2 odds and the `market_comparison`
    /// feature flag is on: absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub market: Option<Box<MarketView>>,
    pub created_at: DateTime<Utc>,
}

/// Decimal odds of the three outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DecimalOdds {
    #[schema(example = 2.1)]
    pub home: f64,
    #[schema(example = 3.4)]
    pub draw: f64,
    #[schema(example = 3.6)]
    pub away: f64,
}

/// The match's opening 1X2 odds beside the prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MarketView {
    /// Whose odds: `pinnacle` first, then `market_average`, `bet365`...
    #[schema(example = "pinnacle")]
    pub bookmaker: String,
    /// `opening`: quoted before kick-off (closing odds are never shown beside a prediction).
    #[schema(example = "opening")]
    pub phase: String,
    pub odds: DecimalOdds,
    /// The bookmaker's margin: Σ 1/odds − 1.
    #[schema(example = 0.028)]
    pub overround: f64,
    /// The odds' implied probabilities with the margin removed by `method`.
    pub implied: Probabilities,
    /// `shin` (Shin 1993), the method the `market` strategy uses by default.
    #[schema(example = "shin")]
    pub method: String,
    /// The model's edge per outcome: its probability minus the implied one.
    pub edge: Probabilities,
    /// The model's expected return per unit staked at these odds: probability × odds − 1.
    pub expected_value: Probabilities,
}

impl MarketView {
    /// The view of the preferred opening quote of `odds` for the model's `[home, draw, away]`.
    pub fn of(odds: &crate::engine::data::MatchOdds, model: Probabilities) -> Option<Box<MarketView>> {
        let quote = ["PS", "Avg", "BbAv", "B365", "WH", "Max", "BbMx"]
            .iter()
            .find_map(|b| odds.pre_match.iter().find(|q| q.bookmaker == *b))
            .or_else(|| odds.pre_match.first())?;
        let o = quote.odds;
        let method = crate::engine::Devig::Shin;
        let [h, d, a] = method.probabilities(&o)?;
        let p = [model.home, model.draw, model.away];
        let bookmaker = match quote.bookmaker.as_str() {
            "PS" | "P" => "pinnacle",
            "Avg" => "market_average",
            "Max" => "market_max",
            "B365" => "bet365",
            "WH" => "william_hill",
            "BbAv" => "betbrain_average",
            "BbMx" => "betbrain_max",
            other => other,
        };
        Some(Box::new(MarketView {
            bookmaker: bookmaker.to_string(),
            phase: "opening".into(),
            odds: DecimalOdds { home: o.home, draw: o.draw, away: o.away },
            overround: o.overround(),
            implied: Probabilities { home: h, draw: d, away: a },
            method: method.as_str().into(),
            edge: Probabilities { home: p[0] - h, draw: p[1] - d, away: p[2] - a },
            expected_value: Probabilities {
                home: p[0] * o.home - 1.0,
                draw: p[1] * o.draw - 1.0,
                away: p[2] * o.away - 1.0,
            },
        }))
    }
}

/// The opening 1X2 quotes of a match as a statement aggregates them from the view
/// `opening_quotes_1x2` (parallel arrays, one element per bookmaker with all three prices; NULL
/// arrays when the match has none), as the engine reads them: what `history::group_odds` makes of
/// the same `match_odds` rows, in the same order (by the stored bookmaker name, compared as bytes:
/// sorted here, not by the database's collation).
pub fn opening_quotes(
    bookmakers: Option<Vec<String>>,
    home: Option<Vec<f64>>,
    draw: Option<Vec<f64>>,
    away: Option<Vec<f64>>,
) -> crate::engine::data::MatchOdds {
    let mut odds = crate::engine::data::MatchOdds::default();
    let (Some(bookmakers), Some(home), Some(draw), Some(away)) = (bookmakers, home, draw, away) else {
        return odds;
    };
    let mut quotes: Vec<(String, crate::engine::data::Odds1x2)> = bookmakers
        .into_iter()
        .zip(home.into_iter().zip(draw).zip(away))
        .map(|(b, ((home, draw), away))| (b, crate::engine::data::Odds1x2 { home, draw, away }))
        .collect();
    quotes.sort_by(|a, b| a.0.cmp(&b.0));
    odds.pre_match = quotes
        .into_iter()
        .map(|(b, odds)| crate::engine::data::BookOdds { bookmaker: crate::history::engine_bookmaker(&b, "1x2"), odds })
        .collect();
    odds
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PredictionPage {
    pub items: Vec<Prediction>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The raw query of `GET /api/predictions` (the caller's predictions, newest first).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PredictionsQuery {
    /// Only predictions of this match (`match_9`).
    #[param(pattern = r"^match_[1-9][0-9]{0,17}$", nullable = false)]
    pub match_id: Option<String>,
    /// Only this strategy.
    #[param(pattern = r"^(statistical|historical|ml_model|market)$", nullable = false)]
    pub strategy_type: Option<String>,
    /// Page size, 1 to 100, default 20.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^v1\.(0|-?[1-9][0-9]{0,15})\.[1-9][0-9]{0,17}$", nullable = false)]
    pub cursor: Option<String>,
}

/// Parses a strategy name: a 400 naming `strategy_type` otherwise.
pub fn parse_strategy(value: &str) -> Result<Strategy, ApiError> {
    Strategy::from_str(value)
        .map_err(|_| ApiError::invalid_field("strategy_type", "expected statistical, historical, ml_model or market"))
}

/// A row of `predictions` (the column list is spelled out in each query: the compile-time checked
/// macros take only a string literal).
struct PredictionRow {
    id: i64,
    match_id: i64,
    strategy_type: String,
    model_version: String,
    p_home: f64,
    p_draw: f64,
    p_away: f64,
    expected_goals_home: f64,
    expected_goals_away: f64,
    likely_home_goals: i16,
    likely_away_goals: i16,
    p_over_2_5: f64,
    p_btts: f64,
    created_at: DateTime<Utc>,
}

impl From<PredictionRow> for Prediction {
    fn from(r: PredictionRow) -> Self {
        Prediction {
            id: PredictionId(r.id),
            match_id: MatchId(r.match_id),
            strategy_type: r.strategy_type,
            model_version: r.model_version,
            probabilities: Probabilities { home: r.p_home, draw: r.p_draw, away: r.p_away },
            expected_goals: ExpectedGoals { home: r.expected_goals_home, away: r.expected_goals_away },
            most_likely_score: LikelyScore { home: r.likely_home_goals, away: r.likely_away_goals },
            markets: Markets { over_2_5: r.p_over_2_5, btts: r.p_btts },
            market: None,
            created_at: r.created_at,
        }
    }
}

/// A row of `predictions` read with its match's opening 1X2 quotes (see [`opening_quotes`]),
/// aggregated in the same statement when `with_market` (the `market_comparison` flag) is set.
struct PredictionOddsRow {
    id: i64,
    match_id: i64,
    user_id: Option<i64>,
    strategy_type: String,
    model_version: String,
    p_home: f64,
    p_draw: f64,
    p_away: f64,
    expected_goals_home: f64,
    expected_goals_away: f64,
    likely_home_goals: i16,
    likely_away_goals: i16,
    p_over_2_5: f64,
    p_btts: f64,
    created_at: DateTime<Utc>,
    odds_bookmakers: Option<Vec<String>>,
    odds_home: Option<Vec<f64>>,
    odds_draw: Option<Vec<f64>>,
    odds_away: Option<Vec<f64>>,
}

impl PredictionOddsRow {
    /// The prediction, with `market` when the row carries opening quotes.
    fn into_prediction(self) -> Prediction {
        let odds = opening_quotes(self.odds_bookmakers, self.odds_home, self.odds_draw, self.odds_away);
        let mut p = Prediction::from(PredictionRow {
            id: self.id,
            match_id: self.match_id,
            strategy_type: self.strategy_type,
            model_version: self.model_version,
            p_home: self.p_home,
            p_draw: self.p_draw,
            p_away: self.p_away,
            expected_goals_home: self.expected_goals_home,
            expected_goals_away: self.expected_goals_away,
            likely_home_goals: self.likely_home_goals,
            likely_away_goals: self.likely_away_goals,
            p_over_2_5: self.p_over_2_5,
            p_btts: self.p_btts,
            created_at: self.created_at,
        });
        p.market = MarketView::of(&odds, p.probabilities);
        p
    }
}

/// Where a prediction request spent its time (milliseconds), sent as `Server-Timing`.
#[derive(Debug, Clone, Default)]
pub struct Timings {
    pub context_ms: f64,
    /// Whether the match context came from Redis (`hit`) or PostgreSQL (`miss`).
    pub context_hit: bool,
    pub model_ms: f64,
    pub predict_ms: f64,
    pub store_ms: f64,
    pub model_source: Option<ModelSource>,
}

impl Timings {
    pub fn header(&self) -> String {
        format!(
            "ctx;dur={:.2};desc=\"{}\", model;dur={:.2};desc=\"{}\", predict;dur={:.3}, store;dur={:.2}",
            self.context_ms,
            if self.context_hit { "hit" } else { "miss" },
            self.model_ms,
            self.model_source.map(ModelSource::as_str).unwrap_or("-"),
            self.predict_ms,
            self.store_ms
        )
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// How long a match context stays in Redis (it answers only under its data version anyway).
pub const CONTEXT_TTL: Duration = Duration::from_secs(5);
/// The format of the cached contexts, part of their keys: bump it when [`MatchContext`] changes
/// shape, so that a new deployment never reads a context of the old shape.
pub const CONTEXT_FORMAT: u32 = 1;

/// The Redis key of a match's cached context (scoped by database as the data version is).
pub fn context_key(services: &Services, match_id: MatchId) -> String {
    format!("predictions:context{CONTEXT_FORMAT}:{}:{}", services.cache_scope(), match_id.0)
}

/// What the one `MGET` at the start of a prediction brought besides the caller's account: the data
/// version and the entry of the match's context, as Redis had them (`None` for a miss, or when
/// Redis is down).
#[derive(Debug, Default)]
pub struct Prefetched {
    version: Option<Vec<u8>>,
    context: Option<Vec<u8>>,
}

/// The caller's account checked and the prediction's cache entries read in one Redis round trip:
/// the account state, the data version and (when the body names a valid match) the match's cached
/// context. The account is checked first, from PostgreSQL when Redis had no entry, as
/// [`crate::auth::AuthUser`]'s extractor does.
pub async fn prefetch(
    services: &Services,
    caller: UncheckedUser,
    request: &CreatePrediction,
) -> Result<(AuthUser, Prefetched), ApiError> {
    let mut keys = vec![services.account_key(caller.claimed_id()), version_key(services)];
    if let Ok(match_id) = MatchId::parse(&request.match_id) {
        keys.push(context_key(services, match_id));
    }
    let mut values = services.cache.get_many(&keys).await.into_iter();
    let (account, version, context) = (values.next().flatten(), values.next().flatten(), values.next().flatten());
    let user = services.check_account_prefetched(caller.claimed, caller.token_version, account.as_deref()).await?;
    Ok((user, Prefetched { version, context }))
}

/// The match's context: the cached one when Redis had one of the current data version, else read
/// from PostgreSQL and offered to Redis (the version with `SET NX`, as catalog readers do; the
/// context under the version it was read under). `(context, true)` for a cache hit.
async fn context(
    services: &Services,
    prefetched: Prefetched,
    match_id: MatchId,
) -> Result<(MatchContext, bool), ApiError> {
    if let (Some(version), Some(entry)) = (prefetched.version.as_deref(), prefetched.context) {
        let cached = body::body_of(entry, version).and_then(|json| serde_json::from_slice::<MatchContext>(&json).ok());
        if let Some(ctx) = cached.filter(|c| c.match_id == match_id.0 && c.catalog_version.as_bytes() == version) {
            record_cache("match_context", true);
            return Ok((ctx, true));
        }
    }
    record_cache("match_context", false);
    let pool = services.db.pool().await?;
    let ctx = models::match_context(pool, match_id.0)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no match {match_id}")))?;
    let version = ctx.catalog_version.as_bytes();
    if prefetched.version.is_none() {
        services.cache.set_bytes_if_absent(&version_key(services), version.to_vec(), VERSION_TTL).await;
    }
    match serde_json::to_vec(&ctx) {
        Ok(json) => {
            let entry = body::entry_of(version, &json);
            services.cache.set_bytes(&context_key(services, match_id), entry, CONTEXT_TTL).await;
        }
        Err(error) => tracing::warn!(%error, "a match context could not be encoded for the cache"),
    }
    Ok((ctx, false))
}

/// Computes and stores a prediction for `user`, with the cache entries [`prefetch`] read.
pub async fn create(
    services: &Services,
    models: &ModelCache,
    user: &AuthUser,
    prefetched: Prefetched,
    request: &CreatePrediction,
) -> Result<(Prediction, Timings), ApiError> {
    let match_id = MatchId::parse(&request.match_id).map_err(|e| ApiError::invalid_field("match_id", e))?;
    let strategy = parse_strategy(&request.strategy_type)?;
    let flags = services.flags().await;
    if !flags.strategies.enabled(strategy) {
        return Err(ApiError::Forbidden(format!("strategy_type: `{strategy}` is turned off")));
    }
    let mut timings = Timings::default();

    let started = Instant::now();
    let (ctx, hit) = context(services, prefetched, match_id).await?;
    timings.context_ms = ms(started);
    timings.context_hit = hit;

    let started = Instant::now();
    let (model, source) = models.model(services, strategy, &ctx).await?;
    timings.model_ms = ms(started);
    timings.model_source = Some(source);

    // The match's opening odds (read with the context): what `market` combines with its model,
    // and what every prediction shows beside it.
    let odds = &ctx.odds;

    let started = Instant::now();
    let p = tracing::info_span!("model.predict", strategy = %strategy)
        .in_scope(|| model.predict_priced(&ctx.home_name, &ctx.away_name, odds.best_pre_match()));
    timings.predict_ms = ms(started);
    let sum = p.p_home + p.p_draw + p.p_away;
    if !(sum.is_finite() && sum > 0.0) {
        return Err(ApiError::internal(format!("the {strategy} model gave no probabilities")));
    }
    let (home, draw) = (p.p_home / sum, p.p_draw / sum);
    let away = (1.0 - home - draw).max(0.0);

    let started = Instant::now();
    let row = sqlx::query_as!(
        PredictionRow,
        "INSERT INTO predictions (match_id, user_id, strategy_type, model_version, p_home, p_draw, p_away,
             expected_goals_home, expected_goals_away, likely_home_goals, likely_away_goals, p_over_2_5, p_btts)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         RETURNING id, match_id, strategy_type, model_version, p_home, p_draw, p_away,
                   expected_goals_home, expected_goals_away, likely_home_goals, likely_away_goals, p_over_2_5, p_btts,
                   created_at",
        match_id.0,
        user.id.0,
        strategy.as_str(),
        p.model_version.chars().take(100).collect::<String>(),
        home,
        draw,
        away,
        p.expected_goals_home.clamp(0.0, 20.0),
        p.expected_goals_away.clamp(0.0, 20.0),
        i16::from(p.most_likely_score.0.min(20)),
        i16::from(p.most_likely_score.1.min(20)),
        p.over_2_5.clamp(0.0, 1.0),
        p.btts.clamp(0.0, 1.0),
    )
    .fetch_one(services.db.pool().await?)
    .instrument(tracing::info_span!("db.insert_prediction"))
    .await?;
    timings.store_ms = ms(started);
    let mut prediction = Prediction::from(row);
    if flags.market_comparison {
        prediction.market = MarketView::of(odds, prediction.probabilities);
    }
    Ok((prediction, timings))
}

/// The outcome of `POST /api/predictions` with its idempotency handling.
pub enum Created {
    New(Prediction, Timings),
    Replayed { status: u16, body: serde_json::Value },
}

/// [`create`] behind the `Idempotency-Key` (when given): the same key and body within 24 hours
/// returns the first response, another body is a 422. The caller's account is checked first
/// ([`prefetch`]). Emits `predictions_total`.
pub async fn create_idempotent(
    services: &Services,
    models: &ModelCache,
    caller: UncheckedUser,
    key: Option<&str>,
    request: &CreatePrediction,
) -> Result<Created, ApiError> {
    // A refused caller is not a prediction (as when the extractor refused it): no metric.
    let (user, prefetched) = prefetch(services, caller, request).await?;
    let user = &user;
    let strategy_label = Strategy::from_str(&request.strategy_type).map(Strategy::as_str).unwrap_or("invalid");
    let result = async {
        let Some(key) = key else {
            let (p, t) = create(services, models, user, prefetched, request).await?;
            return Ok(Created::New(p, t));
        };
        let body = serde_json::json!({"match_id": request.match_id, "strategy_type": request.strategy_type});
        let hash = idempotency::body_hash(&body);
        let scope = user.id.to_string();
        match idempotency::begin(services, &scope, key, &hash).await? {
            idempotency::Begin::Replay { status, body } => Ok(Created::Replayed { status, body }),
            idempotency::Begin::Proceed(reservation) => match create(services, models, user, prefetched, request).await
            {
                Ok((p, t)) => {
                    let value = serde_json::to_value(&p).map_err(ApiError::internal)?;
                    idempotency::complete(services, &reservation, 201, &value).await?;
                    Ok(Created::New(p, t))
                }
                Err(e) => {
                    idempotency::abandon(services, &reservation).await;
                    Err(e)
                }
            },
        }
    }
    .await;
    let outcome = match &result {
        Ok(Created::New(..)) => "created",
        Ok(Created::Replayed { .. }) => "replayed",
        Err(e) if e.status().is_client_error() => "rejected",
        Err(_) => "error",
    };
    metrics::emit(
        &[("strategy_type", strategy_label), ("result", outcome)],
        &[("predictions_total", MetricValue::Count(1.0))],
    );
    result
}

/// `GET /api/predictions/{id}`: the owner's or, for an admin, anyone's; else 404.
pub async fn get(services: &Services, user: &AuthUser, id: PredictionId) -> Result<Prediction, ApiError> {
    // The flags come from the instance's cache (no statement per request); the match's opening
    // odds are read in the same statement as the row, only when the market view is shown.
    let with_market = services.flags().await.market_comparison;
    let pool = services.db.pool().await?;
    let row = sqlx::query_as!(
        PredictionOddsRow,
        r#"SELECT p.id, p.match_id, p.user_id, p.strategy_type, p.model_version, p.p_home, p.p_draw, p.p_away,
                   p.expected_goals_home, p.expected_goals_away, p.likely_home_goals, p.likely_away_goals, p.p_over_2_5,
                   p.p_btts, p.created_at,
                   o.bookmakers AS "odds_bookmakers?: Vec<String>", o.home AS "odds_home?: Vec<f64>",
                   o.draw AS "odds_draw?: Vec<f64>", o.away AS "odds_away?: Vec<f64>"
         FROM predictions p
         CROSS JOIN LATERAL (
             SELECT array_agg(q.bookmaker) AS bookmakers, array_agg(q.home) AS home,
                    array_agg(q.draw) AS draw, array_agg(q.away) AS away
             FROM opening_quotes_1x2 q
             WHERE $2 AND q.match_id = p.match_id
         ) o
         WHERE p.id = $1"#,
        id.0,
        with_market
    )
    .fetch_optional(pool)
    .await?;
    match row {
        Some(r) if user.is_admin() || r.user_id == Some(user.id.0) => Ok(r.into_prediction()),
        _ => Err(ApiError::NotFound(format!("no prediction {id}"))),
    }
}

/// `GET /api/predictions`: the caller's predictions, newest first, keyset-paginated on
/// `(created_at, id)`.
pub async fn list(services: &Services, user: &AuthUser, query: &PredictionsQuery) -> Result<PredictionPage, ApiError> {
    let match_id = query
        .match_id
        .as_deref()
        .map(|m| MatchId::parse(m).map_err(|e| ApiError::invalid_field("match_id", e)))
        .transpose()?;
    let strategy = query.strategy_type.as_deref().map(parse_strategy).transpose()?;
    let limit = parse_limit(query.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = query.cursor.as_deref().map(|c| Cursor::decode(c, "cursor")).transpose()?;
    let with_market = services.flags().await.market_comparison;
    let pool = services.db.pool().await?;
    // The page is cut first (the index on (user_id, created_at DESC, id DESC)), then each of its
    // rows gets its match's opening quotes: limit + 1 lookups at most, never one per prediction
    // of the user.
    let mut rows = sqlx::query_as!(
        PredictionOddsRow,
        r#"SELECT p.id AS "id!", p.match_id AS "match_id!", p.user_id, p.strategy_type AS "strategy_type!",
                  p.model_version AS "model_version!", p.p_home AS "p_home!", p.p_draw AS "p_draw!",
                  p.p_away AS "p_away!", p.expected_goals_home AS "expected_goals_home!",
                  p.expected_goals_away AS "expected_goals_away!", p.likely_home_goals AS "likely_home_goals!",
                  p.likely_away_goals AS "likely_away_goals!", p.p_over_2_5 AS "p_over_2_5!", p.p_btts AS "p_btts!",
                  p.created_at AS "created_at!",
                  o.bookmakers AS "odds_bookmakers?: Vec<String>", o.home AS "odds_home?: Vec<f64>",
                  o.draw AS "odds_draw?: Vec<f64>", o.away AS "odds_away?: Vec<f64>"
         FROM (
             SELECT id, match_id, user_id, strategy_type, model_version, p_home, p_draw, p_away,
                    expected_goals_home, expected_goals_away, likely_home_goals, likely_away_goals, p_over_2_5,
                    p_btts, created_at
             FROM predictions
             WHERE user_id = $1
               AND ($2::bigint IS NULL OR match_id = $2)
               AND ($3::text IS NULL OR strategy_type = $3)
               AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5))
             ORDER BY created_at DESC, id DESC
             LIMIT $6
         ) p
         CROSS JOIN LATERAL (
             SELECT array_agg(q.bookmaker) AS bookmakers, array_agg(q.home) AS home,
                    array_agg(q.draw) AS draw, array_agg(q.away) AS away
             FROM opening_quotes_1x2 q
             WHERE $7 AND q.match_id = p.match_id
         ) o
         ORDER BY p.created_at DESC, p.id DESC"#,
        user.id.0,
        match_id.map(|m| m.0),
        strategy.map(Strategy::as_str),
        after.map(|c| c.at),
        after.map(|c| c.id).unwrap_or(0),
        limit + 1,
        with_market,
    )
    .fetch_all(pool)
    .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(|r| Cursor::new(r.created_at, r.id).encode()) } else { None };
    let items: Vec<Prediction> = rows.into_iter().map(PredictionOddsRow::into_prediction).collect();
    Ok(PredictionPage { items, next_cursor })
}
