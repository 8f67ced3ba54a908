-- Least-privilege database roles (issue 11). Group roles, NOLOGIN: the login users the functions
-- connect as are members of them, created with their passwords by the `migrate` function from
-- their Secrets Manager secrets (a password never appears in a migration).
--
--   football_app     every function but migrate and backup: DML on the tables, nothing else
--                    (no DDL, no migration history)
--   football_backup  the backup job: reads every table, records its runs; its login user also has
--                    CREATEDB for the restore drill's scratch database (a role attribute, given
--                    to the login user by `migrate`, not inheritable through a group)
--   migrate          connects as the cluster's master user: the schema's owner (DDL)
--
-- Roles belong to the cluster and this runs in every database (tests, the restore drill's scratch
-- databases): create them only when missing, and tolerate a concurrent creation.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'football_app') THEN
    BEGIN
      CREATE ROLE football_app NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'football_backup') THEN
    BEGIN
      CREATE ROLE football_backup NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
  END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO football_app, football_backup;

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO football_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO football_app;
REVOKE ALL ON _sqlx_migrations FROM football_app;

GRANT SELECT ON ALL TABLES IN SCHEMA public TO football_backup;
GRANT INSERT, UPDATE ON job_runs, job_checkpoints TO football_backup;
GRANT DELETE ON job_checkpoints TO football_backup;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO football_backup;

-- Tables and sequences later migrations create get the same grants.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO football_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO football_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO football_backup;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO football_backup;
