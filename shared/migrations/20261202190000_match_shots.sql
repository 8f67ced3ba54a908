-- Issue 14: shots and shots on target of a match (football-data.co.uk's HS, AS, HST, AST), the
-- second signal of strength `statistical` can mix into its goal rates. Only the CSV import
-- writes them (football-data.org's v4 API has no match statistics); NULL when the source did not
-- have them. All four or none, as the importer reads them.
-- Column additions keep the table grants of 20261202001100_least_privilege_roles.sql
-- (football_app: SELECT, INSERT, UPDATE, DELETE on matches; football_backup: SELECT).
ALTER TABLE matches
    ADD COLUMN home_shots            SMALLINT CHECK (home_shots BETWEEN 0 AND 255),
    ADD COLUMN away_shots            SMALLINT CHECK (away_shots BETWEEN 0 AND 255),
    ADD COLUMN home_shots_on_target  SMALLINT CHECK (home_shots_on_target BETWEEN 0 AND 255),
    ADD COLUMN away_shots_on_target  SMALLINT CHECK (away_shots_on_target BETWEEN 0 AND 255),
    ADD CONSTRAINT match_shots_all_or_none CHECK (
        (home_shots IS NULL) = (away_shots IS NULL)
        AND (home_shots IS NULL) = (home_shots_on_target IS NULL)
        AND (home_shots IS NULL) = (away_shots_on_target IS NULL));
