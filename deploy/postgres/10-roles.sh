#!/bin/sh
# PostgreSQL's first start (docker-entrypoint-initdb.d): the owner and application roles of
# deploy/roles.sql, with the passwords the compose file passes in.
set -eu
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f /driftledger-sql/roles.sql
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" \
    -v owner_password="$OWNER_DB_PASSWORD" -v app_password="$APP_DB_PASSWORD" <<'SQL'
ALTER ROLE driftledger_owner PASSWORD :'owner_password';
ALTER ROLE driftledger_app PASSWORD :'app_password';
SQL
