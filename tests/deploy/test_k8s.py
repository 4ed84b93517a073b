"""deploy/k8s agrees with Kubernetes' API schemas and with the code it runs.

Each manifest is validated, strictly (no field the API does not know), against the
Kubernetes JSON schemas that the kubernetes-validate package ships, for the oldest and the
newest Kubernetes version named below; nothing is downloaded. The cross-file facts are checked
against the real ``regsweep`` command, settings class, app and Dockerfile (the helpers of
tests/test_containers.py, which does the same for the compose file).
"""

from __future__ import annotations

import http.client
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from regcore.settings import Settings
from tests.containers import (
    ENV_PREFIX,
    _exec_form,
    _image_env,
    _only,
    _parse,
    _runtime_stage,
    _serving_api,
)

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUSTOMIZATION = K8S / "kustomization.yaml"
SECRET_EXAMPLE = K8S / "secret.example.yaml"
# The oldest Kubernetes the manifests are for, and the newest the schemas know.
VERSIONS = ("1.29", kubernetes_validate.latest_version())


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _manifests() -> dict[str, dict[str, Any]]:
    """``file:Kind/name`` → resource, for every resource in deploy/k8s (kustomization aside)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path == KUSTOMIZATION:
            continue
        for doc in _documents(path):
            found[f"{path.name}:{doc['kind']}/{doc['metadata']['name']}"] = doc
    return found


MANIFESTS = _manifests()


def _of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {key: doc for key, doc in MANIFESTS.items() if doc["kind"] == kind}


def _pod_templates() -> dict[str, dict[str, Any]]:
    """The pod spec of every workload (Deployments and Jobs), by its resource's key."""
    return {
        key: doc["spec"]["template"]
        for key, doc in MANIFESTS.items()
        if doc["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet")
    }


def _containers() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(where, pod spec, container) for every container of every workload."""
    for key, template in _pod_templates().items():
        spec = template["spec"]
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            yield f"{key} container {container['name']}", spec, container


def _argv(container: dict[str, Any]) -> list[str]:
    """What the container runs after ``regsweep``: the image's ENTRYPOINT and CMD as
    Kubernetes combines them with ``command`` and ``args``."""
    entrypoint = _exec_form(_only(_runtime_stage(), "ENTRYPOINT").args)
    command = container.get("command", entrypoint)
    assert command == ["regsweep"], f"expected the image's regsweep entrypoint, got {command}"
    args = container.get("args")
    if args is None and "command" not in container:
        args = _exec_form(_only(_runtime_stage(), "CMD").args)
    return [str(a) for a in args or []]


def _running(subcommand: str) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    return {
        where: (spec, container)
        for where, spec, container in _containers()
        if _argv(container)[:1] == [subcommand]
    }


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The container's environment: the image's, then its own entries (by name)."""
    env: dict[str, dict[str, Any]] = {k: {"value": v} for k, v in _image_env().items()}
    env.update({entry["name"]: entry for entry in container.get("env", [])})
    return env


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) == {"matchLabels"}, f"only matchLabels is checked here: {selector}"
    return selector["matchLabels"].items() <= labels.items()


def _secret_keys() -> dict[str, set[str]]:
    secrets = [*_of_kind("Secret").values(), *_documents(SECRET_EXAMPLE)]
    return {
        s["metadata"]["name"]: set(s.get("stringData", {})) | set(s.get("data", {}))
        for s in secrets
    }


# --- schemas ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("key", sorted(MANIFESTS))
def test_manifest_is_valid_for_kubernetes(key: str, version: str) -> None:
    try:
        kubernetes_validate.validate(MANIFESTS[key], version, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = ".".join(str(p) for p in error.path)
        pytest.fail(f"{key} (Kubernetes {version}) at {where}: {error.message}", pytrace=False)
    except kubernetes_validate.SchemaNotFoundError as error:
        pytest.fail(f"{key}: {error.message}", pytrace=False)


def test_the_validator_refuses_a_field_kubernetes_does_not_know() -> None:
    """Strict schemas: a misspelt field fails here rather than being dropped by the API."""
    (worker,) = [d for d in _of_kind("Deployment").values() if "worker" in d["metadata"]["name"]]
    broken = yaml.safe_load(yaml.safe_dump(worker))
    broken["spec"]["template"]["spec"]["terminationGracePeriod"] = 120

    with pytest.raises(kubernetes_validate.ValidationError, match="terminationGracePeriod"):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_kustomization_applies_every_manifest_but_the_secret_example() -> None:
    (kustomization,) = _documents(KUSTOMIZATION)
    files = {p.name for p in K8S.glob("*.yaml")} - {KUSTOMIZATION.name, SECRET_EXAMPLE.name}

    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == sorted(files)
    namespaces = {d["metadata"].get("namespace") for d in MANIFESTS.values()} - {None}
    assert namespaces == {kustomization["namespace"]}
    assert [d["metadata"]["name"] for d in _of_kind("Namespace").values()] == [
        kustomization["namespace"]
    ]


def test_kustomize_builds_the_same_resources() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (it builds the kustomization offline)")
    built = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    resources = [doc for doc in yaml.safe_load_all(built) if doc]
    expected = {
        (d["kind"], d["metadata"]["name"])
        for key, d in MANIFESTS.items()
        if not key.startswith(SECRET_EXAMPLE.name)
    }

    assert {(d["kind"], d["metadata"]["name"]) for d in resources} == expected
    for resource in resources:
        kubernetes_validate.validate(resource, VERSIONS[-1], strict=True)


# --- what the containers run -----------------------------------------------------------------


@pytest.mark.parametrize("where", sorted(w for w, _, _ in _containers()))
def test_containers_run_real_regsweep_subcommands(where: str) -> None:
    (container,) = [c for w, _, c in _containers() if w == where]
    path, _ = _parse(_argv(container))
    assert path, f"{where}: `regsweep {' '.join(_argv(container))}` runs no subcommand"


def test_there_is_an_api_a_gpu_worker_and_a_migration_job() -> None:
    assert _running("serve")
    assert _running("worker")
    migrations = {
        key: t
        for key, t in _pod_templates().items()
        for c in t["spec"]["containers"]
        if _parse(_argv(c))[0] == ("db", "upgrade")
    }
    assert migrations, "no workload runs `regsweep db upgrade`"
    for key, template in migrations.items():
        assert key.split(":")[1].startswith("Job/"), f"{key}: a migration runs once, as a Job"
        assert template["spec"]["restartPolicy"] in ("Never", "OnFailure")


@pytest.mark.parametrize("where", sorted(w for w, _, _ in _containers()))
def test_regsweep_variables_are_valid_settings(where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    (container,) = [c for w, _, c in _containers() if w == where]
    env = _env(container)
    names = {name for name in env if name.startswith(ENV_PREFIX)}
    unknown = sorted(
        n for n in names if n.removeprefix(ENV_PREFIX).lower() not in Settings.model_fields
    )

    assert not unknown, f"{where}: not fields of regcore.settings.Settings: {unknown}"
    assert f"{ENV_PREFIX}DATABASE_URL" in names, f"{where}: every regsweep command needs it"
    for name in names:  # a secret's value is a string here; the literal ones are typed
        monkeypatch.setenv(name, str(env[name].get("value", "from-a-secret")))
    Settings()  # raises on a value of the wrong type or out of range


def test_secret_references_name_keys_of_the_secret() -> None:
    keys = _secret_keys()
    for where, _, container in _containers():
        for entry in container.get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref is not None:
                assert ref["key"] in keys.get(ref["name"], set()), (
                    f"{where}: {entry['name']} reads secret {ref['name']} key {ref['key']}, "
                    f"which {SECRET_EXAMPLE.name} does not have"
                )
    for where, _, container in _containers():
        url = _env(container)[f"{ENV_PREFIX}DATABASE_URL"]
        assert "secretKeyRef" in url.get("valueFrom", {}), f"{where}: the URL holds a password"
    (example,) = _documents(SECRET_EXAMPLE)
    assert example["stringData"]["database-url"].startswith("postgresql+psycopg://")


# --- pods, probes, services ------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(_pod_templates()))
def test_pods_run_as_the_images_non_root_user(key: str) -> None:
    user, _, group = _only(_runtime_stage(), "USER").args.partition(":")
    spec = _pod_templates()[key]["spec"]
    pod = spec.get("securityContext", {})

    for container in spec["containers"]:
        context = {**pod, **container.get("securityContext", {})}
        assert context.get("runAsNonRoot") is True, key
        assert str(context.get("runAsUser")) == user, f"{key}: the image's user is {user}"
        assert str(context.get("runAsGroup")) == (group or user), key
        assert context.get("allowPrivilegeEscalation") is False, key
        assert "ALL" in context.get("capabilities", {}).get("drop", []), key
        assert context.get("seccompProfile", {}).get("type") == "RuntimeDefault", key
    assert spec.get("automountServiceAccountToken") is False, f"{key}: it needs no API token"


@pytest.mark.parametrize("key", sorted(_pod_templates()))
def test_read_only_root_filesystems_have_the_writable_paths_regsweep_uses(key: str) -> None:
    spec = _pod_templates()[key]["spec"]
    for container in spec["containers"]:
        if not container.get("securityContext", {}).get("readOnlyRootFilesystem"):
            continue
        mounted = {
            m["mountPath"] for m in container.get("volumeMounts", []) if not m.get("readOnly")
        }
        assert "/tmp" in mounted, f"{key}: Python and PyTorch write temporary files"
        if _argv(container)[:1] == ["worker"]:  # it writes data and artifacts
            env = _env(container)
            for name in (f"{ENV_PREFIX}DATA_DIR", f"{ENV_PREFIX}ARTIFACT_DIR"):
                assert env[name]["value"] in mounted, f"{key}: {name} is not writable"


def test_worker_requests_a_gpu_and_outlasts_its_trials_grace_period() -> None:
    workers = _running("worker")
    for where, (spec, container) in workers.items():
        env = _env(container)
        grace = env.get(f"{ENV_PREFIX}GRACE_S", {}).get("value")
        grace_s = float(grace) if grace is not None else Settings.model_fields["grace_s"].default
        limits = container["resources"]["limits"]
        _, params = _parse(_argv(container))

        assert int(limits.get("nvidia.com/gpu", 0)) >= 1, f"{where}: no GPU"
        assert params.get("gpus") == "all" or str(params.get("device")).startswith("cuda")
        # Kubernetes' default is 30 s: the kill would come before the trial's grace ends.
        # A stop lets the running trial go on for grace_s, then interrupts it; a training
        # function that ignores that is terminated grace_s later; then the worker requeues
        # the trial and deregisters.
        assert spec.get("terminationGracePeriodSeconds", 30) >= 2 * grace_s + 30, (
            f"{where}: the pod is killed before its running trial's {grace_s:g} s grace ends"
        )
        assert "readinessProbe" not in container, f"{where}: a worker serves no HTTP"
        assert "livenessProbe" not in container, f"{where}: a worker serves no HTTP"


def test_every_deployment_has_a_disruption_budget_that_selects_its_pods() -> None:
    budgets = _of_kind("PodDisruptionBudget")
    for key, deployment in _of_kind("Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert _selects(deployment["spec"]["selector"], labels), key
        mine = [b for b in budgets.values() if _selects(b["spec"]["selector"], labels)]
        assert len(mine) == 1, f"{key}: {len(mine)} PodDisruptionBudgets select its pods"
        assert {"minAvailable", "maxUnavailable"} & set(mine[0]["spec"]), key


def _api() -> tuple[str, dict[str, Any], dict[str, Any]]:
    (item,) = _running("serve").items()
    where, (spec, container) = item
    return where, spec, container


def _port_number(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    return int(number)


def test_api_probes_target_the_port_serve_listens_on() -> None:
    where, _, container = _api()
    _, params = _parse(_argv(container))

    assert params["host"] == "0.0.0.0", f"{where}: probes and the Service come from outside"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        if probe in container:
            port = container[probe]["httpGet"]["port"]
            assert _port_number(container, port) == params["port"], f"{where}: {probe}"
    assert f"{ENV_PREFIX}API_TOKENS" in _env(container), f"{where}: it listens beyond loopback"


def test_api_probes_pass_against_the_real_app(tmp_path: Path) -> None:
    _, _, container = _api()
    paths = {
        container[probe]["httpGet"]["path"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
        if probe in container
    }
    with _serving_api(tmp_path) as port:
        for path in sorted(paths):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", path)
            status = connection.getresponse().status
            connection.close()
            assert status == 200, f"GET {path}: {status}"


def test_service_routes_to_the_api_port() -> None:
    where, _, container = _api()
    (deployment,) = [
        d
        for d in _of_kind("Deployment").values()
        if container in d["spec"]["template"]["spec"]["containers"]
    ]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    services = [
        s for s in _of_kind("Service").values() if s["spec"]["selector"].items() <= labels.items()
    ]
    _, params = _parse(_argv(container))

    assert len(services) == 1, f"{where}: {len(services)} Services select the API"
    for port in services[0]["spec"]["ports"]:
        assert _port_number(container, port["targetPort"]) == params["port"]
    annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
    if "prometheus.io/port" in annotations:
        assert int(annotations["prometheus.io/port"]) == params["port"]
