//! Import of football-data.co.uk CSV files (the engine's importer) into the database, from a path or an S3 object.
