-- Driftledger database roles. Run once per database as a superuser, after creating the database:
--   psql -d driftledger -f deploy/roles.sql
-- Then run migrations as driftledger_owner and the web/worker processes as driftledger_app.
-- Set passwords with \password driftledger_owner / \password driftledger_app.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'driftledger_owner') THEN
        CREATE ROLE driftledger_owner LOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'driftledger_app') THEN
        CREATE ROLE driftledger_app LOGIN;
    END IF;
END
$$;

-- The owner creates and migrates the schema; the application only uses it.
GRANT USAGE, CREATE ON SCHEMA public TO driftledger_owner;
GRANT USAGE ON SCHEMA public TO driftledger_app;

-- Tables the owner creates from now on: the application may read and change read models ...
ALTER DEFAULT PRIVILEGES FOR ROLE driftledger_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO driftledger_app;
ALTER DEFAULT PRIVILEGES FOR ROLE driftledger_owner IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO driftledger_app;

-- ... but the log itself is append-only for it: SELECT and INSERT, nothing else. Re-run this
-- part after migrations that create audit tables (deploy/grant_audit.sql does just this).
\ir grant_audit.sql
