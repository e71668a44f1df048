"""Checks of the deployment files in deploy/ that need no container engine and no cluster.

  - the runtime image's package list covers every library the built binary links
    (deploy/check_runtime_libs.py), and the check fails when a needed package is missing;
  - deploy/Dockerfile's runtime stage installs that list, runs as a non-root user, has a health
    check, and builds from what .dockerignore lets into the context;
  - every Kustomize tree and the KServe examples render and validate against the API schemas
    (deploy/validate/run.sh), and the validator refuses broken manifests;
  - the manifests' slipway flags exist, and their shutdown timings add up.

Environment:
  SLIPWAY_BINARY  the built server (default build/slipway)
  KUBECTL         kubectl to render with (default: kubectl on PATH)
Needs node and npm (the validator's packages come from the npm registry) and kubectl.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
VALIDATE = DEPLOY / "validate"
PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
BINARY = Path(os.environ.get("SLIPWAY_BINARY", REPO / "build" / "slipway"))
KUBECTL = os.environ.get("KUBECTL", "kubectl")
CHECK = DEPLOY / "check_runtime_libs.py"
PACKAGES = DEPLOY / "runtime-packages.txt"
DOCKERFILE = DEPLOY / "Dockerfile"
OVERLAYS = sorted(p for p in (DEPLOY / "k8s" / "overlays").iterdir() if p.is_dir())


def need_binary() -> Path:
    if not BINARY.is_file():
        pytest.fail(f"server binary {BINARY} does not exist (build it or set SLIPWAY_BINARY)")
    return BINARY


def need_tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} is not installed (needed to check deploy/)")
    return path


def run(cmd, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 300)
    return subprocess.run([str(c) for c in cmd], **kw)


def package_lines(path: Path) -> list[str]:
    return [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()
            if line.split("#", 1)[0].strip()]


# ---- Runtime libraries -----------------------------------------------------------------------

def load_check_module():
    spec = importlib.util.spec_from_file_location("check_runtime_libs", CHECK)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_runtime_package_list_covers_the_binary():
    result = run([PYTHON, CHECK, need_binary()])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok:" in result.stdout


def test_check_fails_when_a_needed_package_is_missing(tmp_path):
    needed = run([PYTHON, CHECK, "--print", need_binary()])
    assert needed.returncode == 0, needed.stderr
    listed = package_lines(PACKAGES)
    # The package that ships libgrpc++ (the gRPC frontend), or else the first one needed.
    needed_pkgs = needed.stdout.split()
    victim = next((p for p in needed_pkgs if p.startswith("libgrpc++")), needed_pkgs[0])
    assert victim in listed
    trimmed = tmp_path / "runtime-packages.txt"
    trimmed.write_text("\n".join(p for p in listed if p != victim) + "\n")

    result = run([PYTHON, CHECK, "--packages", trimmed, BINARY])
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"'{victim}'" in result.stderr
    assert str(trimmed) in result.stderr


def test_check_fails_on_a_library_ldd_cannot_find():
    module = load_check_module()
    libs = module.parse_ldd(
        "\tlinux-vdso.so.1 (0x00007ffd)\n"
        "\tlibmissing.so.3 => not found\n"
        "\tlibonnxruntime.so.1 => /opt/ort/libonnxruntime.so.1 (0x00007f00)\n"
        "\t/lib64/ld-linux-x86-64.so.2 (0x00007f01)\n")
    assert [lib.soname for lib in libs] == ["libmissing.so.3", "libonnxruntime.so.1",
                                            "ld-linux-x86-64.so.2"]
    verdict = module.check(libs, set())
    assert any("libmissing.so.3" in p and "not found" in p for p in verdict.problems)
    assert [lib.soname for lib in verdict.bundled] == ["libonnxruntime.so.1"]


def test_base_image_packages_are_not_listed_twice():
    module = load_check_module()
    assert module.BASE_PACKAGES == {"libc6", "libgcc-s1", "libstdc++6"}
    assert not set(package_lines(PACKAGES)) & module.BASE_PACKAGES


# ---- Dockerfile -------------------------------------------------------------------------------

def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        if not current and (raw.lstrip().startswith("#") or not raw.strip()):
            continue
        if raw.lstrip().startswith("#"):  # a comment inside a continued instruction
            continue
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        lines.append(current + raw)
        current = ""
    out = []
    for line in lines:
        word, _, rest = line.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instr in dockerfile_instructions():
        if instr[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instr)
    return result


def global_args() -> dict[str, str]:
    args = {}
    for word, rest in dockerfile_instructions():
        if word == "FROM":
            break
        if word == "ARG" and "=" in rest:
            key, value = rest.split("=", 1)
            args[key] = value
    return args


def test_runtime_stage_is_slim_debian_12_with_the_package_list():
    runtime = stages()[-1]
    base = runtime[0][1].split()[0]
    for key, value in global_args().items():
        base = base.replace("${" + key + "}", value)
    assert base == "debian:12-slim"
    text = "\n".join(rest for _, rest in runtime)
    assert any(w == "COPY" and "deploy/runtime-packages.txt" in r for w, r in runtime)
    assert re.search(r"runtime-packages\.txt\s*\|\s*xargs .*apt-get install", text), text
    assert "--no-install-recommends" in text
    # Nothing else is installed there: the list is the one place for runtime packages.
    assert text.count("apt-get install") == 1
    assert any(w == "COPY" and "libonnxruntime.so.1" in r for w, r in runtime)
    assert "ln -s libonnxruntime.so.1 /usr/local/lib/libonnxruntime.so" in text
    assert "ldconfig" in text


def test_runtime_stage_runs_as_a_non_root_user():
    users = [rest for word, rest in stages()[-1] if word == "USER"]
    assert users, "the runtime stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0") and user == "10001"


def test_runtime_stage_has_a_health_check_with_an_installed_tool():
    checks = [rest for word, rest in stages()[-1] if word == "HEALTHCHECK"]
    assert len(checks) == 1
    assert "/v2/health/ready" in checks[0]
    assert "curl" in checks[0] and "curl" in package_lines(PACKAGES)


def test_runtime_stage_ports_volume_and_entrypoint():
    runtime = stages()[-1]
    exposed = " ".join(rest for word, rest in runtime if word == "EXPOSE").split()
    assert exposed == ["8000", "8001", "8002"]
    entrypoint = json.loads([rest for word, rest in runtime if word == "ENTRYPOINT"][-1])
    assert entrypoint[:4] == ["slipway", "serve", "--model-repository", "/models"]


def test_build_packages_come_from_setup_sh():
    setup = (REPO / "scripts" / "setup.sh").read_text()
    array = re.search(r"^PACKAGES=\((.*?)^\)", setup, re.M | re.S)
    assert array, "scripts/setup.sh has no PACKAGES=( ... ) list"
    setup_packages = set(array.group(1).split())
    build_packages = package_lines(DEPLOY / "build-packages.txt")
    assert set(build_packages) <= setup_packages, set(build_packages) - setup_packages


def test_onnxruntime_version_matches_the_nuget_project():
    csproj = (REPO / "third_party" / "onnxruntime" / "onnxruntime.csproj").read_text()
    version = re.search(r'Include="Microsoft\.ML\.OnnxRuntime" Version="([^"]+)"', csproj).group(1)
    text = DOCKERFILE.read_text()
    assert f"ARG ONNXRUNTIME_VERSION={version}\n" in text
    assert f"microsoft.ml.onnxruntime/{version}\n" in text


def dockerignore_excludes(path: str) -> bool:
    """Docker's rule, for the patterns used here: the last matching pattern decides."""
    excluded = False
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        parts = path.split("/")
        # A pattern matching a parent folder matches everything inside it.
        if any(fnmatch.fnmatchcase("/".join(parts[:i]), pattern) for i in range(1, len(parts) + 1)):
            excluded = not negate
    return excluded


def test_dockerignore_lets_the_build_inputs_through():
    sources = []
    for stage in stages():
        for word, rest in stage:
            if word == "COPY" and not rest.startswith("--from"):
                sources.extend(rest.split()[:-1])
    args = {k: v for word, rest in dockerfile_instructions() if word == "ARG" and "=" in rest
            for k, v in [rest.split("=", 1)]}
    paths = [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], s).rstrip("/") for s in sources]
    assert "src" in paths and "CMakeLists.txt" in paths
    ort = args["ONNXRUNTIME_ROOT"]
    for path in paths:
        if path == ort:  # only restored by setup.sh; its parts are checked below
            continue
        assert (REPO / path).exists(), path
        assert not dockerignore_excludes(path), f".dockerignore keeps {path} out of the context"
    # What ONNXRUNTIME_SOURCE=context copies (when setup.sh has restored it) gets through too,
    # and the rest of the NuGet package does not.
    assert not dockerignore_excludes(f"{ort}/build/native/include/onnxruntime_cxx_api.h")
    assert not dockerignore_excludes(f"{ort}/runtimes/linux-x64/native/libonnxruntime.so")
    assert dockerignore_excludes(f"{ort}/runtimes/win-x64/native/onnxruntime.dll")
    assert dockerignore_excludes("build/slipway")
    assert dockerignore_excludes("deploy/validate/node_modules/yaml/package.json")


# ---- Kubernetes and KServe manifests ----------------------------------------------------------

@pytest.fixture(scope="module")
def node_modules():
    need_tool("node")
    need_tool("npm")
    if not (VALIDATE / "node_modules" / ".package-lock.json").exists():
        result = run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=VALIDATE)
        assert result.returncode == 0, result.stdout + result.stderr
    return VALIDATE / "node_modules"


def validate(text: str) -> subprocess.CompletedProcess:
    return run(["node", "validate.mjs", "--name", "test", "-"], cwd=VALIDATE, input=text)


def render(overlay: Path) -> list[dict]:
    need_tool(KUBECTL)
    result = run([KUBECTL, "kustomize", overlay])
    assert result.returncode == 0, result.stderr
    to_json = ("import {parseAllDocuments} from 'yaml';"
               "import {readFileSync} from 'node:fs';"
               "const docs = parseAllDocuments(readFileSync(0, 'utf8'), {version: '1.1'});"
               "console.log(JSON.stringify(docs.map(d => d.toJS()).filter(Boolean)));")
    parsed = run(["node", "--input-type=module", "-e", to_json], cwd=VALIDATE, input=result.stdout)
    assert parsed.returncode == 0, parsed.stderr
    return json.loads(parsed.stdout)


def test_every_overlay_and_kserve_example_validates(node_modules):
    need_tool(KUBECTL)
    result = run([VALIDATE / "run.sh"], env={**os.environ, "KUBECTL": KUBECTL}, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    for overlay in OVERLAYS:
        assert f"k8s/overlays/{overlay.name}:" in result.stdout
    assert "InferenceService/breast-cancer" in result.stdout


def _containers(objects):
    return deployment(objects)["spec"]["template"]["spec"]["containers"]


def _port_as_string(objects):
    _containers(objects)[0]["ports"][0]["containerPort"] = "8000"


def _container_without_name(objects):
    del _containers(objects)[0]["name"]


def _misspelt_field(objects):
    c = _containers(objects)[0]
    c["readinesProbe"] = c.pop("readinessProbe")


def _hpa_aimed_at_nothing(objects):
    hpa = next(o for o in objects if o["kind"] == "HorizontalPodAutoscaler")
    hpa["spec"]["scaleTargetRef"]["name"] = "slipwai"


def _two_volume_sources(objects):
    spec = deployment(objects)["spec"]["template"]["spec"]
    next(v for v in spec["volumes"] if v["name"] == "models")["emptyDir"] = {}


BROKEN = {
    "containerPort given as a string": (_port_as_string, "containerPort: must be integer"),
    "a container without its required name": (_container_without_name,
                                               "must have required property name"),
    "a misspelt field": (_misspelt_field, 'unknown field "readinesProbe"'),
    "an HPA aimed at no Deployment": (_hpa_aimed_at_nothing, 'no Deployment "slipwai"'),
    "a volume with two sources": (_two_volume_sources, 'needs exactly one source, has 2'),
}


def as_yaml_stream(objects: list[dict]) -> str:
    return "\n---\n".join(json.dumps(o) for o in objects) + "\n"


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_validation_refuses_a_broken_manifest(node_modules, case):
    objects = render(DEPLOY / "k8s" / "overlays" / "dev")
    assert validate(as_yaml_stream(objects)).returncode == 0
    breaks, message = BROKEN[case]
    breaks(objects)
    result = validate(as_yaml_stream(objects))
    assert result.returncode == 1, result.stdout
    assert message in result.stderr, result.stderr


def test_validation_refuses_an_object_no_schema_knows(node_modules):
    result = validate("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
    assert result.returncode == 1
    assert 'no schema for apiVersion "example.com/v1", kind "Widget"' in result.stderr


def test_validation_refuses_a_broken_inference_service(node_modules):
    runtime = (DEPLOY / "kserve" / "servingruntime.yaml").read_text()
    isvc = (DEPLOY / "kserve" / "inferenceservice-canary.yaml").read_text()
    broken = isvc.replace("canaryTrafficPercent: 10", "canaryTrafficPercent: 110") \
                 .replace("storageUri:", "storageUrl:")
    result = validate(runtime + "\n---\n" + broken)
    assert result.returncode == 1
    assert "canaryTrafficPercent: must be <= 100" in result.stderr
    assert 'unknown field "storageUrl"' in result.stderr


def serve_flags() -> set[str]:
    result = run([need_binary(), "serve", "--help"])
    assert result.returncode == 0, result.stderr
    return set(re.findall(r"^\s+(?:-\w,)?(--[a-z0-9-]+)", result.stdout, re.M))


def deployment(objects: list[dict]) -> dict:
    return next(o for o in objects if o["kind"] == "Deployment")


def flag_value(args: list[str], flag: str, default: str | None = None) -> str | None:
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return default


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_overlay_flags_exist_and_shutdown_timing_adds_up(node_modules, overlay):
    flags = serve_flags()
    spec = deployment(render(overlay))["spec"]["template"]["spec"]
    container = next(c for c in spec["containers"] if c["name"] == "slipway")
    args = container["args"]
    for arg in args:
        assert arg.split("=")[0] in flags, f"{overlay.name}: slipway serve has no {arg}"
    prestop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert prestop[0] == "sleep"
    drain = int(flag_value(args, "--drain-timeout", "30"))
    assert spec["terminationGracePeriodSeconds"] > int(prestop[1]) + drain
    # Instances per replica follow the CPU limit (slipway's default counts the node's cores).
    assert flag_value(args, "--instance-count") == container["resources"]["limits"]["cpu"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"


def test_production_fills_the_repository_from_object_storage(node_modules):
    objects = render(DEPLOY / "k8s" / "overlays" / "production")
    assert not [o for o in objects if o["kind"] == "PersistentVolumeClaim"]
    spec = deployment(objects)["spec"]["template"]["spec"]
    models = next(v for v in spec["volumes"] if v["name"] == "models")
    assert list(models) == ["name", "emptyDir"] or set(models) == {"name", "emptyDir"}
    init = spec["initContainers"][0]
    assert init["command"][:3] == ["aws", "s3", "sync"]
    assert {"name": "models", "mountPath": "/models"} in init["volumeMounts"]


def test_kserve_runtime_and_dockerfile_use_existing_flags():
    flags = serve_flags()
    script = (DEPLOY / "kserve" / "servingruntime.yaml").read_text()
    serve = script[script.index("exec slipway serve"):]
    used = set(re.findall(r"(--[a-z0-9-]+)", serve))
    assert used and used <= flags, used - flags
    entrypoint = json.loads([rest for word, rest in stages()[-1] if word == "ENTRYPOINT"][-1])
    assert {a for a in entrypoint if a.startswith("--")} <= flags


def test_docs_mention_only_existing_slipway_flags():
    doc = (REPO / "docs" / "deploy.md").read_text()
    models = run([need_binary(), "models", "--help"]).stdout
    check = run([PYTHON, CHECK, "--help"]).stdout
    known = (serve_flags() | set(re.findall(r"^\s+(?:-\w,)?(--[a-z0-9-]+)", models, re.M))
             | set(re.findall(r"(--[a-z][a-z0-9-]+)", check)))
    # Flags of other tools the page shows (docker).
    known |= {"--build-arg", "--rm", "--init"}
    mentioned = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]+)", doc))
    assert mentioned <= known, f"docs/deploy.md mentions flags that do not exist: {mentioned - known}"


# ---- The KServe runtime's start script, run for real -------------------------------------------

def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(url: str) -> int:
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


@pytest.mark.parametrize("layout", ["bare model.onnx", "model folder"])
def test_kserve_runtime_script_serves_the_downloaded_model(node_modules, tmp_path, layout):
    """Runs the ServingRuntime's command as KServe would after filling in {{.Name}}, on a copy of
    what the storage initializer leaves in /mnt/models, with the paths and ports moved under
    tmp_path and to free ports."""
    import time
    to_json = ("import {parse} from 'yaml'; import {readFileSync} from 'node:fs';"
               "console.log(JSON.stringify(parse(readFileSync(0, 'utf8'))));")
    runtime = json.loads(run(["node", "--input-type=module", "-e", to_json], cwd=VALIDATE,
                             input=(DEPLOY / "kserve" / "servingruntime.yaml").read_text()).stdout)
    container = runtime["spec"]["containers"][0]
    assert container["command"] == ["/bin/sh", "-c"]
    script = container["args"][0]

    example = REPO / "examples" / "models" / "breast_cancer"
    mnt = tmp_path / "mnt" / "models"
    if layout == "bare model.onnx":
        mnt.mkdir(parents=True)
        shutil.copy(example / "1" / "model.onnx", mnt / "model.onnx")
        shutil.copy(example / "config.yaml", mnt / "config.yaml")
    else:
        shutil.copytree(example, mnt, ignore=shutil.ignore_patterns(".*"))
    http, grpc, metrics = free_port(), free_port(), free_port()
    for old, new in [("{{.Name}}", "breast-cancer"), ("/mnt/models", str(mnt)),
                     ("/tmp/repository", str(tmp_path / "repository")),
                     ("/tmp/deployments.db", str(tmp_path / "deployments.db")),
                     ("exec slipway ", f"exec {need_binary()} "),
                     ("--http-port 8080", f"--http-port {http}"),
                     ("--grpc-port 9000", f"--grpc-port {grpc}"),
                     ("--metrics-port 8002", f"--metrics-port {metrics}")]:
        assert old in script, f"the runtime's script no longer holds {old!r}: update this test"
        script = script.replace(old, new)

    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(["/bin/sh", "-c", script], stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{http}/v2/models/breast-cancer/ready"
        deadline = time.monotonic() + 60
        while http_status(url) != 200 and server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert http_status(url) == 200, (tmp_path / "server.log").read_text()
    finally:
        server.terminate()  # SIGTERM reaches slipway itself: the script ends with exec
        assert server.wait(timeout=40) == 0, (tmp_path / "server.log").read_text()
        log.close()
    assert "drained; exiting" in (tmp_path / "server.log").read_text()
