# The one image every app service of docker-compose.yml and deploy/k8s runs: the gateway's
# inference workers, the web workers (admin, API, pages, Stripe), Celery worker and beat.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    GATEWAYZ_VAR_DIR=/app/var STATIC_ROOT=/app/staticfiles
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*

# The pinned dependencies first, in a layer of their own: a code change does not reinstall
# them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt && rm /tmp/requirements.txt

COPY . .
# Static files hashed and compressed into the image (whitenoise serves them from the web
# workers). The settings demand secrets even for this; these two are used for nothing else.
RUN DEBUG=0 SECRET_KEY=collectstatic GATEWAYZ_KEY_PEPPER=collectstatic \
        python manage.py collectstatic --noinput --verbosity 0 \
    && useradd --system --uid 10001 --user-group gatewayz \
    && mkdir -p var/usage-spool var/beat && chown -R gatewayz var
# Numeric, so Kubernetes can tell it is not root (runAsNonRoot).
USER 10001
EXPOSE 8000
# The web workers; the other services give their own command (docker-compose.yml).
CMD ["uvicorn", "config.asgi:application", "--host", "0.0.0.0", "--port", "8000", \
     "--workers", "2", "--no-access-log", "--no-proxy-headers"]
