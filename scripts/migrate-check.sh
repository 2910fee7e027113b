#!/usr/bin/env bash
# Applies every migration to an empty Postgres database, then drops it.
set -euo pipefail
cd "$(dirname "$0")/.."
DB="gatewayz_migrate_check_$$"
BASE="${MIGRATE_CHECK_SERVER:-postgres://postgres@127.0.0.1:5432}"
psql "$BASE/postgres" -qc "CREATE DATABASE $DB"
trap 'psql "$BASE/postgres" -qc "DROP DATABASE IF EXISTS $DB"' EXIT
DJANGO_SETTINGS_MODULE=config.settings_test DATABASE_URL="$BASE/$DB" \
  .venv/bin/python manage.py migrate --noinput -v 0
echo "migrations apply cleanly from zero"
