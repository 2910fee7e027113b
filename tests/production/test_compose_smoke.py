"""The production smoke lane: docker-compose.yml's own services, run as processes on this
machine (no Docker daemon here), with the documented production variables
(deploy/production.env.example: DEBUG=0, GATEWAYZ_HTTPS=1, generated secrets).

`docker-compose config` validates the file and resolves each service's command and
environment; the commands run as written, with only what a container gives changed: hosts
(postgres, redis, inference, web → loopback ports), `/app` paths (→ a temporary
directory), the console-script names (→ this Python's `-m`). Postgres and Redis are their
own (Redis with compose's AOF and noeviction), the proxy is Caddy with docs/Caddyfile
serving https://localhost from its own CA, and static files are collected as the
Dockerfile does. Then: the admin's CSS loads, /metrics is refused from outside, HTTP goes
to HTTPS, `check --deploy` is clean, a chat request through the proxy is served and
billed, and the compose healthchecks pass.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import psycopg
import pytest
import yaml

from bench.chaos.services import OwnPostgres, OwnRedis
from bench.chaos.topology import DB, cluster_migrated
from tests.support.production import ROOT, production_env
from tests.support.servers import free_port

pytestmark = pytest.mark.skipif(
    not (shutil.which("docker-compose") and shutil.which("caddy")),
    reason="needs Debian's docker-compose and caddy (.ci/run installs them)",
)

COMPOSE = ROOT / "docker-compose.yml"
APP_SERVICES = ("inference", "web", "worker", "beat")


def compose_config(env: dict[str, str]) -> dict:
    """The file as compose reads it, variables substituted; fails on an invalid file."""
    done = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config"],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    config: dict = yaml.safe_load(done.stdout)
    return config


@dataclass
class Deployment:
    root: Path
    config: dict
    pg: OwnPostgres
    redis: OwnRedis
    url: str = ""  # the proxy's HTTPS address
    http_url: str = ""  # its plain HTTP port (redirects)
    ports: dict[str, int] = field(default_factory=dict)
    envs: dict[str, dict[str, str]] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ca: Path = Path()
    upstream_key: str = ""

    def service(self, name: str) -> dict:
        service: dict = self.config["services"][name]
        return service

    def localised(self, arg: str, service: str = "") -> str:
        """A container's path, or its own port 8000 (a healthcheck's), as on this machine."""
        arg = arg.replace("/app/var", str(self.root / "var"))
        if service in self.ports:
            arg = arg.replace("127.0.0.1:8000", f"127.0.0.1:{self.ports[service]}")
        return arg

    def command(self, name: str) -> list[str]:
        args = [self.localised(a) for a in self.service(name)["command"]]
        if args[0] in {"uvicorn", "celery"}:
            args = [sys.executable, "-m", *args]
        if "--port" in args:
            args[args.index("--port") + 1] = str(self.ports[name])
        if "--host" in args:
            args[args.index("--host") + 1] = "127.0.0.1"
        return args

    def env(self, name: str) -> dict[str, str]:
        env = {k: "" if v is None else str(v) for k, v in self.service(name)["environment"].items()}
        env["DATABASE_URL"] = self.pg.url(DB)
        env["REDIS_URL"] = self.redis.url(0)
        env["CELERY_BROKER_URL"] = self.redis.url(1)
        if "PROMETHEUS_MULTIPROC_DIR" in env:  # a tmpfs: empty at each start
            directory = self.root / f"metrics-{name}"
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir()
            env["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
        return {
            "PATH": os.environ["PATH"],
            "HOME": str(self.root),
            "LANG": "C.UTF-8",
            # What the Dockerfile sets.
            "PYTHONUNBUFFERED": "1",
            "GATEWAYZ_VAR_DIR": str(self.root / "var"),
            "STATIC_ROOT": str(self.root / "staticfiles"),
            **env,
            # The proxy is on loopback here, not compose's private network.
            "GATEWAYZ_TRUSTED_PROXIES": "127.0.0.1/32,::1/128",
            # The upstream is the project's mock on loopback, which production refuses.
            "GATEWAYZ_UPSTREAM_NETWORKS": "loopback",
            "GATEWAYZ_CATALOG_FILES": str(self.root / "catalog.toml"),
            "GATEWAYZ_SMOKE_UPSTREAM_KEY": self.upstream_key,
        }

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 (the child's)
        self.procs[name] = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True
        )

    def log_of(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")[-3000:]

    def wait(self, name: str, url: str, **httpx_args: object) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited:\n{self.log_of(name)}")
            try:
                if httpx.get(url, timeout=3, **httpx_args).status_code == 200:  # type: ignore[arg-type]
                    return
            except (httpx.TransportError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not answer {url}:\n{self.log_of(name)}")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, 15)
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
        self.redis.stop()
        self.pg.stop()


@pytest.fixture(scope="module")
def deployment(mock_upstream) -> Iterator[Deployment]:
    # Not under pytest's own temporary folder, which only root may enter: Postgres runs as
    # its own user when the tests run as root.
    root = Path(tempfile.mkdtemp(prefix="gatewayz-production-"))
    root.chmod(0o755)
    for folder in ("var/usage-spool", "var/beat"):  # as the Dockerfile makes them
        (root / folder).mkdir(parents=True)
    proxy_port, http_port, admin_port = free_port(), free_port(), free_port()
    site = f"https://localhost:{proxy_port}"
    variables = {
        **production_env(),
        "GATEWAYZ_SITE_ADDRESS": site,
        "GATEWAYZ_PUBLIC_URL": site,
        "ALLOWED_HOSTS": "localhost",
        "CSRF_TRUSTED_ORIGINS": site,
        # Nothing outside this machine is reachable: no payments, mail to the console.
        "STRIPE_SECRET_KEY": "",
        "STRIPE_WEBHOOK_SECRET": "",
        "EMAIL_ESP": "",
        "EMAIL_ESP_API_KEY": "",
        "OPENAI_API_KEY": "",
        "LOG_FORMAT": "json",
    }
    config = compose_config(variables)
    catalog = (ROOT / "tests" / "data" / "smoke-catalog.toml").read_text()
    (root / "catalog.toml").write_text(catalog.replace("{mock}", mock_upstream.url))

    d = Deployment(root, config, OwnPostgres(root / "pg"), OwnRedis(root / "redis"))
    d.ports = {"inference": free_port(), "web": free_port()}
    d.upstream_key = mock_upstream.api_key
    d.redis.up()
    try:
        cluster_migrated(d.pg, d.env("web"))
        # The one-shot `migrate` service, as written (migrate, then the catalog).
        migrate = d.service("migrate")["command"]
        assert migrate[:2] == ["sh", "-c"]
        script = migrate[2].replace("python ", f"{shlex.quote(sys.executable)} ")
        subprocess.run(["sh", "-c", script], cwd=ROOT, env=d.env("migrate"), check=True)
        # The Dockerfile's collectstatic (its throwaway secrets; nothing else uses them).
        dockerfile = (ROOT / "Dockerfile").read_text()
        assert "manage.py collectstatic --noinput" in dockerfile
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
            cwd=ROOT,
            env={**d.env("web"), "DEBUG": "0", "SECRET_KEY": "collectstatic"},
            check=True,
        )
        for name in APP_SERVICES:
            d.spawn(name, d.command(name), d.env(name))
        for name in ("inference", "web"):
            d.wait(name, f"http://127.0.0.1:{d.ports[name]}/health/readiness")
        caddy_env = {
            "PATH": os.environ["PATH"],
            "HOME": str(root),
            "XDG_DATA_HOME": str(root / "caddy-data"),
            "XDG_CONFIG_HOME": str(root / "caddy-config"),
            "CADDY_ADMIN_ADDRESS": f"127.0.0.1:{admin_port}",
            "CADDY_HTTP_PORT": str(http_port),
            "GATEWAYZ_SITE_ADDRESS": config["services"]["proxy"]["environment"][
                "GATEWAYZ_SITE_ADDRESS"
            ],
            "GATEWAYZ_INFERENCE_UPSTREAM": f"127.0.0.1:{d.ports['inference']}",
            "GATEWAYZ_WEB_UPSTREAM": f"127.0.0.1:{d.ports['web']}",
        }
        d.spawn(
            "proxy",
            [
                "caddy",
                "run",
                "--config",
                str(ROOT / "docs" / "Caddyfile"),
                "--adapter",
                "caddyfile",
            ],
            caddy_env,
        )
        d.ca = root / "caddy-data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        deadline = time.monotonic() + 30
        while not d.ca.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        d.url, d.http_url = site, f"http://localhost:{http_port}"
        d.wait("proxy", f"{site}/health", verify=_trusting(d))
        yield d
    finally:
        d.stop()
        shutil.rmtree(root, ignore_errors=True)


def _trusting(d: Deployment) -> ssl.SSLContext:
    """Trusts the proxy's certificate, issued by Caddy's own CA for localhost."""
    return ssl.create_default_context(cafile=str(d.ca))


def _get(d: Deployment, path: str, **kwargs: object) -> httpx.Response:
    return httpx.get(f"{d.url}{path}", verify=_trusting(d), timeout=20, **kwargs)  # type: ignore[arg-type]


def test_the_admins_css_loads_through_the_proxy(deployment):
    page = _get(deployment, "/admin/login/")
    assert page.status_code == 200
    [css] = re.findall(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', page.text)
    sheet = _get(deployment, css, headers={"accept-encoding": "br, gzip"})
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/css")
    assert "max-age=315360000" in sheet.headers["cache-control"]  # hashed: kept for good
    assert sheet.headers.get("content-encoding") in {"br", "gzip"}
    assert "body" in sheet.text
    assert _get(deployment, "/static/admin/css/base.css").status_code == 200


def test_https_everywhere(deployment):
    page = _get(deployment, "/login")
    assert page.status_code == 200
    assert "max-age=31536000" in page.headers["strict-transport-security"]
    cookies = page.headers.get_list("set-cookie")
    assert cookies and all("Secure" in cookie for cookie in cookies)
    plain = httpx.get(f"{deployment.http_url}/login", timeout=10)
    assert plain.status_code in {301, 308}
    assert plain.headers["location"].startswith("https://localhost")


def test_metrics_are_refused_from_outside_and_served_inside(deployment):
    outside = _get(deployment, "/metrics")
    assert outside.status_code == 403 and "gatewayz_" not in outside.text
    for name in ("inference", "web"):
        inside = httpx.get(f"http://127.0.0.1:{deployment.ports[name]}/metrics", timeout=10)
        assert inside.status_code == 200 and "gatewayz_requests_in_flight" in inside.text
    # Past a proxy that forgot the rule, the app still refuses a forwarded request.
    forwarded = httpx.get(
        f"http://127.0.0.1:{deployment.ports['web']}/metrics",
        headers={"x-forwarded-for": "198.51.100.7"},
    )
    assert forwarded.status_code == 403


def test_check_deploy_is_clean(deployment):
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=deployment.env("web"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _sql(d: Deployment, query: str, *args: object) -> list[tuple]:
    with psycopg.connect(d.pg.url(DB)) as conn:
        return conn.execute(query, args).fetchall()


def test_a_chat_request_is_served_and_billed(deployment):
    made = subprocess.run(
        [sys.executable, "manage.py", "create_api_user", "smoke@example.com", "--credit", "5"],
        cwd=ROOT,
        env=deployment.env("web"),
        capture_output=True,
        text=True,
        check=True,
    )
    key = made.stdout.strip().splitlines()[-1]
    client = openai.OpenAI(
        base_url=f"{deployment.url}/v1",
        api_key=key,
        max_retries=0,
        http_client=httpx.Client(verify=_trusting(deployment), timeout=30),
    )
    raw = client.chat.completions.with_raw_response.create(
        model="smoke/echo", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.parse().choices[0].message.content == "You said: hi"
    cost = Decimal(raw.headers["x-gatewayz-cost"])
    assert cost > 0
    request_id = raw.headers["x-request-id"]
    deadline = time.monotonic() + 30
    while not (
        rows := _sql(
            deployment,
            "SELECT status, cost FROM monitoring_requestlog WHERE request_id = %s",
            request_id,
        )
    ):
        assert time.monotonic() < deadline, "the request was never recorded"
        time.sleep(0.2)
    assert rows == [(200, cost)]
    [(balance,)] = _sql(
        deployment,
        "SELECT a.balance FROM billing_creditaccount a JOIN accounts_user u ON u.id = a.user_id"
        " WHERE u.email = %s",
        "smoke@example.com",
    )
    assert balance == Decimal(5) - cost


def test_the_compose_healthchecks_pass(deployment):
    for name in ("inference", "web", "beat", "worker"):
        check = deployment.service(name)["healthcheck"]["test"]
        kind, args = check[0], check[1:]
        args = [deployment.localised(a, name) for a in args]
        if kind == "CMD-SHELL":
            script = args[0].replace("celery ", f"{shlex.quote(sys.executable)} -m celery ")
            args = ["sh", "-c", script.replace("$$", "$")]
        elif args[0] == "python":
            args = [sys.executable, *args[1:]]
        env = {**deployment.env(name), "HOSTNAME": socket.gethostname()}
        done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{name}: {done.stdout}{done.stderr}"


@pytest.mark.skipif(not shutil.which("promtool"), reason="needs Debian's prometheus")
def test_the_prometheus_config_is_valid():
    done = subprocess.run(
        ["promtool", "check", "config", str(ROOT / "docs" / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
