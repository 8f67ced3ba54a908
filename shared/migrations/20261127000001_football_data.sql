-- Competitions, teams (with the names other sources use), matches and bookmaker odds.

CREATE TABLE competitions (
    id          BIGSERIAL PRIMARY KEY,
    code        TEXT NOT NULL UNIQUE CHECK (code ~ '^[A-Z0-9]{2,10}$'),   -- 'PL', as football-data.org names it
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    area        TEXT,
    source_id   BIGINT UNIQUE,                                          -- football-data.org id
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE teams (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),  -- canonical name
    short_name  TEXT,
    tla         TEXT CHECK (tla ~ '^[A-Z0-9]{2,4}$'),
    source_id   BIGINT UNIQUE,                                          -- football-data.org id
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The same club under the names of different sources ('Man City' at football-data.co.uk,
-- 'Manchester City FC' at football-data.org): one team, many aliases.
CREATE TABLE team_aliases (
    source      TEXT NOT NULL CHECK (source IN ('football-data.org', 'football-data.co.uk', 'tla', 'manual')),
    alias       TEXT NOT NULL CHECK (length(alias) BETWEEN 1 AND 200),
    team_id     BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    PRIMARY KEY (source, alias)
);
CREATE INDEX team_aliases_team_idx ON team_aliases (team_id);

CREATE TABLE matches (
    id              BIGSERIAL PRIMARY KEY,
    competition_id  BIGINT NOT NULL REFERENCES competitions (id),
    season          INTEGER NOT NULL CHECK (season BETWEEN 1850 AND 2200),  -- the year the season starts
    matchday        INTEGER CHECK (matchday BETWEEN 1 AND 100),
    stage           TEXT,
    kickoff_at      TIMESTAMPTZ NOT NULL,
    status          TEXT NOT NULL DEFAULT 'SCHEDULED' CHECK (status IN
                        ('SCHEDULED', 'TIMED', 'IN_PLAY', 'PAUSED', 'FINISHED', 'POSTPONED',
                         'SUSPENDED', 'CANCELLED', 'AWARDED')),
    home_team_id    BIGINT NOT NULL REFERENCES teams (id),
    away_team_id    BIGINT NOT NULL REFERENCES teams (id),
    home_goals      SMALLINT CHECK (home_goals BETWEEN 0 AND 99),
    away_goals      SMALLINT CHECK (away_goals BETWEEN 0 AND 99),
    home_goals_ht   SMALLINT CHECK (home_goals_ht BETWEEN 0 AND 99),
    away_goals_ht   SMALLINT CHECK (away_goals_ht BETWEEN 0 AND 99),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT a_team_never_plays_itself CHECK (home_team_id <> away_team_id),
    CONSTRAINT both_scores_or_neither CHECK ((home_goals IS NULL) = (away_goals IS NULL)),
    CONSTRAINT a_finished_match_has_a_score CHECK (status <> 'FINISHED' OR home_goals IS NOT NULL),
    -- In a league season each pairing is played once at each ground: the natural key that lets
    -- two sources (football-data.org, football-data.co.uk) land on the same row.
    CONSTRAINT one_fixture_per_pairing_and_season UNIQUE (competition_id, season, home_team_id, away_team_id)
);
CREATE INDEX matches_kickoff_idx ON matches (kickoff_at, id);
CREATE INDEX matches_competition_kickoff_idx ON matches (competition_id, kickoff_at, id);
CREATE INDEX matches_home_team_kickoff_idx ON matches (home_team_id, kickoff_at, id);
CREATE INDEX matches_away_team_kickoff_idx ON matches (away_team_id, kickoff_at, id);
CREATE INDEX matches_status_idx ON matches (status);

-- Where a match came from: one row per source and source id, so re-ingestion updates, never duplicates.
CREATE TABLE match_sources (
    source      TEXT NOT NULL CHECK (source IN ('football-data.org', 'football-data.co.uk', 'demo')),
    source_id   TEXT NOT NULL CHECK (length(source_id) BETWEEN 1 AND 200),
    match_id    BIGINT NOT NULL REFERENCES matches (id) ON DELETE CASCADE,
    PRIMARY KEY (source, source_id),
    UNIQUE (match_id, source)
);

-- Bookmaker odds, long format: one decimal price per match, bookmaker, market, phase and outcome.
CREATE TABLE match_odds (
    match_id    BIGINT NOT NULL REFERENCES matches (id) ON DELETE CASCADE,
    bookmaker   TEXT NOT NULL CHECK (length(bookmaker) BETWEEN 1 AND 50),  -- 'pinnacle', 'bet365', 'market_average'
    market      TEXT NOT NULL CHECK (market IN ('1x2', 'over_under_2_5')),
    phase       TEXT NOT NULL CHECK (phase IN ('opening', 'closing')),
    outcome     TEXT NOT NULL CHECK (outcome IN ('home', 'draw', 'away', 'over', 'under')),
    price       NUMERIC(8, 3) NOT NULL CHECK (price > 1),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (match_id, bookmaker, market, phase, outcome),
    CONSTRAINT outcome_belongs_to_market CHECK (
        (market = '1x2' AND outcome IN ('home', 'draw', 'away'))
        OR (market = 'over_under_2_5' AND outcome IN ('over', 'under')))
);
