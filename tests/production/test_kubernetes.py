"""deploy/k8s: the base and the production overlay, as `kubectl kustomize` builds them,
are valid against the Kubernetes schemas, and say what the compose file says: the same
commands, every setting from the ConfigMap and the Secret, probes on the health
endpoints, and no setting the code does not read."""

from __future__ import annotations

import re
import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml

from tests.support.production import ROOT

pytestmark = [
    pytest.mark.smoke,
    pytest.mark.skipif(not shutil.which("kubectl"), reason="needs kubectl (kustomize)"),
]

K8S = ROOT / "deploy" / "k8s"
BUILDS = ("base", "overlays/production")
# The oldest Kubernetes still supported upstream when this was written, and the newest the
# schemas know.
VERSIONS = ("1.32.0", "1.37.0")


def built(which: str) -> list[dict]:
    done = subprocess.run(
        ["kubectl", "kustomize", str(K8S / which)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def workloads(docs: list[dict]) -> dict[str, dict]:
    """component → its pod spec, for every Deployment, StatefulSet and Job."""
    return {
        doc["metadata"]["labels"]["app.kubernetes.io/component"]: doc["spec"]["template"]["spec"]
        for doc in docs
        if doc["kind"] in {"Deployment", "StatefulSet", "Job"}
    }


@pytest.mark.parametrize("which", BUILDS)
@pytest.mark.parametrize("version", VERSIONS)
def test_every_resource_is_valid(which, version):
    docs = built(which)
    assert {d["kind"] for d in docs} >= {
        "ConfigMap",
        "Service",
        "StatefulSet",
        "Deployment",
        "Job",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_commands_are_the_compose_files():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    pods = workloads(built("overlays/production"))
    assert set(pods) == {"inference", "web", "worker", "beat", "migrate"}
    for component, pod in pods.items():
        [container] = pod["containers"]
        ours = compose[component]["command"]
        # Kubernetes adds what only it needs (a graceful-shutdown bound, a concurrency).
        assert container["command"][: len(ours)] == ours, component


def test_every_process_gets_every_setting_and_is_probed():
    pods = workloads(built("overlays/production"))
    for component, pod in pods.items():
        for container in pod.get("initContainers", []) + pod["containers"]:
            sources = [next(iter(s.values()))["name"] for s in container["envFrom"]]
            assert sources == ["gatewayz-config", "gatewayz-secrets"], component
            assert container["resources"]["requests"], component
            assert container["securityContext"]["readOnlyRootFilesystem"], component
        assert pod["securityContext"]["runAsNonRoot"]
    for component in ("inference", "web"):
        [container] = pods[component]["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/readiness"
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/app/var/usage-spool" in mounts  # a disk of the pod's own, kept
    for component in ("worker", "beat"):
        assert "exec" in pods[component]["containers"][0]["livenessProbe"]


def test_beat_is_one_and_never_two():
    [beat] = [
        d
        for d in built("overlays/production")
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "beat"
        and d["kind"] == "Deployment"
    ]
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"


def _settings_read() -> set[str]:
    """Every environment variable name the code reads."""
    names: set[str] = set()
    for path in [*ROOT.glob("config/*.py"), *ROOT.glob("core/*.py")]:
        names |= set(re.findall(r'env_\w+\(\s*"([A-Z0-9_]+)"', path.read_text()))
        names |= set(re.findall(r'environ(?:\.get)?[\(\[]\s*"([A-Z0-9_]+)"', path.read_text()))
    return names


def test_the_configmap_holds_only_real_settings():
    [config] = [
        d
        for d in built("overlays/production")
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "gatewayz-config"
    ]
    unknown = set(config["data"]) - _settings_read()
    assert not unknown, f"not read by any code: {unknown}"
    assert config["data"]["ALLOWED_HOSTS"] == "api.example.com"  # the overlay's patch


def test_the_ingress_routes_as_the_proxy_does():
    [ingress] = [d for d in built("overlays/production") if d["kind"] == "Ingress"]
    paths = {
        p["path"]: p["backend"]["service"]["name"]
        for p in ingress["spec"]["rules"][0]["http"]["paths"]
    }
    assert paths["/v1"] == paths["/health"] == "gatewayz-inference"
    assert paths["/"] == paths["/v1/chat/sessions"] == "gatewayz-web"
    caddyfile = (ROOT / "docs" / "Caddyfile").read_text()
    for chats_path in ("/v1/chat/sessions", "/v1/chat/messages", "/v1/chat/search"):
        assert chats_path in caddyfile and paths[chats_path] == "gatewayz-web"


def test_the_images_user_is_the_pods():
    dockerfile = (ROOT / "Dockerfile").read_text()
    uid = re.search(r"^USER (\d+)$", dockerfile, re.M)
    assert uid is not None
    for pod in workloads(built("base")).values():
        assert pod["securityContext"]["runAsUser"] == int(uid.group(1))
