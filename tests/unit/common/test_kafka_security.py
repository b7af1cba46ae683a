"""Every Kafka client the project builds connects as the settings say (TLS, SASL), Faust's
included, and incomplete security settings are refused at start with one line."""

from __future__ import annotations

import ast
import datetime
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiokafka.client import AIOKafkaClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from services.common.kafka import make_admin, make_client, make_consumer, make_producer
from services.common.kafka_security import TokenFile, client_security, faust_credentials
from services.common.settings import Settings
from services.processor.entrypoints.app import create_app

ROOT = Path(__file__).resolve().parents[3]
CLIENT_CLASSES = {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient", "AIOKafkaClient"}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and its key: the CA file and the client certificate."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "joinedup-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "client.pem", folder / "client.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def secured(certificate: tuple[Path, Path], **overrides: Any) -> Settings:
    cert_file, key_file = certificate
    fields: dict[str, Any] = {
        "kafka_bootstrap": "kafka-1:9093", "database_url": "postgresql://db/joinedup",
        "kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": "joinedup-processor", "kafka_sasl_password": "s3cret",
        "kafka_ssl_cafile": cert_file, "kafka_ssl_certfile": cert_file,
        "kafka_ssl_keyfile": key_file}
    return Settings(**{**fields, **overrides})


def connection(client: AIOKafkaClient) -> dict[str, Any]:
    return {"security_protocol": client._security_protocol,
            "sasl_mechanism": client._sasl_mechanism,
            "sasl_plain_username": client._sasl_plain_username,
            "sasl_plain_password": client._sasl_plain_password,
            "ssl_context": client._ssl_context}


async def test_every_factory_builds_clients_with_the_security_settings(
        certificate: tuple[Path, Path]) -> None:
    settings = secured(certificate)
    producer, consumer = make_producer(settings), make_consumer(settings, "t", group_id=None)
    admin, bare = make_admin(settings), make_client(settings)
    clients = {"producer": producer.client, "consumer": consumer._client,
               "admin": admin._client, "client": bare}
    for name, client in clients.items():
        seen = connection(client)
        assert seen["security_protocol"] == "SASL_SSL", name
        assert seen["sasl_mechanism"] == "SCRAM-SHA-512", name
        assert (seen["sasl_plain_username"], seen["sasl_plain_password"]) == (
            "joinedup-processor", "s3cret"), name
        context = seen["ssl_context"]
        assert isinstance(context, ssl.SSLContext) and context.check_hostname, name
        assert context.verify_mode == ssl.CERT_REQUIRED, name
        assert context.get_ca_certs()[0]["subject"] == ((("commonName", "joinedup-test"),),)
    await consumer.stop()
    await producer.stop()
    await admin.close()
    await bare.close()


async def test_a_call_site_cannot_override_the_security(certificate: tuple[Path, Path]) -> None:
    consumer = make_consumer(secured(certificate), security_protocol="PLAINTEXT")
    assert consumer._client._security_protocol == "SASL_SSL"
    await consumer.stop()


async def test_plaintext_is_the_local_default() -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:9092", database_url="postgresql://db/x")
    assert client_security(settings) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(settings) is None
    producer = make_producer(settings)
    assert producer.client._security_protocol == "PLAINTEXT"
    assert producer.client._ssl_context is None
    await producer.stop()


COMBINATIONS = [(protocol, mechanism)
                for protocol in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
                for mechanism in ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN", "OAUTHBEARER")]


@pytest.mark.parametrize(("protocol", "mechanism"), COMBINATIONS)
def test_faust_connects_as_our_own_clients_do(certificate: tuple[Path, Path], tmp_path: Path,
                                              protocol: str, mechanism: str) -> None:
    token = tmp_path / "token"
    token.write_text("a.bearer.token\n")
    settings = secured(certificate, kafka_security_protocol=protocol,
                       kafka_sasl_mechanism=mechanism, kafka_sasl_oauth_token_file=token,
                       data_dir=tmp_path / "data")
    app = create_app(settings)  # the worker's Faust app, as `joinedup worker` builds it
    faust_side = dict(credentials_to_aiokafka_auth(app.conf.broker_credentials))
    ours = client_security(settings)
    assert faust_side.pop("security_protocol") == ours.pop("security_protocol") == protocol
    assert set(faust_side) - {"ssl_context"} == set(ours) - {"ssl_context"}
    assert (faust_side.get("ssl_context") is None) == (ours.get("ssl_context") is None)
    for name in ("sasl_mechanism", "sasl_plain_username", "sasl_plain_password"):
        assert faust_side.get(name) == ours.get(name)
    if mechanism == "OAUTHBEARER" and protocol.startswith("SASL_"):
        assert isinstance(faust_side["sasl_oauth_token_provider"], TokenFile)


async def test_oauthbearer_reads_the_token_file_at_each_login(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    provider = TokenFile(token)
    assert await provider.token() == "first"
    token.write_text("rotated\n")
    assert await provider.token() == "rotated"


@pytest.mark.parametrize(("env", "named"), [
    ({"JOINEDUP_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "JOINEDUP_KAFKA_SASL_PASSWORD"),
    ({"JOINEDUP_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
      "JOINEDUP_KAFKA_SASL_USERNAME": "joinedup-gateway"}, "JOINEDUP_KAFKA_SASL_PASSWORD"),
    ({"JOINEDUP_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
      "JOINEDUP_KAFKA_SASL_MECHANISM": "OAUTHBEARER"}, "JOINEDUP_KAFKA_SASL_OAUTH_TOKEN_FILE"),
    ({"JOINEDUP_KAFKA_SECURITY_PROTOCOL": "SSL", "JOINEDUP_KAFKA_SSL_CERTFILE": "/c.pem"},
     "JOINEDUP_KAFKA_SSL_KEYFILE"),
])
def test_incomplete_security_is_refused_at_start_in_one_line(
        tmp_path: Path, env: dict[str, str], named: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "services.operations.cli", "worker"], cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env},
        capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("joinedup worker: ") and named in lines[0]
    assert not (tmp_path / ".joinedup").exists()  # refused before anything was written


def constructions(tree: ast.AST) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = (node.func.id if isinstance(node.func, ast.Name)
                    else node.func.attr if isinstance(node.func, ast.Attribute) else "")
            if name in CLIENT_CLASSES:
                found.append((name, node.lineno))
    return found


def test_no_client_is_built_outside_the_factory() -> None:
    """A client built anywhere else would connect without the security settings."""
    factory = ROOT / "services" / "common" / "kafka.py"
    elsewhere = {
        f"{path.relative_to(ROOT)}:{line} {name}"
        for path in (ROOT / "services").rglob("*.py") if path != factory
        for name, line in constructions(ast.parse(path.read_text()))}
    assert elsewhere == set()
    assert {name for name, _ in constructions(ast.parse(factory.read_text()))} == CLIENT_CLASSES


def test_every_faust_app_gets_the_credentials() -> None:
    apps = [(path, node) for path in (ROOT / "services").rglob("*.py")
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "App" and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "faust"]
    assert apps, "the processor's Faust app was not found"
    for path, node in apps:
        assert "broker_credentials" in {k.arg for k in node.keywords}, path
