-- A per-competition data version: ingestion (football-data.org) and CSV import (football-data.co.uk)
-- increment it in the same transaction as any change they make to that competition's matches,
-- teams or odds (new row, status change, score correction, kick-off moved, odds changed). Readers
-- put it into their cache keys and model-state keys (e.g. `fp:matches:PL:v42:...`), so new data
-- makes the old entries unreachable without having to find and delete them. It only ever grows.
ALTER TABLE competitions ADD COLUMN data_version BIGINT NOT NULL DEFAULT 0 CHECK (data_version >= 0);
