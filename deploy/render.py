"""Render a kustomization (`kubectl kustomize DIR`) for the subset deploy/ uses, with Python and PyYAML only.

Why it exists: CI has no kustomize binary (Debian bookworm packages none, and its kubectl is 1.20,
whose kustomize predates `labels` and `patches`), yet it must render deploy/ and validate what
comes out. Where `kubectl` is installed, tests/test_deploy.py checks that this renderer and
`kubectl kustomize` give the same objects, hash suffixes included.

Supported, in kustomize's order within a layer: `resources` (files and kustomization folders),
`configMapGenerator` / `secretGenerator` (`files`, `literals`, `behavior` create/replace/merge),
`patches` (JSON 6902 operations or a strategic merge of maps and name-keyed lists; target by kind
and name), `namespace`, `labels` (`pairs`, `includeSelectors`, `includeTemplates`), `images`;
then, once for the whole build, generated names get kustomize's content-hash suffix and the pod
templates' references to them follow. Anything else is refused by name, never ignored.

    python deploy/render.py deploy/overlays/example > site.yaml
"""
from __future__ import annotations

import base64
import copy
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "configMapGenerator", "secretGenerator", "patches",
                  "namespace", "labels", "images"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass",
                  "StorageClass", "PersistentVolume"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
# kustomize's output order ("legacy" sort): these kinds first, in this order, then the rest by kind.
KIND_ORDER = ["Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition", "ServiceAccount",
              "PodSecurityPolicy", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "ConfigMap",
              "Secret", "Endpoints", "Service", "LimitRange", "PriorityClass", "PersistentVolume",
              "PersistentVolumeClaim", "Deployment", "StatefulSet", "CronJob", "PodDisruptionBudget"]
KIND_ORDER_LAST = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]


class KustomizeError(ValueError):
    """A kustomization this renderer cannot render; the message names the file and the field."""


@dataclass
class Resource:
    """One object; `generated` ones get the hash suffix at the end of the build (kustomize's default)."""

    obj: dict[str, Any]
    generated: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        meta = self.obj.get("metadata", {})
        return self.obj.get("kind", ""), meta.get("namespace", ""), meta.get("name", "")


def render(folder: str | Path) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize folder` would print, in its order."""
    resources = _build(Path(folder))
    _add_hash_suffixes(resources)
    return sorted((r.obj for r in resources), key=_sort_key)


def render_yaml(folder: str | Path) -> str:
    return yaml.dump_all(render(folder), Dumper=_BlockDumper, sort_keys=True, default_flow_style=False)


def _kustomization(folder: Path) -> tuple[Path, dict[str, Any]]:
    for name in KUSTOMIZATION_FILES:
        path = folder / name
        if path.is_file():
            data = yaml.safe_load(path.read_text()) or {}
            unknown = sorted(set(data) - SUPPORTED_KEYS)
            if unknown:
                raise KustomizeError(f"{path}: {', '.join(unknown)} not supported by deploy/render.py "
                                     f"(supported: {', '.join(sorted(SUPPORTED_KEYS))}); use kubectl kustomize")
            return path, data
    raise KustomizeError(f"{folder}: no kustomization.yaml")


def _build(folder: Path) -> list[Resource]:
    path, k = _kustomization(folder)
    resources: list[Resource] = []
    for entry in k.get("resources", []):
        target = folder / entry
        if target.is_dir():
            resources.extend(_build(target))
        elif target.is_file():
            resources.extend(Resource(obj) for obj in yaml.safe_load_all(target.read_text()) if obj)
        else:
            raise KustomizeError(f"{path}: resource {entry} not found")
    _check_unique(resources, path)
    for generator, kind in (("configMapGenerator", "ConfigMap"), ("secretGenerator", "Secret")):
        for spec in k.get(generator, []):
            _generate(resources, spec, kind, folder, path)
    for patch in k.get("patches", []):
        _patch(resources, patch, folder, path)
    if "namespace" in k:
        for r in resources:
            if r.obj.get("kind") not in CLUSTER_SCOPED:
                r.obj.setdefault("metadata", {})["namespace"] = k["namespace"]
    for spec in k.get("labels", []):
        for r in resources:
            _add_labels(r.obj, spec.get("pairs", {}), spec.get("includeSelectors", False),
                        spec.get("includeTemplates", False) or spec.get("includeSelectors", False))
    for spec in k.get("images", []):
        for r in resources:
            _set_images(r.obj, spec)
    _check_unique(resources, path)
    return resources


def _check_unique(resources: list[Resource], path: Path) -> None:
    seen: set[tuple[str, str, str]] = set()
    for r in resources:
        if r.key in seen:
            raise KustomizeError(f"{path}: {'/'.join(r.key)} appears twice")
        seen.add(r.key)


def _generate(resources: list[Resource], spec: dict[str, Any], kind: str, folder: Path, path: Path) -> None:
    unknown = sorted(set(spec) - {"name", "files", "literals", "behavior", "type"})
    if unknown:
        raise KustomizeError(f"{path}: {kind} generator {spec.get('name')}: {', '.join(unknown)} not supported")
    data: dict[str, str] = {}
    for item in spec.get("files", []):
        key, _, rel = item.partition("=") if "=" in item else (Path(item).name, "", item)
        file = folder / rel
        if not file.is_file():
            raise KustomizeError(f"{path}: {kind} {spec['name']}: file {rel} not found")
        text = file.read_bytes()
        data[key] = _base64(text) if kind == "Secret" else text.decode()
    for item in spec.get("literals", []):
        key, _, value = item.partition("=")
        data[key] = _base64(value.encode()) if kind == "Secret" else value
    behavior = spec.get("behavior", "create")
    if behavior == "create":
        obj: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "metadata": {"name": spec["name"]}, "data": data}
        if kind == "Secret":
            obj["type"] = spec.get("type", "Opaque")
        resources.append(Resource(obj, generated=True))
        return
    existing = [r for r in resources if r.obj.get("kind") == kind and r.obj["metadata"]["name"] == spec["name"]]
    if len(existing) != 1:
        raise KustomizeError(f"{path}: {kind} {spec['name']} (behavior {behavior}) must match one {kind} "
                             f"of the resources, found {len(existing)}")
    if behavior == "replace":
        existing[0].obj["data"] = data
    elif behavior == "merge":
        existing[0].obj.setdefault("data", {}).update(data)
    else:
        raise KustomizeError(f"{path}: {kind} {spec['name']}: behavior {behavior!r} (create, replace or merge)")


def _base64(raw: bytes) -> str:
    """Base64 as kustomize writes a Secret's data (kyaml encodeBase64): lines of 70, each ending in a newline
    once there is more than one line. The hash suffix is over these exact strings."""
    text = base64.b64encode(raw).decode()
    if len(text) // 70 + 1 == 1:
        return text
    return "".join(text[i:i + 70] + "\n" for i in range(0, len(text), 70))


def _patch(resources: list[Resource], spec: dict[str, Any], folder: Path, path: Path) -> None:
    text = spec["patch"] if "patch" in spec else (folder / spec["path"]).read_text()
    body = yaml.safe_load(text)
    target = spec.get("target") or {}
    if isinstance(body, dict) and not target:
        target = {"kind": body.get("kind"), "name": body.get("metadata", {}).get("name")}
    unknown = sorted(set(target) - {"kind", "name", "namespace", "group", "version"})
    if unknown:
        raise KustomizeError(f"{path}: patch target {', '.join(unknown)} not supported (kind, name, namespace)")
    hits = [r for r in resources if all(
        target.get(f) in (None, v) for f, v in (("kind", r.obj.get("kind")), ("name", r.obj["metadata"]["name"]),
                                                ("namespace", r.obj["metadata"].get("namespace"))))]
    if not hits:
        raise KustomizeError(f"{path}: patch target {target} matches no resource")
    for r in hits:
        if isinstance(body, list):
            for op in body:
                _json6902(r.obj, op, path)
        else:
            merged = _strategic_merge(r.obj, body)
            r.obj.clear()
            r.obj.update(merged)


def _json6902(obj: dict[str, Any], op: dict[str, Any], path: Path) -> None:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
    parent: Any = obj
    try:
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        if op["op"] in ("replace", "add") and isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if op["op"] == "replace":
                parent[index] = op["value"]
            else:
                parent.insert(index, op["value"])
        elif op["op"] == "replace":
            if last not in parent:
                raise KeyError(last)
            parent[last] = op["value"]
        elif op["op"] == "add":
            parent[last] = op["value"]
        elif op["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        else:
            raise KustomizeError(f"{path}: patch op {op['op']!r} not supported (add, replace, remove)")
    except (KeyError, IndexError, ValueError, TypeError):
        raise KustomizeError(f"{path}: patch path {op['path']} does not exist in "
                             f"{obj.get('kind')}/{obj['metadata']['name']}") from None


def _strategic_merge(base: Any, patch: Any) -> Any:
    """Maps merge key by key (null deletes); lists of maps with `name` merge by name; other lists replace."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = _strategic_merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(patch, list) and all(isinstance(x, dict) and "name" in x for x in base + patch):
        out_list = [copy.deepcopy(x) for x in base]
        for item in patch:
            match = next((i for i, x in enumerate(out_list) if x["name"] == item["name"]), None)
            if match is None:
                out_list.append(copy.deepcopy(item))
            else:
                out_list[match] = _strategic_merge(out_list[match], item)
        return out_list
    return copy.deepcopy(patch)


def _add_labels(obj: dict[str, Any], pairs: dict[str, str], selectors: bool, templates: bool) -> None:
    obj.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
    kind = obj.get("kind")
    spec = obj.get("spec", {})
    if kind in WORKLOADS:
        if selectors:
            spec.setdefault("selector", {}).setdefault("matchLabels", {}).update(pairs)
        if templates:
            template = spec.setdefault("template", {})
            template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
        if selectors:
            for constraint in spec.get("template", {}).get("spec", {}).get("topologySpreadConstraints", []):
                constraint.setdefault("labelSelector", {}).setdefault("matchLabels", {}).update(pairs)
    elif kind == "Service" and selectors and "selector" in spec:
        spec["selector"].update(pairs)


def _set_images(obj: dict[str, Any], spec: dict[str, str]) -> None:
    for container in _containers(obj):
        image = container.get("image", "")
        name, tag, digest = _split_image(image)
        if name != spec["name"]:
            continue
        name = spec.get("newName", name)
        if "digest" in spec:
            container["image"] = f"{name}@{spec['digest']}"
        elif "newTag" in spec:
            container["image"] = f"{name}:{spec['newTag']}"
        else:
            container["image"] = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def _split_image(image: str) -> tuple[str, str, str]:
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1:], digest
    return name, "", digest


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    if obj.get("kind") == "Pod":
        return obj.get("spec")
    if obj.get("kind") == "CronJob":
        return obj.get("spec", {}).get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
    if obj.get("kind") in WORKLOADS:
        return obj.get("spec", {}).get("template", {}).get("spec")
    return None


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    pod = _pod_spec(obj) or {}
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def _hash_suffix(obj: dict[str, Any]) -> str:
    """kustomize's name hash (api/hasher/hasher.go): sha256 of Go's JSON of kind, name, data (and a Secret's
    type), 10 hex digits with 0 1 3 a e spelled g h k m t so that a suffix never reads as a word or a number.

    The name it hashes is always empty: kustomize looks it up as the single field "metadata/name",
    which no object has (kustomize v5.5, checked against `kubectl kustomize` in tests/test_deploy.py).
    """
    content: dict[str, Any] = {"kind": obj["kind"], "name": "", "data": obj.get("data", {})}
    if obj["kind"] == "Secret":
        content["type"] = obj.get("type", "Opaque")
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # Go's encoding/json escapes these for HTML safety; the hash is over its bytes.
    for char, escape in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        encoded = encoded.replace(char, escape)
    digest = hashlib.sha256(encoded.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def _add_hash_suffixes(resources: list[Resource]) -> None:
    renamed: dict[tuple[str, str, str], str] = {}
    for r in resources:
        if r.generated:
            kind, namespace, name = r.key
            new = f"{name}-{_hash_suffix(r.obj)}"
            r.obj["metadata"]["name"] = new
            renamed[(kind, namespace, name)] = new
    for r in resources:
        namespace = r.obj.get("metadata", {}).get("namespace", "")
        pod = _pod_spec(r.obj)
        if pod is None:
            continue

        def follow(ref: dict[str, Any] | None, kind: str, field: str = "name") -> None:
            if ref and (kind, namespace, ref.get(field)) in renamed:
                ref[field] = renamed[(kind, namespace, ref[field])]

        for volume in pod.get("volumes", []):
            follow(volume.get("configMap"), "ConfigMap")
            follow(volume.get("secret"), "Secret", "secretName")
            for source in volume.get("projected", {}).get("sources", []):
                follow(source.get("configMap"), "ConfigMap")
                follow(source.get("secret"), "Secret")
        for container in _containers(r.obj):
            for env in container.get("env", []):
                follow(env.get("valueFrom", {}).get("configMapKeyRef"), "ConfigMap")
                follow(env.get("valueFrom", {}).get("secretKeyRef"), "Secret")
            for source in container.get("envFrom", []):
                follow(source.get("configMapRef"), "ConfigMap")
                follow(source.get("secretRef"), "Secret")
        for secret in pod.get("imagePullSecrets", []):
            follow(secret, "Secret")


def _sort_key(obj: dict[str, Any]) -> tuple[int, str, str, str]:
    kind = obj.get("kind", "")
    if kind in KIND_ORDER:
        rank = KIND_ORDER.index(kind)
    elif kind in KIND_ORDER_LAST:
        rank = len(KIND_ORDER) + 1 + KIND_ORDER_LAST.index(kind)
    else:
        rank = len(KIND_ORDER)
    meta = obj.get("metadata", {})
    return rank, kind if rank == len(KIND_ORDER) else "", meta.get("namespace", ""), meta.get("name", "")


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the TOML config) as `|` blocks, as kustomize prints them."""


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_BlockDumper.add_representer(str, _str)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python deploy/render.py KUSTOMIZATION_DIR   (e.g. deploy/overlays/example)", file=sys.stderr)
        return 2
    try:
        sys.stdout.write(render_yaml(argv[0]))
    except KustomizeError as exc:
        print(f"render: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
