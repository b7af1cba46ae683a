"""The image's entrypoint (deploy/docker-entrypoint.sh) as a container runs it: a fresh empty
directory, an unprivileged numeric user (setpriv when the tests run as root), the settings
from the environment only, PLAINTEXT to the embedded broker. The worker and the gateway
become ready, and nothing is written outside the data directory.

No docker here: the process runs on this machine, as the image's user would in the image."""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from services.common.kafka import (
    ensure_topics,
    make_admin,
    make_client,
    make_consumer,
    make_producer,
    stop_consumer,
)
from services.common.settings import Settings
from services.stack.ports import free_port, stop_child
from tests.conftest import Servers, make_settings
from tests.integration.test_log_redaction import wait_ready

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "deploy" / "docker-entrypoint.sh"
UID = 10001  # the image's user (Dockerfile)
AS_ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def image_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the image user finds `joinedup`: this venv's, if that user can run its
    interpreter; else (the venv's interpreter lives in root's 0700 home, as on the
    development machines) a launcher on the system's interpreter of the same version, with
    this venv's packages (the image has its own interpreter and no such problem)."""
    venv_bin = Path(sys.prefix) / "bin"
    probe = subprocess.run(  # through a shell, as the entrypoint runs it
        as_image_user(["sh", "-c", 'exec "$0" -c "import sys, faust; print(sys.version)"',
                       str(venv_bin / "python")]),
        env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)
    if probe.returncode == 0 and probe.stdout.strip() == sys.version:
        return venv_bin
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system = shutil.which(version, path="/usr/local/bin:/usr/bin")
    assert system, f"no {version} the image user may run"
    root = tmp_path_factory.mktemp("image-python")
    root.chmod(0o755)
    subprocess.run([system, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
    packages = next(Path(sys.prefix).glob("lib/python3*/site-packages"))
    (next((root / "venv").glob("lib/python3*/site-packages")) / "joinedup.pth").write_text(
        f"import site; site.addsitedir({str(packages)!r})\n")
    launcher = root / "venv" / "bin" / "joinedup"
    launcher.write_text(f"#!{root / 'venv' / 'bin' / 'python'}\n"
                        "import sys\nfrom services.operations.cli import main\nsys.exit(main())\n")
    launcher.chmod(0o755)
    return root / "venv" / "bin"


@pytest.fixture
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An empty folder the image's user may enter: `app` (the working directory, read-only
    to the process as /app is in the image) and `var` (where its data directory goes)."""
    root = Path(tmp_path_factory.mktemp("image"))
    for folder in (root, *root.parents):  # the user must reach it through pytest's 0700 dirs
        if folder.is_relative_to(tmp_path_factory.getbasetemp().parent):
            folder.chmod(folder.stat().st_mode | 0o005)
    (root / "app").mkdir(mode=0o555)
    (root / "var").mkdir()
    if AS_ROOT:
        os.chown(root / "var", UID, UID)
    else:
        (root / "app").chmod(0o555)  # not even its owner may write there
    yield root
    (root / "app").chmod(0o755)
    shutil.rmtree(root, ignore_errors=True)


def image_env(settings: Settings, data_dir: Path | None, image_bin: Path,
              **more: str) -> dict[str, str]:
    """The environment a compose service gives the image: nothing from this test process."""
    env = {
        "PATH": f"{image_bin}:/usr/bin:/bin",
        "HOME": "/nonexistent",
        "USER": "joinedup",  # as the image sets it (uid 10001 has no passwd entry here)
        "PYTHONDONTWRITEBYTECODE": "1",
        "JOINEDUP_ENVIRONMENT": "production",
        "DATABASE_URL": settings.database_url or "",
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap or "",
        "JOINEDUP_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
        "JOINEDUP_MESSAGE_KEY_SECRET": secrets.token_urlsafe(32),
        "JOINEDUP_SEALING_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "JOINEDUP_DB_SCHEMA": settings.db_schema,
        "JOINEDUP_TOPIC_PREFIX": settings.topic_prefix,
        "JOINEDUP_PROCESSOR_GROUP": settings.processor_group,
        "JOINEDUP_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "JOINEDUP_LOG_LEVEL": "WARNING",
        **more,
    }
    if data_dir is not None:
        env["JOINEDUP_DATA_DIR"] = str(data_dir)
    return env


def as_image_user(command: list[str]) -> list[str]:
    if not AS_ROOT:  # already unprivileged
        return command
    return ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups", *command]


@contextmanager
def started(command: str, cwd: Path, env: dict[str, str], log: Path
            ) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(as_image_user([str(ENTRYPOINT), "joinedup", *command.split()]),
                                   cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            stop_child(process, signal.SIGTERM, 30)


def written(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


async def test_worker_and_gateway_start_as_the_image_user_in_a_fresh_directory(
        migrated: Settings, fresh: Path, image_bin: Path) -> None:
    data = fresh / "var" / "joinedup"  # missing: the entrypoint makes it
    worker_port, api_port = free_port(), free_port()
    logs = fresh.parent / f"{fresh.name}-logs"
    logs.mkdir()
    worker_env = image_env(migrated, data, image_bin, JOINEDUP_WORKER_HEALTH_HOST="127.0.0.1",
                           JOINEDUP_WORKER_HEALTH_PORT=str(worker_port))
    api_env = image_env(migrated, data, image_bin, JOINEDUP_API_HOST="127.0.0.1",
                        JOINEDUP_API_PORT=str(api_port), JOINEDUP_WORKER_HEALTH_PORT="0")
    with started("worker", fresh / "app", worker_env, logs / "worker.log") as worker, \
            started("api", fresh / "app", api_env, logs / "api.log") as api:
        try:
            await wait_ready(f"http://127.0.0.1:{worker_port}", worker, timeout=60)
            await wait_ready(f"http://127.0.0.1:{api_port}", api, timeout=60)
        except AssertionError:
            raise AssertionError((logs / "worker.log").read_text()[-3000:]
                                 + (logs / "api.log").read_text()[-3000:]) from None
    assert written(fresh / "app") == set()
    assert written(fresh / "var") == {"joinedup"} | {
        f"joinedup/{p}" for p in written(data)}
    assert "faust" in written(data)  # Faust's datadir, made with its parent
    if AS_ROOT:
        assert {p.stat().st_uid for p in data.rglob("*")} <= {UID}


async def test_a_fresh_directory_as_data_directory(migrated: Settings, fresh: Path,
                                                   image_bin: Path) -> None:
    """No JOINEDUP_DATA_DIR: `.joinedup` in the working directory, made with its parents
    (the processor used to crash there: Faust made `.joinedup/faust` without its parent)."""
    home = fresh / "var"
    port = free_port()
    env = image_env(migrated, None, image_bin, JOINEDUP_WORKER_HEALTH_HOST="127.0.0.1",
                    JOINEDUP_WORKER_HEALTH_PORT=str(port))
    log = fresh.parent / f"{fresh.name}-fresh.log"
    with started("worker", home, env, log) as worker:
        try:
            await wait_ready(f"http://127.0.0.1:{port}", worker, timeout=60)
        except AssertionError:
            raise AssertionError(log.read_text()[-3000:]) from None
    assert {p.split("/")[0] for p in written(home)} == {".joinedup"}
    assert (home / ".joinedup" / "faust").is_dir()


@pytest.mark.parametrize(("unset", "named"), [
    ("DATABASE_URL", "DATABASE_URL"),
    ("JOINEDUP_SEALING_KEY", "JOINEDUP_SEALING_KEY"),
])
def test_a_missing_setting_stops_the_entrypoint_in_one_line(
        settings: Settings, fresh: Path, image_bin: Path, unset: str, named: str) -> None:
    env = image_env(settings, fresh / "var" / "joinedup", image_bin)
    del env[unset]
    done = subprocess.run(as_image_user([str(ENTRYPOINT), "joinedup", "worker"]),
                          cwd=fresh / "app", env=env, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 64
    assert done.stderr.splitlines() == [
        f"joinedup: missing setting(s): {named} (see deploy/compose/.env.example)"]
    assert written(fresh / "var") == set()


def test_an_unwritable_data_directory_stops_the_entrypoint_in_one_line(
        settings: Settings, fresh: Path, image_bin: Path) -> None:
    data = fresh / "app" / "data"  # /app is read-only to the image's user
    done = subprocess.run(as_image_user([str(ENTRYPOINT), "joinedup", "worker"]),
                          cwd=fresh / "app", env=image_env(settings, data, image_bin),
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 73
    assert done.stderr.splitlines() == [
        f"joinedup: data directory {data} is not writable by uid "
        f"{UID if AS_ROOT else os.geteuid()} (JOINEDUP_DATA_DIR)"]


async def test_every_factory_reaches_the_embedded_broker_with_plaintext(
        servers: Servers) -> None:
    """The settings the image gets locally (JOINEDUP_KAFKA_SECURITY_PROTOCOL=PLAINTEXT):
    admin, producer, consumer and bare client all connect, and a record goes round."""
    settings = make_settings(servers, kafka_security_protocol="PLAINTEXT")
    topic = settings.topics.alerts
    await ensure_topics(settings, (topic,))
    admin = make_admin(settings)
    await admin.start()
    try:
        assert topic in await admin.list_topics()
    finally:
        await admin.close()
    producer = make_producer(settings)
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, b"round", key=b"k")
    finally:
        await producer.stop()
    consumer = make_consumer(settings, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, sent.partition)
        consumer.assign([tp])
        consumer.seek(tp, sent.offset)
        got = await consumer.getone()
        assert (got.value, got.offset) == (b"round", sent.offset)
    finally:
        await stop_consumer(consumer)
    client = make_client(settings)
    await client.bootstrap()
    try:
        assert client.cluster.brokers()
    finally:
        await client.close()
