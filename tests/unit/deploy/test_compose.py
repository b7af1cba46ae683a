"""deploy/compose/docker-compose.yml would start: valid against the Compose Specification's
JSON schema (the copy check-jsonschema vendors from compose-spec/compose-spec, Apache-2.0;
no docker needed), and joinedup's own rules: every setting exists and validates, images
pinned, health checks, volumes, a valid KRaft cluster id, the mounted files present.

Interpolation as Compose does it, with the values of .env.example (secrets filled in)."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
from functools import cache
from importlib.metadata import distribution
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from services.common.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "deploy" / "compose"
FILE = COMPOSE / "docker-compose.yml"
VARIABLE = re.compile(
    r"(?P<escaped>\$\$)|\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
BROKERS = ("kafka-1", "kafka-2", "kafka-3")
APPS = ("processor", "gateway", "read-api", "duty-board")


def example_env() -> dict[str, str]:
    """.env.example, every empty value (a secret to fill in) given a valid one."""
    values = {}
    for line in (COMPOSE / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    for name, value in values.items():
        if not value:
            values[name] = (base64.b64encode(secrets.token_bytes(32)).decode()
                            if name == "JOINEDUP_SEALING_KEY" else secrets.token_urlsafe(24))
    values["KAFKA_AGENCY_PRINCIPALS"] = "county-council=pw1 nhs-trust-7=pw2"
    return values


def interpolate(text: str, env: dict[str, str]) -> str:
    """${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}; $$ is a $."""
    def value(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name, op, arg = match["name"], match["op"], match["arg"]
        present = name in env and (env[name] != "" or not (op or "").startswith(":"))
        if present:
            return env[name]
        if op in (":?", "?"):
            raise AssertionError(f"{name} is required: {arg}")
        return arg or ""
    return VARIABLE.sub(value, text)


@cache
def compose_schema() -> dict[str, Any]:
    """Read from the installed package without importing it (its command line is not
    needed, and its import depends on the click release)."""
    vendored = distribution("check-jsonschema").locate_file(
        "check_jsonschema/builtin_schemas/vendor/compose-spec.json")
    schema: dict[str, Any] = json.loads(Path(str(vendored)).read_text())
    assert schema["title"] == "Compose Specification"
    return schema


@cache
def raw() -> str:
    return FILE.read_text()


@cache
def compose() -> dict[str, Any]:
    document = yaml.safe_load(interpolate(raw(), example_env()))
    assert isinstance(document, dict)
    return document


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def test_the_file_is_valid_against_the_compose_specification() -> None:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(compose()), key=lambda e: list(e.absolute_path))
    assert [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors] == []


def test_the_schema_catches_a_broken_file() -> None:
    """The check is not vacuous: a misspelt key and a wrong type are refused."""
    schema = compose_schema()
    broken = yaml.safe_load(interpolate(raw(), example_env()))
    broken["services"]["postgres"]["helthcheck"] = broken["services"]["postgres"].pop(
        "healthcheck")
    broken["services"]["gateway"]["ports"] = 8080
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert len(list(validator.iter_errors(broken))) >= 2


def test_every_variable_is_in_env_example_and_every_example_is_used() -> None:
    used = {m["name"] for m in VARIABLE.finditer(raw()) if m["name"]}
    assert used == set(example_env())


def test_a_missing_secret_stops_compose() -> None:
    env = example_env()
    del env["JOINEDUP_SEALING_KEY"]
    with pytest.raises(AssertionError, match="JOINEDUP_SEALING_KEY is required"):
        interpolate(raw(), env)


def settings_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        names.add(f"JOINEDUP_{name.upper()}")
        alias = field.validation_alias
        names.update(getattr(alias, "choices", []))
    return names


@pytest.mark.parametrize("service", APPS)
def test_every_app_setting_exists_and_the_whole_set_validates(
        service: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    environment = {k: str(v) for k, v in services()[service]["environment"].items()}
    assert set(environment) - settings_names() == set()
    for name in [n for n in os.environ if n.startswith("JOINEDUP_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    settings = Settings()  # as the container would: production, SASL with credentials
    assert settings.environment == "production"
    assert settings.kafka_security_protocol == "SASL_PLAINTEXT"
    assert settings.kafka_sasl_username.startswith("joinedup-")


def test_each_app_authenticates_as_a_principal_the_acls_know() -> None:
    acls = (ROOT / "deploy" / "kafka" / "kafka-acls.sh").read_text()
    for service in APPS:
        principal = services()[service]["environment"]["JOINEDUP_KAFKA_SASL_USERNAME"]
        assert f"User:{principal}" in acls, service
        assert principal in (COMPOSE / "kafka-init.sh").read_text(), service


def test_images_are_pinned() -> None:
    for name, service in services().items():
        if "build" in service:
            assert service["build"]["dockerfile"] == "Dockerfile", name
            continue
        image = service["image"]
        _, _, tag = image.rpartition(":")
        assert tag and tag != "latest" and re.search(r"\d", tag), f"{name}: {image}"
    base = re.search(r"^FROM (\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert base is not None and re.search(r":\d+\.\d+\.\d+", base[1]), base


def test_every_long_running_service_has_a_health_check() -> None:
    for name, service in services().items():
        if service.get("restart") == "no":  # a one-off job (kafka-init)
            continue
        check = service.get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), name


def test_startup_order_waits_on_health() -> None:
    for name in APPS:
        needs = services()[name]["depends_on"]
        assert needs["postgres"]["condition"] == "service_healthy", name
        assert needs["kafka-init"]["condition"] == "service_completed_successfully", name
    assert {b: {"condition": "service_healthy"} for b in BROKERS} == (
        services()["kafka-init"]["depends_on"])


def test_volumes_are_declared_and_hold_the_servers_data() -> None:
    declared = set(compose()["volumes"])
    used = set()
    for name, service in services().items():
        for mount in service.get("volumes", []):
            source, _, target = mount.partition(":")
            if source.startswith((".", "/")):
                assert (COMPOSE / source).resolve().exists(), f"{name}: {source}"
            else:
                used.add(source)
                assert source in declared, f"{name}: {source}"
    assert used == declared
    data = {name: [m.split(":")[1] for m in services()[name]["volumes"]]
            for name in (*BROKERS, "postgres")}
    assert data == {**{b: ["/var/lib/kafka/data"] for b in BROKERS},
                    "postgres": ["/var/lib/postgresql/data"]}
    for broker in BROKERS:
        assert services()[broker]["environment"]["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"


def test_prometheus_and_grafana_mount_the_project_config() -> None:
    assert "../prometheus:/etc/prometheus:ro" in services()["prometheus"]["volumes"]
    grafana = services()["grafana"]["volumes"]
    assert "../grafana/provisioning:/etc/grafana/provisioning:ro" in grafana
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/joinedup.yml")
                              .read_text())
    path = provider["providers"][0]["options"]["path"]
    assert f"../grafana:{path}:ro" in grafana
    jobs = [job for job in yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml")
                                          .read_text())["scrape_configs"]
            if job["job_name"] != "joinedup-rebuild"]  # a one-off `joinedup rebuild` run
    scraped = {target.split(":")[0] for job in jobs
               for config in job.get("static_configs", []) for target in config["targets"]}
    scraped |= {name for job in jobs for config in job.get("dns_sd_configs", [])
                for name in config["names"]}
    assert "processor" in scraped
    assert scraped <= set(services())


def cluster_id_is_valid(text: str) -> bool:
    """Kafka's Uuid.fromString: url-safe base64 (no padding) of 16 bytes."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{22}", text):
        return False
    try:
        return len(base64.urlsafe_b64decode(text + "==")) == 16
    except binascii.Error:
        return False


def test_kraft_cluster_of_three_with_a_valid_cluster_id() -> None:
    ids = {services()[b]["environment"]["CLUSTER_ID"] for b in BROKERS}
    assert len(ids) == 1 and cluster_id_is_valid(ids.pop())
    assert cluster_id_is_valid(example_env()["KAFKA_CLUSTER_ID"])
    assert not cluster_id_is_valid("joinedup-cluster-0001")  # the kind of id Kafka refuses
    nodes = {services()[b]["environment"]["KAFKA_NODE_ID"] for b in BROKERS}
    assert nodes == {1, 2, 3}
    voters = services()["kafka-1"]["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    assert voters == ",".join(f"{n}@kafka-{n}.replication:9093" for n in (1, 2, 3))
    for broker in BROKERS:
        env = services()[broker]["environment"]
        assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
        # the PLAINTEXT listeners (ANONYMOUS is a super user there) bind to the brokers'
        # internal network only
        alias = f"{broker}.replication"
        assert f"REPLICATION://{alias}:9091" in env["KAFKA_LISTENERS"]
        assert f"CONTROLLER://{alias}:9093" in env["KAFKA_LISTENERS"]
        assert services()[broker]["networks"]["kafka"]["aliases"] == [alias]
    assert compose()["networks"]["kafka"]["internal"] is True
    on_kafka = {n for n, s in services().items() if "kafka" in (s.get("networks") or [])}
    assert on_kafka == {*BROKERS, "kafka-init"}


def test_the_processor_runs_two_workers() -> None:
    assert services()["processor"]["deploy"]["replicas"] == 2
    assert services()["processor"]["command"] == ["joinedup", "worker"]


def test_the_image_runs_as_a_numeric_user_through_the_entrypoint() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert user and re.fullmatch(r"[1-9]\d*:[1-9]\d*", user[-1])
    assert 'ENTRYPOINT ["docker-entrypoint.sh"]' in dockerfile
    assert "deploy/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh" in dockerfile
    assert "JOINEDUP_DATA_DIR=/var/lib/joinedup" in dockerfile
