-- Issue 13: one definition of a match's opening 1X2 quotes, read by a prediction's context
-- (`match_context`), `GET /api/predictions/{id}` and `GET /api/predictions`
-- (shared/src/predictions): one row per match and bookmaker with all three prices, the highest
-- stored price of each outcome (the primary key makes each price unique), complete quotes only.
-- What `history::group_odds` makes of the same rows; the readers put the bookmakers in order
-- (`predictions::opening_quotes`), the view has none.
--
-- A qual on `match_id` (a grouping column) is pushed into the grouped scan, also from a LATERAL
-- subquery: an index scan on match_odds' primary key, not a scan of every odds row
-- (docs/performance.md).
CREATE VIEW opening_quotes_1x2 AS
SELECT x.match_id,
       x.bookmaker,
       (MAX(x.price) FILTER (WHERE x.outcome = 'home'))::float8 AS home,
       (MAX(x.price) FILTER (WHERE x.outcome = 'draw'))::float8 AS draw,
       (MAX(x.price) FILTER (WHERE x.outcome = 'away'))::float8 AS away
FROM match_odds x
WHERE x.market = '1x2' AND x.phase = 'opening'
GROUP BY x.match_id, x.bookmaker
HAVING MAX(x.price) FILTER (WHERE x.outcome = 'home') IS NOT NULL
   AND MAX(x.price) FILTER (WHERE x.outcome = 'draw') IS NOT NULL
   AND MAX(x.price) FILTER (WHERE x.outcome = 'away') IS NOT NULL;

-- Read-only for the functions and the backup job, whoever runs this migration (the default
-- privileges of 20261202001100 apply only to objects created by the role that set them, and
-- would give the functions INSERT, UPDATE and DELETE on a view that accepts none).
REVOKE ALL ON opening_quotes_1x2 FROM football_app, football_backup;
GRANT SELECT ON opening_quotes_1x2 TO football_app, football_backup;
