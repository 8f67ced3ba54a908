-- Predictions, their scores once the match is played, model versions and job runs.

CREATE TABLE model_versions (
    id              BIGSERIAL PRIMARY KEY,
    strategy_type   TEXT NOT NULL CHECK (strategy_type IN ('statistical', 'historical', 'ml_model')),
    version         TEXT NOT NULL CHECK (length(version) BETWEEN 1 AND 100),
    artifact_key    TEXT,                        -- S3 key of the artifact (ml_model)
    artifact_sha256 TEXT CHECK (artifact_sha256 IS NULL OR artifact_sha256 ~ '^[0-9a-f]{64}$'),
    metrics         JSONB NOT NULL DEFAULT '{}'::jsonb,   -- evaluation: rps, log_loss, matches...
    trained_matches INTEGER CHECK (trained_matches >= 0),
    is_active       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (strategy_type, version)
);
-- At most one active version per strategy; the others stay to roll back to.
CREATE UNIQUE INDEX model_versions_one_active_idx ON model_versions (strategy_type) WHERE is_active;

CREATE TABLE predictions (
    id                  BIGSERIAL PRIMARY KEY,
    match_id            BIGINT NOT NULL REFERENCES matches (id),
    user_id             BIGINT REFERENCES users (id) ON DELETE SET NULL,   -- the owner
    strategy_type       TEXT NOT NULL CHECK (strategy_type IN ('statistical', 'historical', 'ml_model')),
    model_version       TEXT NOT NULL CHECK (length(model_version) BETWEEN 1 AND 100),
    p_home              DOUBLE PRECISION NOT NULL CHECK (p_home BETWEEN 0 AND 1),
    p_draw              DOUBLE PRECISION NOT NULL CHECK (p_draw BETWEEN 0 AND 1),
    p_away              DOUBLE PRECISION NOT NULL CHECK (p_away BETWEEN 0 AND 1),
    expected_goals_home DOUBLE PRECISION NOT NULL CHECK (expected_goals_home BETWEEN 0 AND 20),
    expected_goals_away DOUBLE PRECISION NOT NULL CHECK (expected_goals_away BETWEEN 0 AND 20),
    likely_home_goals   SMALLINT NOT NULL CHECK (likely_home_goals BETWEEN 0 AND 20),
    likely_away_goals   SMALLINT NOT NULL CHECK (likely_away_goals BETWEEN 0 AND 20),
    p_over_2_5          DOUBLE PRECISION NOT NULL CHECK (p_over_2_5 BETWEEN 0 AND 1),
    p_btts              DOUBLE PRECISION NOT NULL CHECK (p_btts BETWEEN 0 AND 1),
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT probabilities_sum_to_one CHECK (abs(p_home + p_draw + p_away - 1) < 1e-6)
);
CREATE INDEX predictions_match_strategy_idx ON predictions (match_id, strategy_type);
CREATE INDEX predictions_created_idx ON predictions (created_at, id);
CREATE INDEX predictions_user_created_idx ON predictions (user_id, created_at DESC, id DESC);

-- A settled prediction's score: written once, when its match is finished.
CREATE TABLE prediction_scores (
    prediction_id   BIGINT PRIMARY KEY REFERENCES predictions (id) ON DELETE CASCADE,
    match_id        BIGINT NOT NULL REFERENCES matches (id),
    strategy_type   TEXT NOT NULL CHECK (strategy_type IN ('statistical', 'historical', 'ml_model')),
    model_version   TEXT NOT NULL,
    outcome         TEXT NOT NULL CHECK (outcome IN ('home', 'draw', 'away')),
    rps             DOUBLE PRECISION NOT NULL CHECK (rps BETWEEN 0 AND 1),
    brier           DOUBLE PRECISION NOT NULL CHECK (brier BETWEEN 0 AND 2),
    log_loss        DOUBLE PRECISION NOT NULL CHECK (log_loss >= 0),
    correct         BOOLEAN NOT NULL,            -- the most likely outcome happened
    settled_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX prediction_scores_strategy_idx ON prediction_scores (strategy_type, model_version, settled_at);

-- Every run of a scheduled job: what the admin statistics show and what alarms watch.
CREATE TABLE job_runs (
    id              BIGSERIAL PRIMARY KEY,
    job             TEXT NOT NULL CHECK (job ~ '^[a-z_]{2,40}$'),
    started_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at     TIMESTAMPTZ,
    outcome         TEXT NOT NULL DEFAULT 'running' CHECK (outcome IN ('running', 'succeeded', 'failed', 'skipped', 'partial')),
    counts          JSONB NOT NULL DEFAULT '{}'::jsonb,
    error           TEXT,
    CHECK (finished_at IS NULL OR finished_at >= started_at)
);
CREATE INDEX job_runs_job_started_idx ON job_runs (job, started_at DESC);

-- Where a job got to, so that a run stopped by its deadline resumes on the next one.
CREATE TABLE job_checkpoints (
    job         TEXT NOT NULL,
    scope       TEXT NOT NULL,                   -- e.g. a competition code
    state       JSONB NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (job, scope)
);
