FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 GATEWAYZ_VAR_DIR=/app/var
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY config config
COPY gateway gateway
COPY accounts accounts
COPY billing billing
COPY providers providers
COPY monitoring monitoring
COPY mockserver mockserver
COPY templates templates
COPY static static
COPY manage.py ./
RUN pip install --no-cache-dir . && useradd --system gatewayz && mkdir -p var/usage-spool \
    && chown -R gatewayz var
USER gatewayz
EXPOSE 8000
CMD ["uvicorn", "config.asgi:application", "--host", "0.0.0.0", "--port", "8000", \
     "--workers", "2", "--no-access-log", "--no-proxy-headers"]
