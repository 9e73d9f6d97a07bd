"""deploy/kubernetes/ runs the platform on a cluster.

Every manifest validates offline, every service is probed, limited and reads its secrets from Secrets, and
the runners scale on the JetStream consumer named in contracts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from backtest_core.contracts import RUNNER_JOBS_CONSUMER, Stream
from backtest_gateway.settings import GatewaySettings
from backtest_results.settings import Settings as ResultsSettings
from backtest_runner.settings import RunnerSettings
from backtest_scheduler.settings import Settings as SchedulerSettings
from backtest_sweeper.settings import Settings as SweeperSettings
from pydantic_settings import BaseSettings

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "deploy" / "kubernetes"
SCALEDOBJECT_SCHEMA = REPO / "deploy" / "keda" / "scaledobject-v1alpha1.schema.json"
KUBERNETES_VERSION = "1.31.0"  # the version the manifests are validated against (README, deploy/kubernetes)
SETTINGS: dict[str, type[BaseSettings]] = {
    "gateway": GatewaySettings,
    "scheduler": SchedulerSettings,
    "runner": RunnerSettings,
    "results": ResultsSettings,
    "sweeper": SweeperSettings,
}
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "KEYFILE")


def documents() -> list[dict[str, Any]]:
    """Return every object of every manifest file, in file order."""
    found: list[dict[str, Any]] = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        found += [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    return found


def one(kind: str, name: str) -> dict[str, Any]:
    """Return the single object of this kind and name."""
    hits = [doc for doc in documents() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(hits) == 1, f"expected one {kind} {name!r}, found {len(hits)}"
    return hits[0]


def workloads() -> list[dict[str, Any]]:
    """Return the Deployments and StatefulSets."""
    return [doc for doc in documents() if doc["kind"] in ("Deployment", "StatefulSet")]


def container(workload: dict[str, Any], name: str) -> dict[str, Any]:
    """Return the named container of a workload's pod template."""
    return next(c for c in workload["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def env_of(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return a container's env entries by name."""
    return {entry["name"]: entry for entry in c.get("env", [])}


def config_map_file(name: str, key: str) -> str:
    """Return one file of a ConfigMap."""
    data: str = one("ConfigMap", name)["data"][key]
    return data


def test_every_manifest_validates_offline_against_the_stated_kubernetes_schema() -> None:
    docs = documents()
    core = [doc for doc in docs if doc["kind"] != "ScaledObject"]
    for doc in core:
        version = kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)

        assert version == "1.31", f"{doc['kind']}/{doc['metadata']['name']} validated against {version}"
    assert {doc["kind"] for doc in core} >= {
        "Namespace",
        "ConfigMap",
        "Service",
        "StatefulSet",
        "Deployment",
        "Job",
        "PodDisruptionBudget",
    }
    assert all(doc["metadata"].get("namespace") == "backtest" for doc in docs if doc["kind"] != "Namespace")


def test_the_runners_scaledobject_validates_against_the_shipped_keda_schema() -> None:
    schema = json.loads(SCALEDOBJECT_SCHEMA.read_text())
    scaled = [doc for doc in documents() if doc["kind"] == "ScaledObject"]

    assert len(scaled) == 1
    jsonschema.validate(scaled[0], schema)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "maxReplicas"), 10),  # KEDA's field is maxReplicaCount
        (("spec", "triggers", 0, "metadata", "lagThreshold"), 2),  # metadata values are strings
        (("spec", "triggers", 0, "type"), "nats-streaming"),
    ],
)
def test_the_keda_schema_rejects_a_scaledobject_keda_would_refuse(path: tuple[Any, ...], value: Any) -> None:
    schema = json.loads(SCALEDOBJECT_SCHEMA.read_text())
    scaled = next(doc for doc in documents() if doc["kind"] == "ScaledObject")
    target: Any = scaled
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value

    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(scaled, schema)


def test_the_runner_scales_on_the_pending_jobs_of_the_consumer_named_in_contracts() -> None:
    scaled = next(doc for doc in documents() if doc["kind"] == "ScaledObject")
    trigger = scaled["spec"]["triggers"][0]
    nats = one("StatefulSet", "nats")
    headless = one("Service", nats["spec"]["serviceName"])
    monitor_port = next(p["port"] for p in headless["spec"]["ports"] if p["name"] == "monitor")

    target = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": one("Deployment", "runner")["metadata"]["name"],
    }
    assert scaled["spec"]["scaleTargetRef"] == target
    assert trigger["type"] == "nats-jetstream"
    assert trigger["metadata"]["stream"] == Stream.JOBS.value == "BACKTEST_JOBS"
    assert trigger["metadata"]["consumer"] == RUNNER_JOBS_CONSUMER == "runner"
    assert trigger["metadata"]["account"] == "$G"
    assert trigger["metadata"]["natsServerMonitoringEndpoint"] == (
        f"{headless['metadata']['name']}.backtest.svc.cluster.local:{monitor_port}"
    )


def test_the_scheduler_admits_as_many_jobs_as_the_largest_runner_fleet_has_slots() -> None:
    scaled = next(doc for doc in documents() if doc["kind"] == "ScaledObject")
    runner_env = env_of(container(one("Deployment", "runner"), "runner"))
    scheduler_env = env_of(container(one("Deployment", "scheduler"), "scheduler"))
    slots = int(runner_env["RUNNER_SLOTS"]["value"])
    batch = int(runner_env["RUNNER_BATCH_MAX"]["value"])

    # 10 runners x 2 slots x 64 jobs a batch = 1280: beyond what the running runners hold, admitted jobs
    # wait in BACKTEST_JOBS, which is the pending count KEDA scales on.
    max_in_flight = int(scheduler_env["SCHEDULER_MAX_IN_FLIGHT"]["value"])
    assert max_in_flight == scaled["spec"]["maxReplicaCount"] * slots * batch == 1280
    assert scaled["spec"]["minReplicaCount"] >= 1


def test_every_container_has_probes_requests_and_limits() -> None:
    names = {w["metadata"]["name"] for w in workloads()}

    assert names == {"gateway", "scheduler", "runner", "results", "sweeper", "nats", "mongo"}
    for workload in workloads():
        for c in workload["spec"]["template"]["spec"]["containers"]:
            where = f"{workload['metadata']['name']}/{c['name']}"
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert probe in c, f"{where} has no {probe}"
            assert set(c["resources"]["limits"]) >= {"cpu", "memory"}, where
            assert set(c["resources"]["requests"]) >= {"cpu", "memory"}, where
    for job in (doc for doc in documents() if doc["kind"] == "Job"):
        for c in job["spec"]["template"]["spec"]["containers"]:
            assert set(c["resources"]["limits"]) >= {"cpu", "memory"}, job["metadata"]["name"]


def test_the_gateway_is_probed_on_its_health_endpoint() -> None:
    gateway = container(one("Deployment", "gateway"), "gateway")
    env = env_of(gateway)

    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert gateway[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert gateway["ports"] == [{"name": "http", "containerPort": int(env["GATEWAY_PORT"]["value"])}]
    assert env["GATEWAY_HOST"]["value"] == "0.0.0.0"


@pytest.mark.parametrize("service", ["scheduler", "runner", "results", "sweeper"])
def test_services_without_http_are_probed_on_their_process_and_nats_connection(service: str) -> None:
    c = container(one("Deployment", service), service)
    script = config_map_file("backtest-probes", "nats_connected.py")
    mount = next(m for m in c["volumeMounts"] if m["name"] == "probes")
    env = env_of(c)

    assert script == (MANIFESTS / "probes" / "nats_connected.py").read_text()
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        command = c[probe]["exec"]["command"]
        assert command == [
            "python",
            f"{mount['mountPath']}/nats_connected.py",
            f"backtest_{service}",
            f"{service.upper()}_NATS_URL",
        ]
    assert env[f"{service.upper()}_NATS_URL"]["value"] == "nats://nats:4222"


def test_every_service_env_variable_is_a_setting_the_service_reads() -> None:
    for service, settings in SETTINGS.items():
        prefix = f"{service.upper()}_"
        env = env_of(container(one("Deployment", service), service))
        ours = {name for name in env if name.startswith(prefix)}

        assert ours, service
        assert {name.removeprefix(prefix).lower() for name in ours} <= set(settings.model_fields), service


def test_no_manifest_holds_a_secret_and_every_credential_comes_from_a_secret_key() -> None:
    docs = documents()
    pods = [w["spec"]["template"]["spec"] for w in workloads()]
    pods += [doc["spec"]["template"]["spec"] for doc in docs if doc["kind"] == "Job"]
    checked = 0

    assert not [doc for doc in docs if doc["kind"] == "Secret"]
    for pod in pods:
        for c in pod["containers"] + pod.get("initContainers", []):
            from_secrets = {e["name"] for e in c.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}
            for entry in c.get("env", []):
                if any(word in entry["name"] for word in SECRET_WORDS):
                    assert entry["name"] in from_secrets, f"{c['name']}: {entry['name']} is not from a Secret"
                credentials = re.search(r"://([^:@/]+):([^@]*)@", entry.get("value", ""))
                if credentials:
                    password = re.fullmatch(r"\$\((\w+)\)", credentials.group(2))
                    assert password and password.group(1) in from_secrets, f"{c['name']}: {entry['name']}"
                    checked += 1
    # MongoDB URIs: gateway 2, scheduler 2 (root, reader), results 1, sweeper 1, runner 1 (reader)
    assert checked == 7


def test_secrets_the_manifests_read_are_the_ones_the_deploy_readme_creates() -> None:
    readme = (MANIFESTS / "README.md").read_text()
    used: set[tuple[str, str]] = set()
    for workload in [*workloads(), *(doc for doc in documents() if doc["kind"] == "Job")]:
        pod = workload["spec"]["template"]["spec"]
        for c in pod["containers"] + pod.get("initContainers", []):
            for entry in c.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    used.add((ref["name"], ref["key"]))
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                used |= {(volume["secret"]["secretName"], item["key"]) for item in volume["secret"]["items"]}

    assert used == {
        ("backtest-gateway", "jwt-secret"),
        ("backtest-mongo", "root-password"),
        ("backtest-mongo", "reader-password"),
        ("backtest-mongo", "keyfile"),
    }
    for name, key in used:
        assert f"kubectl -n backtest create secret generic {name}" in readme
        assert f"--from-literal={key}=" in readme


def test_nats_is_a_three_node_jetstream_cluster_with_the_platform_payload_limit() -> None:
    nats = one("StatefulSet", "nats")
    config = config_map_file("nats-config", "nats.conf")
    headless = nats["spec"]["serviceName"]
    platform_limit = re.search(r"^max_payload: (\S+)$", (REPO / "deploy/nats/nats.conf").read_text(), re.M)
    routes = re.findall(r"nats://([\w.-]+):6222", config)

    assert nats["spec"]["replicas"] == 3
    assert one("Service", headless)["spec"]["clusterIP"] == "None"
    assert platform_limit and f"max_payload: {platform_limit.group(1)}" in config
    assert re.search(r"^jetstream \{", config, re.M) and "store_dir: /data" in config
    assert routes == [f"nats-{i}.{headless}" for i in range(3)]
    assert "server_name: $POD_NAME" in config
    assert nats["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert one("PodDisruptionBudget", "nats")["spec"]["maxUnavailable"] == 1


def test_mongodb_is_a_three_member_replica_set_with_a_keyfile_and_users() -> None:
    mongo = one("StatefulSet", "mongo")
    mongod = container(mongo, "mongod")
    keyfile_copy = mongo["spec"]["template"]["spec"]["initContainers"][0]
    job = one("Job", "mongo-init")
    init = job["spec"]["template"]["spec"]["containers"][0]
    members = env_of(init)["MONGO_MEMBERS"]["value"].split(",")

    assert mongo["spec"]["replicas"] == 3 and mongo["spec"]["serviceName"] == "mongo"
    assert mongod["args"][:4] == ["--replSet", "rs0", "--bind_ip_all", "--keyFile"]
    keyfile = mongod["args"][4]
    assert any(keyfile.startswith(m["mountPath"] + "/") for m in mongod["volumeMounts"])
    assert "chmod 0400" in keyfile_copy["command"][-1] and keyfile in keyfile_copy["command"][-1]
    assert members == [f"mongo-{i}.mongo:27017" for i in range(3)]
    assert (
        config_map_file("mongo-init-script", "init-replica-set.js")
        == (REPO / "deploy/mongo/init-replica-set.js").read_text()
    )
    assert env_of(mongod)["MONGO_INITDB_ROOT_USERNAME"]["value"] == "admin"


def test_the_runner_reaches_the_nodes_docker_engine_with_the_same_job_directory_path() -> None:
    runner = one("Deployment", "runner")
    pod = runner["spec"]["template"]["spec"]
    c = container(runner, "runner")
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    work_dir = env_of(c)["RUNNER_WORK_DIR"]["value"]

    assert volumes["docker-sock"]["hostPath"] == {"path": "/var/run/docker.sock", "type": "Socket"}
    assert mounts["docker-sock"]["mountPath"] == "/var/run/docker.sock"
    assert volumes["jobs"]["hostPath"]["path"] == mounts["jobs"]["mountPath"] == work_dir
    assert pod["nodeSelector"] == {"backtest.io/docker-engine": "true"}
    assert "readPreference=secondaryPreferred" in env_of(c)["RUNNER_MONGODB_URI"]["value"]
    assert "reader:$(" in env_of(c)["RUNNER_MONGODB_URI"]["value"]
    assert pod["terminationGracePeriodSeconds"] > RunnerSettings.model_fields["shutdown_grace_s"].default
