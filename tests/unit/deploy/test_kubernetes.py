"""deploy/kubernetes: every Kustomize tree renders, every resource is valid against the
Kubernetes and CRD schemas, and joinedup's own rules hold (probes, resources, a restricted
securityContext, a PodDisruptionBudget, only settings that exist, the topics and Kafka
principals joinedup uses). Offline: kubectl's kustomize and the schemas come with
`make install`; deploy/kubernetes/validate.py does the work, as `make validate-kubernetes`."""

from __future__ import annotations

import copy
import importlib.util
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from services.common.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
KUBERNETES = ROOT / "deploy" / "kubernetes"
ACL_SCRIPT = ROOT / "deploy" / "kafka" / "kafka-acls.sh"


def _load_validator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("k8s_validate", KUBERNETES / "validate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


validate = _load_validator()
TREES = validate.kustomizations()


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {str(tree.relative_to(KUBERNETES)): validate.render(tree) for tree in TREES}


def by_name(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {validate.name_of(r): r for r in resources}


def test_there_is_a_base_and_a_local_overlay() -> None:
    assert {str(t.relative_to(KUBERNETES)) for t in TREES} >= {"base", "overlays/local"}


@pytest.mark.parametrize("tree", TREES, ids=lambda t: str(t.relative_to(KUBERNETES)))
def test_every_resource_is_valid_and_follows_the_rules(tree: Path) -> None:
    assert validate.problems(tree, validate.settings_env_names()) == []


@pytest.mark.parametrize("tree", TREES, ids=lambda t: str(t.relative_to(KUBERNETES)))
def test_every_manifest_file_is_rendered(tree: Path) -> None:
    """A YAML file no kustomization names would escape validation (and deployment)."""
    kustomization = (tree / "kustomization.yaml").read_text()
    for manifest in tree.glob("*.yaml"):
        if manifest.name != "kustomization.yaml":
            assert re.search(rf"^\s*- (path: )?{re.escape(manifest.name)}$", kustomization,
                             re.M), manifest


# --- the checks find what they are for (each mutation of a valid resource is caught)

def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(resource: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = resource
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value
    return change


SCHEMA_BREAKS = [
    ("Kafka/joinedup", _set("spec.kafka.listners", [])),
    ("KafkaNodePool/controllers", _set("spec.roles", ["leader"])),
    ("KafkaTopic/joinedup.alerts", _set("spec.partitions", "many")),
    ("KafkaUser/joinedup-duty", _set("spec.authorization.acls.0.operations", ["Wrtie"])),
    ("Cluster/joinedup-db", _set("spec.instance", 3)),
    ("Deployment/joinedup-gateway", _set("spec.template.spec.containers.0.livenesProbe", {})),
    ("PodDisruptionBudget/joinedup-processor", _set("spec.maxUnavailable", [1])),
    ("Service/joinedup-gateway", _set("spec.ports.0.port", "http")),
]


@pytest.mark.parametrize(("name", "change"), SCHEMA_BREAKS, ids=[n for n, _ in SCHEMA_BREAKS])
def test_a_schema_violation_is_reported(rendered: dict[str, list[dict[str, Any]]], name: str,
                                        change: Callable[[dict[str, Any]], None]) -> None:
    resource = copy.deepcopy(by_name(rendered["overlays/local"])[name])
    assert validate.schema_errors(resource) == []
    change(resource)
    assert validate.schema_errors(resource)


CONTAINER = "spec.template.spec.containers.0"
RULE_BREAKS = [
    ("no liveness probe on /healthz", _set(f"{CONTAINER}.livenessProbe", None)),
    ("no readiness probe on /readyz", _set(f"{CONTAINER}.readinessProbe.httpGet.path", "/")),
    ("no memory limits", _set(f"{CONTAINER}.resources.limits", {"cpu": "1"})),
    ("no cpu requests", _set(f"{CONTAINER}.resources.requests", {"memory": "1Gi"})),
    ("runAsNonRoot is not true", _set(f"{CONTAINER}.securityContext.runAsNonRoot", False)),
    ("allowPrivilegeEscalation is not false",
     _set(f"{CONTAINER}.securityContext.allowPrivilegeEscalation", True)),
    ("readOnlyRootFilesystem is not true",
     _set(f"{CONTAINER}.securityContext.readOnlyRootFilesystem", False)),
    ("capabilities do not drop ALL", _set(f"{CONTAINER}.securityContext.capabilities", {})),
    ("seccompProfile is not RuntimeDefault",
     _set(f"{CONTAINER}.securityContext.seccompProfile", {"type": "Unconfined"})),
    ("the data dir is not an emptyDir", _set(f"{CONTAINER}.volumeMounts", [])),
    ("no PodDisruptionBudget selects its pods",
     _set("spec.template.metadata.labels", {"app.kubernetes.io/name": "elsewhere"})),
    ("JOINEDUP_WORKER_THREADS is not a JOINEDUP_ setting",
     _set(f"{CONTAINER}.env.0", {"name": "JOINEDUP_WORKER_THREADS", "value": "4"})),
    ("KAFKA_BOOTSTRAP_SERVERS is not a JOINEDUP_ setting",
     _set(f"{CONTAINER}.env.0", {"name": "KAFKA_BOOTSTRAP_SERVERS", "value": "kafka:9092"})),
]


@pytest.mark.parametrize(("problem", "change"), RULE_BREAKS, ids=[p for p, _ in RULE_BREAKS])
@pytest.mark.parametrize("deployment", ["joinedup-processor", "joinedup-gateway",
                                        "joinedup-read-api", "joinedup-duty"])
def test_a_broken_rule_is_reported(rendered: dict[str, list[dict[str, Any]]], deployment: str,
                                   problem: str, change: Callable[[dict[str, Any]], None]
                                   ) -> None:
    resources = copy.deepcopy(rendered["overlays/local"])
    change(by_name(resources)[f"Deployment/{deployment}"])
    found = [e for _, e in validate.deployment_errors(resources)]
    found += [e for _, e in validate.unknown_settings(resources, validate.settings_env_names())]
    assert any(problem in e for e in found), found


# --- what joinedup needs from the cluster

def test_the_kafka_client_security_settings_exist() -> None:
    """The names the manifests use for Kafka TLS and SASL are Settings' own."""
    assert validate.settings_env_names() >= {
        "JOINEDUP_KAFKA_SECURITY_PROTOCOL", "JOINEDUP_KAFKA_SASL_MECHANISM",
        "JOINEDUP_KAFKA_SASL_USERNAME", "JOINEDUP_KAFKA_SASL_PASSWORD",
        "JOINEDUP_KAFKA_SSL_CAFILE", "JOINEDUP_DATABASE_URL", "JOINEDUP_KAFKA_BOOTSTRAP"}


def test_every_topic_joinedup_uses_is_declared(rendered: dict[str, list[dict[str, Any]]]
                                               ) -> None:
    topics = {r["metadata"]["name"]: r["spec"] for r in rendered["base"]
              if r["kind"] == "KafkaTopic"}
    fixed = Settings.model_construct(topic_prefix="joinedup").topics
    assert set(fixed.all()) <= set(topics)
    agencies = [name for name in topics if fixed.agency_of(name)]
    assert agencies, "no agency topic"
    for name in (fixed.person_events, fixed.alerts, fixed.governance):
        assert topics[name]["config"]["retention.ms"] == -1, name  # the log of record
    for name in agencies:  # an agency's events are partitioned as person-events are
        assert topics[name]["partitions"] == topics[fixed.person_events]["partitions"]
    for spec in topics.values():
        assert spec["replicas"] > spec["config"]["min.insync.replicas"] >= 2


def _script_grants() -> set[tuple[str, str, str, str]]:
    """(principal, operation, resource, name) granted by deploy/kafka/kafka-acls.sh, with
    its `for topic in ...` loops unrolled and ${prefix} as `joinedup`."""
    text = ACL_SCRIPT.read_text().replace("\\\n", " ")
    grants = set()
    loop: list[str] = []
    for line in text.splitlines():
        line = line.split("  #")[0].strip()
        if match := re.match(r"for topic in (.+?); do$", line):
            loop = match.group(1).split()
            continue
        if line == "done":
            loop = []
            continue
        if not line.startswith("acl "):
            continue
        for topic in loop or [""]:
            words = shlex.split(line.replace("${prefix}", "joinedup").replace("${topic}", topic))
            options = list(zip(words[1::2], words[2::2], strict=False))
            principal = next(v for k, v in options if k == "--allow-principal")
            prefixed = ("--resource-pattern-type", "prefixed") in options
            resource = next(((k[2:], v) for k, v in options if k in ("--topic", "--group")),
                            ("cluster", "kafka-cluster"))
            for key, operation in options:
                if key == "--operation":
                    kind = f"{resource[0]}{'*' if prefixed else ''}"
                    grants.add((principal.removeprefix("User:"), operation, kind, resource[1]))
    return grants


def _user_grants(users: list[dict[str, Any]]) -> set[tuple[str, str, str, str]]:
    grants = set()
    for user in users:
        for acl in user["spec"]["authorization"]["acls"]:
            resource = acl["resource"]
            kind = resource["type"] + ("*" if resource.get("patternType") == "prefix" else "")
            for operation in acl["operations"]:
                grants.add((user["metadata"]["name"], operation, kind,
                            resource.get("name", "kafka-cluster")))
    return grants


def test_kafka_users_grant_what_the_acl_script_grants(
        rendered: dict[str, list[dict[str, Any]]]) -> None:
    users = [r for r in rendered["base"] if r["kind"] == "KafkaUser"]
    script = _script_grants()
    assert {p for p, *_ in script} >= {"joinedup-gateway", "joinedup-processor",
                                       "joinedup-operations"}
    assert script <= _user_grants(users)
    for user in users:
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"


def test_each_service_connects_as_its_own_kafka_user(
        rendered: dict[str, list[dict[str, Any]]]) -> None:
    resources = rendered["base"]
    users = {r["metadata"]["name"] for r in resources if r["kind"] == "KafkaUser"}
    seen = set()
    for deployment in (r for r in resources if r["kind"] == "Deployment"):
        env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        username = env["JOINEDUP_KAFKA_SASL_USERNAME"]["value"]
        password = env["JOINEDUP_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
        database = env["JOINEDUP_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert username in users and password == {"name": username, "key": "password"}
        assert database == {"name": "joinedup-db-app", "key": "uri"}  # CloudNativePG's
        cafile = validate._env_value(deployment["spec"]["template"]["spec"]["containers"][0],
                                     resources, "JOINEDUP_KAFKA_SSL_CAFILE")
        assert cafile is not None and _mounted_secret(deployment, cafile) == (
            "joinedup-cluster-ca-cert")  # Strimzi's cluster CA
        seen.add(username)
    assert len(seen) == 4


def _mounted_secret(deployment: dict[str, Any], path: str) -> str | None:
    """The Secret whose volume holds `path` in the first container."""
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for mount in pod["containers"][0].get("volumeMounts", []):
        if path.startswith(mount["mountPath"].rstrip("/") + "/"):
            return volumes[mount["name"]].get("secret", {}).get("secretName")
    return None


def test_secrets_are_templates(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """Placeholders only: a real secret never lives in the repository."""
    for secret in (r for r in rendered["base"] if r["kind"] == "Secret"):
        assert "data" not in secret
        assert all(value.startswith("REPLACE") for value in secret["stringData"].values())
