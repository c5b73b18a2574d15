-- Run once by the PostgreSQL container on its first start (/docker-entrypoint-initdb.d/), as
-- POSTGRES_USER in POSTGRES_DB. It holds what the server needs and migrations should not own;
-- the schema itself comes only from Alembic (the backend runs `alembic upgrade head`).

-- Everything PerfWatch stores is UTC; sessions that forget to say so get UTC too.
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET timezone TO %L', current_database(), 'UTC');
END
$$;

-- Query statistics for tuning (loaded through shared_preload_libraries in docker-compose.yml).
-- Created only where the server ships the extension, so a minimal PostgreSQL build still starts.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements') THEN
        CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
    ELSE
        RAISE NOTICE 'pg_stat_statements is not available on this server; skipped';
    END IF;
END
$$;

-- A read-only group role for dashboards and BI tools. It cannot log in itself; grant it to a
-- login role of your own, e.g.:
--   CREATE ROLE grafana LOGIN PASSWORD '…' IN ROLE perfwatch_readonly;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'perfwatch_readonly') THEN
        CREATE ROLE perfwatch_readonly NOLOGIN;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO perfwatch_readonly', current_database());
END
$$;
GRANT USAGE ON SCHEMA public TO perfwatch_readonly;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO perfwatch_readonly;
-- Tables and daily partitions created later by the migrations and the application (as this
-- database's owner) are readable too.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO perfwatch_readonly;
