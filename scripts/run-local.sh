#!/usr/bin/env bash
# `make run`: the embedded default. SQLite, in-process cache, Celery on a folder broker with
# beat, the offline demo provider (the project's mock server) and a printed demo key.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export DEBUG="${DEBUG:-1}"
export GATEWAYZ_DEMO_PROVIDER_KEY="${GATEWAYZ_DEMO_PROVIDER_KEY:-offline-demo}"
# The offline demo provider listens on loopback, which upstream calls may not reach otherwise.
export GATEWAYZ_UPSTREAM_NETWORKS="${GATEWAYZ_UPSTREAM_NETWORKS:-loopback}"
# A web sign-up gets a small trial (billing.trials), so the playground answers at once.
export GATEWAYZ_TRIAL_CREDIT="${GATEWAYZ_TRIAL_CREDIT:-2}"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
mkdir -p var

echo "Migrating (the first run takes about a minute)..."
$PY manage.py migrate --noinput -v 0
KEY=$($PY manage.py demo_setup)

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

$PY -m mockserver --host 127.0.0.1 --port 8001 --api-key "$GATEWAYZ_DEMO_PROVIDER_KEY" &
pids+=($!)
.venv/bin/celery -A config worker --beat --pool solo --loglevel warning \
  >var/celery.log 2>&1 &
pids+=($!)

cat <<MSG

  Gatewayz is starting on http://$HOST:$PORT  (admin: /admin/, after 'manage.py createsuperuser')
  Demo key (10 credits): $KEY

  curl http://$HOST:$PORT/v1/chat/completions \\
    -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" \\
    -d '{"model": "gatewayz/echo", "messages": [{"role": "user", "content": "Hello!"}]}'

MSG
.venv/bin/uvicorn config.asgi:application --host "$HOST" --port "$PORT" --no-access-log \
  --no-proxy-headers &
pids+=($!)
wait "${pids[-1]}"
