"""deploy/ without a cluster: the kustomizations render, every object validates against the Kubernetes
schema for its kind, and the manifests agree with the engine (its flags, config keys, ports, key
folder layout, image) and the Dockerfile with the README's install steps.

Rendering is deploy/render.py (no kustomize binary in CI); where `kubectl` is installed its own
kustomize must print the same objects. Validation is offline: kubernetes-validate carries the API
schemas in its wheel (the `test` extra), strict, so a misspelt field fails too.
"""
from __future__ import annotations

import argparse
import base64
import importlib.util
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
import zmq

from engine.framework.commands import run as run_command
from engine.framework.config import RunOptions, build_options, load_config
from engine.framework.options import given, parse_options
from engine.framework.schema import DEFAULT_PUBLISH, LABELS_TOPIC, decode_label
from engine.framework.security import generate_keys, load_keys, secure_client
from engine.framework.stage_options import PoseStageOptions
from pipeline_helpers import engine_cmd, free_port

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
KUBERNETES = "1.33"  # the schema version checked; kubernetes-validate==1.37.0 carries it
GROUPS = {"har-lobby", "har-dock"}  # the example overlay's camera groups (namespaces)

_spec = importlib.util.spec_from_file_location("deploy_render", DEPLOY / "render.py")
assert _spec and _spec.loader
render_module = importlib.util.module_from_spec(_spec)
sys.modules["deploy_render"] = render_module
_spec.loader.exec_module(render_module)
render = render_module.render


@pytest.fixture(scope="module")
def deploy_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deploy/ copied, with CURVE keys made by the engine where the README says (they are never committed)."""
    root = tmp_path_factory.mktemp("deploy") / "deploy"
    shutil.copytree(DEPLOY, root, ignore=shutil.ignore_patterns("curve", "__pycache__"))
    generate_keys(root / "overlays" / "example" / "keys" / "curve")
    return root


@pytest.fixture(scope="module")
def base(deploy_copy: Path) -> list[dict[str, Any]]:
    return render(deploy_copy / "base")


@pytest.fixture(scope="module")
def site(deploy_copy: Path) -> list[dict[str, Any]]:
    return render(deploy_copy / "overlays" / "example")


def find(objects: list[dict[str, Any]], kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    hits = [o for o in objects if o["kind"] == kind and o["metadata"]["name"].startswith(name)
            and (namespace is None or o["metadata"].get("namespace") == namespace)]
    assert len(hits) == 1, f"{kind} {name} in {namespace}: {len(hits)} found"
    return hits[0]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def port_of(endpoint: str) -> int:
    port = urlsplit(endpoint).port
    assert port is not None, endpoint
    return port


def run_options(args: list[str], config: Path) -> RunOptions:
    """What `engine run ARGS` would run with, parsed by the engine's own parser and config loader."""
    parser = argparse.ArgumentParser()
    run_command.add_parser(parser.add_subparsers(dest="command"))
    ns = parser.parse_args(args)
    assert ns.command == "run"
    return build_options(str(config), given(RunOptions, ns))


def test_base_and_overlay_render_to_the_expected_objects(base: list[dict[str, Any]], site: list[dict[str, Any]]) -> None:
    kinds = sorted((o["kind"], o["metadata"]["name"].rsplit("-", 1)[0] if o["kind"] == "ConfigMap" else o["metadata"]["name"])
                   for o in base)
    assert kinds == [("ConfigMap", "engine-config"), ("Deployment", "pipeline"), ("Deployment", "pose-worker"),
                     ("HorizontalPodAutoscaler", "pose-worker"), ("Service", "frames"), ("Service", "labels"),
                     ("Service", "poses")]
    assert {o["metadata"]["name"] for o in site if o["kind"] == "Namespace"} == GROUPS
    for group in GROUPS:
        in_group = [o for o in site if o["metadata"].get("namespace") == group]
        assert len(in_group) == 8, [o["kind"] for o in in_group]  # the base's 7 and the keys' Secret
        pipeline = find(site, "Deployment", "pipeline", group)
        volumes = {v["name"]: v for v in pipeline["spec"]["template"]["spec"]["volumes"]}
        # generated names carry the content hash, and the pod template follows it (a new config rolls the pods)
        config = find(site, "ConfigMap", "engine-config-", group)
        secret = find(site, "Secret", "curve-keys-", group)
        assert volumes["config"]["configMap"]["name"] == config["metadata"]["name"]
        assert volumes["keys"]["secret"]["secretName"] == secret["metadata"]["name"]
        assert re.fullmatch(r"engine-config-[a-z0-9]{10}", config["metadata"]["name"])
        # the group's label selects only the group's pods
        selector = find(site, "Service", "frames", group)["spec"]["selector"]
        assert selector["har-engine/camera-group"] == group.removeprefix("har-")
        assert container(pipeline)["image"] == "registry.example.com/har-engine:0.1.0"


def test_every_object_validates_against_the_kubernetes_schema(base: list[dict[str, Any]], site: list[dict[str, Any]]) -> None:
    for obj in base + site:
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)


def test_the_validator_refuses_what_a_cluster_would() -> None:
    """The check above can fail: a misspelt field and a wrong type are refused, naming the field."""
    deployment = yaml.safe_load((DEPLOY / "base" / "pipeline.yaml").read_text())
    deployment["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError, match="replicas"):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)
    deployment["spec"]["replicas"] = 1
    container(deployment)["readinessProbes"] = container(deployment).pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="readinessProbes"):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


def kubectl_kustomize_major() -> int:
    """The major version of kustomize inside kubectl (`Kustomize Version: v5.5.0`), 0 without kubectl."""
    if shutil.which("kubectl") is None:
        return 0
    result = subprocess.run(["kubectl", "version", "--client"], capture_output=True, text=True, timeout=60)
    found = re.search(r"Kustomize Version: v(\d+)", result.stdout)
    return int(found[1]) if found else 0


@pytest.mark.parametrize("folder", ["base", "overlays/example"])
def test_render_prints_what_kubectl_kustomize_prints(deploy_copy: Path, folder: str) -> None:
    if kubectl_kustomize_major() < 5:
        pytest.skip("no kubectl with kustomize 5 here (Debian's kubectl 1.20 has kustomize 2, without `labels`): "
                    "deploy/render.py is checked against it where there is one")
    result = subprocess.run(["kubectl", "kustomize", str(deploy_copy / folder)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert list(yaml.safe_load_all(result.stdout)) == render(deploy_copy / folder)


def test_render_refuses_what_it_does_not_support(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\nnamePrefix: x-\n")
    with pytest.raises(render_module.KustomizeError, match="namePrefix not supported"):
        render(tmp_path)


@pytest.mark.parametrize("where", ["base", "har-lobby", "har-dock"])
def test_the_pipeline_is_an_engine_run_the_engine_accepts(deploy_copy: Path, base: list[dict[str, Any]],
                                                         site: list[dict[str, Any]], where: str,
                                                         tmp_path: Path) -> None:
    objects, namespace = (base, None) if where == "base" else (site, where)
    pipeline = find(objects, "Deployment", "pipeline", namespace)
    engine = container(pipeline)
    args = engine["args"]
    mounts = {m["name"]: m for m in engine["volumeMounts"]}
    # the config file it names is the ConfigMap's, mounted where the flag says
    assert mounts["config"]["mountPath"] == flag(args, "--config")
    config_map = find(objects, "ConfigMap", "engine-config-", namespace)
    config = tmp_path / "engine.toml"
    config.write_text(config_map["data"][mounts["config"]["subPath"]])
    load_config(config)  # every key is one RunOptions knows
    options = run_options(args, config)
    assert options.remote_pose_only and options.workers() == 0
    assert mounts["keys"]["mountPath"] == options.curve_keys
    # ports: the Deployment's, the Services', the probes' and the engine's flags are one set of numbers
    ports = {p["name"]: p["containerPort"] for p in engine["ports"]}
    assert ports["frames"] == port_of(options.frames_endpoint or "")
    assert ports["poses"] == port_of(options.poses_endpoint or "")
    assert ports["labels"] == port_of(options.publish) == port_of(DEFAULT_PUBLISH)
    assert ports["metrics"] == int((options.metrics or "").rpartition(":")[2])
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert engine[probe]["httpGet"]["port"] == "metrics"
    assert engine["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert engine["readinessProbe"]["httpGet"]["path"] == "/readyz"
    annotations = pipeline["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == ports["metrics"]
    for service, port_name in (("frames", "frames"), ("poses", "poses"), ("labels", "labels")):
        (port,) = [p for p in find(objects, "Service", service, namespace)["spec"]["ports"] if p["name"] == port_name]
        assert port["port"] == ports[port_name] and port["targetPort"] == port_name
    # the pose workers connect to those Services, with the backend and people the group's config names
    worker = container(find(objects, "Deployment", "pose-worker", namespace))
    pose = parse_options(PoseStageOptions, worker["args"][2:], "stage pose")
    assert worker["args"][:2] == ["stage", "pose"]
    assert urlsplit(pose.input).hostname == "frames" and port_of(pose.input) == ports["frames"]
    assert urlsplit(pose.output).hostname == "poses" and port_of(pose.output) == ports["poses"]
    assert pose.pose == options.pose and pose.max_people == options.max_people
    assert pose.metrics and int(pose.metrics.rpartition(":")[2]) == worker["ports"][0]["containerPort"]
    assert {m["mountPath"] for m in worker["volumeMounts"]} >= {pose.curve_keys}


def test_frames_and_poses_ports_are_the_readme_s(base: list[dict[str, Any]]) -> None:
    """The README's remote pose worker row and the manifests name the same two ports."""
    row = next(line for line in (REPO / "README.md").read_text().splitlines() if line.startswith("| a pose worker on another host"))
    readme_ports = [int(p) for p in re.findall(r"--frames-endpoint tcp://[^:]+:(\d+) --poses-endpoint tcp://[^:]+:(\d+)", row)[0]]
    ports = {p["name"]: p["containerPort"] for p in container(find(base, "Deployment", "pipeline"))["ports"]}
    assert [ports["frames"], ports["poses"]] == readme_ports


@pytest.mark.parametrize("deployment", ["pipeline", "pose-worker"])
def test_the_mounted_keys_are_a_folder_the_engine_loads(site: list[dict[str, Any]], deployment: str, tmp_path: Path) -> None:
    """The Secret's flat keys, laid out by the volume's items, are what `--curve-keys DIR` reads."""
    pod = find(site, "Deployment", deployment, "har-lobby")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "keys")["secret"]
    data = find(site, "Secret", volume["secretName"], "har-lobby")["data"]
    for item in volume["items"]:
        target = tmp_path / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base64.b64decode(data[item["key"]]))
    keys = load_keys(tmp_path)
    binds = deployment == "pipeline"
    assert (keys.server_secret is not None) == binds  # a worker never holds the server's secret
    if binds:
        assert list(keys.authorized.glob("*.key")), "the pipeline admits no client"


def test_image_references_name_the_project_s_image(base: list[dict[str, Any]]) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    images = {c["image"] for o in base if o["kind"] == "Deployment" for c in o["spec"]["template"]["spec"]["containers"]}
    assert images == {f"har-engine:{version}"}  # one image for every stage, tagged with the project's version


def dockerfile_final_stage() -> list[str]:
    lines = (REPO / "Dockerfile").read_text().splitlines()
    last_from = max(i for i, line in enumerate(lines) if line.startswith("FROM "))
    return lines[last_from:]


def test_the_dockerfile_installs_as_the_readme_does() -> None:
    """scripts/setup.sh's steps (python3 -m venv, pip>=24, pip install the project) are the Dockerfile's,
    but for -e: the image keeps no source tree."""
    setup = (REPO / "scripts" / "setup.sh").read_text()
    dockerfile = (REPO / "Dockerfile").read_text()
    install = " ".join(line.strip().rstrip("\\") for line in dockerfile.splitlines() if "venv" in line or "pip" in line)
    assert '"$python" -m venv .venv' in setup and "python3 -m venv /opt/engine/.venv" in install
    assert re.findall(r'"pip[<>=!~][^"]*"', setup) == re.findall(r'"pip[<>=!~][^"]*"', install) != []
    assert "pip install --quiet -e ." in setup
    assert re.search(r"-m pip install --quiet --no-cache-dir \.(\s|$)", install)
    readme = (REPO / "README.md").read_text()
    assert "`scripts/run.sh` is `python3 -m venv .venv && .venv/bin/pip install -e ." in readme
    # every package pyproject installs is copied into the build
    includes = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = set(re.findall(r"^COPY (\w+) \1$", dockerfile, re.M))
    assert copied == {pattern.rstrip("*") for pattern in includes}
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    for name in copied | {"models", "configs", "pyproject.toml", "README.md"}:
        assert f"!{name}/" in ignored or f"!{name}" in ignored, f".dockerignore keeps {name} out of the build"


def test_the_final_stage_runs_the_engine_as_the_manifests_expect(base: list[dict[str, Any]]) -> None:
    final = "\n".join(dockerfile_final_stage())
    assert "pip install" not in final and "build-essential" not in final and "gcc" not in final
    assert "pip uninstall" in (REPO / "Dockerfile").read_text()  # nor pip itself in the copied environment
    user = re.search(r"^USER (\d+):(\d+)$", final, re.M)
    assert user, "USER must be numeric for runAsNonRoot"
    models = re.search(r"ENGINE_MODELS_DIR=(\S+)", final)
    assert models and f"COPY models {models.group(1)}" in final
    assert re.search(r'^ENTRYPOINT \["engine"\]$', final, re.M)
    exposed = {int(p) for p in re.search(r"^EXPOSE ([\d ]+)$", final, re.M).group(1).split()}  # type: ignore[union-attr]
    for name in ("pipeline", "pose-worker"):
        deployment = find(base, "Deployment", name)
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsUser"] == int(user.group(1))
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert {p["containerPort"] for p in container(deployment)["ports"]} <= exposed
        # the root file system is read-only: the run folder (under /tmp) is an emptyDir
        assert container(deployment)["securityContext"]["readOnlyRootFilesystem"] is True
        assert any(m["mountPath"] == "/tmp" for m in container(deployment)["volumeMounts"])


def test_the_autoscaler_scales_the_pose_workers_on_cpu(base: list[dict[str, Any]]) -> None:
    hpa = find(base, "HorizontalPodAutoscaler", "pose-worker")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "pose-worker"}
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    # utilization is relative to the request: without one the autoscaler cannot work
    assert container(find(base, "Deployment", "pose-worker"))["resources"]["requests"]["cpu"]
    assert find(base, "Deployment", "pipeline")["spec"]["replicas"] == 1


def test_the_cut_worker_policy_selects_pose_workers_only(base: list[dict[str, Any]]) -> None:
    """The README's procedure: the NetworkPolicy validates, and it drops every packet of a labelled pose worker."""
    policy = yaml.safe_load((DEPLOY / "scenarios" / "cut-pose-worker.yaml").read_text())
    kubernetes_validate.validate(policy, KUBERNETES, strict=True)
    spec = policy["spec"]
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"] and "ingress" not in spec and "egress" not in spec
    selector = spec["podSelector"]["matchLabels"]
    for name, selected in (("pose-worker", True), ("pipeline", False)):
        labels = {**find(base, "Deployment", name)["spec"]["template"]["metadata"]["labels"], "har-engine/cut": "true"}
        assert (selector.items() <= labels.items()) == selected
    readme = (REPO / "README.md").read_text()
    assert "kubectl -n har-lobby apply -f deploy/scenarios/cut-pose-worker.yaml" in readme


def materialize_keys(deployment: dict[str, Any], secret: dict[str, Any], folder: Path) -> Path:
    """The key folder a pod sees: the Secret's data laid out by the Deployment's volume items."""
    pod = deployment["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "keys")["secret"]
    for item in volume["items"]:
        target = folder / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base64.b64decode(secret["data"][item["key"]]))
    return folder


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def test_the_pods_command_lines_run_together(base: list[dict[str, Any]], site: list[dict[str, Any]], tmp_path: Path) -> None:
    """The base's pipeline and pose worker, started here with their manifests' own arguments, config and key
    folders (Service names become 127.0.0.1, ports free ones, mount paths temporary folders): both turn
    ready, labels reach a CURVE subscriber, and SIGTERM (how Kubernetes stops a pod) ends both cleanly."""
    pipeline, worker = find(base, "Deployment", "pipeline"), find(base, "Deployment", "pose-worker")
    secret = find(site, "Secret", "curve-keys-", "har-dock")
    config = tmp_path / "engine.toml"
    config.write_text(find(base, "ConfigMap", "engine-config-")["data"]["engine.toml"])
    ports = {p["containerPort"]: free_port() for p in container(pipeline)["ports"]}
    worker_metrics = free_port()

    def localize(args: list[str], keys: Path, metrics: int) -> list[str]:
        out = []
        for arg in args:
            arg = arg.replace("/etc/har-engine/engine.toml", str(config)).replace("/etc/har-engine/keys", str(keys))
            arg = re.sub(r"tcp://(frames|poses):", "tcp://127.0.0.1:", arg)
            arg = re.sub(r":(\d+)$", lambda m: f":{metrics if m[1] == '9100' else ports.get(int(m[1]), m[1])}", arg)
            out.append(arg)
        return out

    pipeline_keys = materialize_keys(pipeline, secret, tmp_path / "pipeline-keys")
    worker_keys = materialize_keys(worker, secret, tmp_path / "worker-keys")
    pipeline_args = localize(container(pipeline)["args"], pipeline_keys, ports[9100])
    worker_args = localize(container(worker)["args"], worker_keys, worker_metrics)
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    labels_endpoint = f"tcp://127.0.0.1:{ports[5560]}"
    secure_client(sub, labels_endpoint, load_keys(worker_keys))
    sub.setsockopt(zmq.SUBSCRIBE, LABELS_TOPIC)
    sub.connect(labels_endpoint)
    procs = [subprocess.Popen(engine_cmd(*args), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for args in (pipeline_args, worker_args)]
    try:
        labels: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while len(labels) < 5 and time.monotonic() < deadline and all(p.poll() is None for p in procs):
            if sub.poll(200):
                labels.append(decode_label(sub.recv_multipart()))
        ready = [http_status(f"http://127.0.0.1:{port}/readyz") for port in (ports[9100], worker_metrics)]
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{ports[9100]}/metrics", timeout=5).read().decode()
        procs[0].send_signal(signal.SIGTERM)
        codes = [procs[0].wait(timeout=60)]
        time.sleep(1.0)
        stayed = procs[1].poll() is None  # --stay: the worker waits for the next pipeline
        procs[1].send_signal(signal.SIGTERM)  # as Kubernetes deletes the pod
        try:
            codes.append(procs[1].wait(timeout=30))
        except subprocess.TimeoutExpired:
            codes.append(None)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        errs = [p.communicate()[1] for p in procs]
        sub.close(linger=0)
        ctx.term()
    assert len(labels) >= 5, f"labels: {len(labels)}\npipeline: {errs[0][-2000:]}\nworker: {errs[1][-2000:]}"
    assert {label["stream"] for label in labels} == {"synthetic:"}
    assert ready == [200, 200]
    counted = re.search(r"^har_engine_labels_total (\S+)$", metrics, re.M)
    assert counted and float(counted[1]) >= 1, "the supervisor counts the labels it publishes over tcp with CURVE"
    assert codes == [0, 0], f"pipeline: {errs[0][-2000:]}\nworker: {errs[1][-2000:]}"
    assert stayed and "the engine ended; waiting for the next one" in errs[1], errs[1][-2000:]
