"""Helpers shared by Slipway's integration tests.

Process management for the server under test, the KServe v2 binary tensor
extension (encode/decode), numpy conversions for every datatype, loading of the
expected.json files written by scripts/make_models.py, and the generated gRPC
stubs.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO_ROOT / "tests" / "models"
PROTO_DIR = REPO_ROOT / "proto"
GENERATED_DIR = Path(__file__).resolve().parent / "generated"

BINARY = os.environ.get("SLIPWAY_BINARY", str(REPO_ROOT / "build" / "slipway"))
SANITIZED = os.environ.get("SLIPWAY_SANITIZED", "") == "1"
LSAN_SUPPRESSIONS = REPO_ROOT / "tests" / "lsan.supp"

# Start-up and shutdown allowances. These are upper bounds used to give up on a
# broken server, never asserted as performance numbers.
START_TIMEOUT_S = 60.0 if SANITIZED else 30.0
REQUEST_TIMEOUT_S = 120.0 if SANITIZED else 60.0

# Session server limit on HTTP bodies (small enough to test 413 cheaply).
HTTP_MAX_BODY_BYTES = 16 * 1024 * 1024

SANITIZER_PATTERNS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
)

# --------------------------------------------------------------------------------------
# Datatypes
# --------------------------------------------------------------------------------------

NUMPY_DTYPES = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    # BF16 is carried as its raw 16 bits; see to_bf16_bits / from_bf16_bits.
    "BF16": np.dtype("<u2"),
    "BYTES": np.dtype(object),
}
FLOAT_TYPES = {"FP16", "FP32", "FP64", "BF16"}
JSON_UNSUPPORTED = {"FP16", "BF16"}

# gRPC InferTensorContents field per datatype (None: raw only).
TYPED_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
    "FP16": None,
    "BF16": None,
}


def to_bf16_bits(values) -> np.ndarray:
    """float values -> BF16 bit patterns (high half of the float32, as tritonclient)."""
    f = np.asarray(values, dtype="<f4")
    return (f.view("<u4") >> 16).astype("<u2")


def from_bf16_bits(bits: np.ndarray) -> np.ndarray:
    return (np.asarray(bits, dtype="<u2").astype("<u4") << 16).view("<f4")


def _as_bytes(v) -> bytes:
    if isinstance(v, bytes):
        return v
    return str(v).encode("utf-8")


def to_numpy(datatype: str, data, shape) -> np.ndarray:
    """Flat python data (as in expected.json) -> numpy array of the wire type."""
    if datatype == "BYTES":
        arr = np.empty(len(data), dtype=object)
        for i, v in enumerate(data):
            arr[i] = _as_bytes(v)
    elif datatype == "BF16":
        arr = to_bf16_bits(data)
    else:
        arr = np.array(data, dtype=NUMPY_DTYPES[datatype])
    return arr.reshape(shape)


def encode_tensor(datatype: str, arr: np.ndarray) -> bytes:
    """numpy array (wire type) -> binary tensor encoding (LE, row-major)."""
    if datatype == "BYTES":
        out = bytearray()
        for v in arr.reshape(-1):
            b = _as_bytes(v)
            out += struct.pack("<I", len(b))
            out += b
        return bytes(out)
    return np.ascontiguousarray(arr, dtype=NUMPY_DTYPES[datatype]).tobytes()


def decode_tensor(datatype: str, raw: bytes, shape) -> np.ndarray:
    if datatype == "BYTES":
        items = []
        off = 0
        while off < len(raw):
            assert off + 4 <= len(raw), "truncated BYTES length prefix"
            (n,) = struct.unpack_from("<I", raw, off)
            off += 4
            assert off + n <= len(raw), "truncated BYTES element"
            items.append(bytes(raw[off:off + n]))
            off += n
        arr = np.empty(len(items), dtype=object)
        arr[:] = items
        return arr.reshape(shape)
    arr = np.frombuffer(raw, dtype=NUMPY_DTYPES[datatype])
    return arr.reshape(shape)


def json_data(datatype: str, arr: np.ndarray) -> list:
    """numpy array (wire type) -> flat JSON-able list."""
    flat = arr.reshape(-1)
    if datatype == "BYTES":
        return [_as_bytes(v).decode("utf-8") for v in flat]
    return flat.tolist()


def from_json_data(datatype: str, data, shape) -> np.ndarray:
    """Flat JSON data from a response -> numpy array (wire type)."""
    if datatype == "BYTES":
        assert all(isinstance(v, str) for v in data), data
        return to_numpy("BYTES", [v.encode("utf-8") for v in data], shape)
    if datatype == "BOOL":
        assert all(isinstance(v, bool) for v in data), f"BOOL data must be JSON booleans: {data[:10]}"
    elif datatype.startswith(("INT", "UINT")):
        assert all(isinstance(v, int) and not isinstance(v, bool) for v in data), (
            f"{datatype} data must be JSON integers: {data[:10]}")
    return to_numpy(datatype, data, shape)


def assert_matches_expected(datatype: str, actual: np.ndarray, expected_flat, shape, what=""):
    """Compare a server answer with PyTorch's expected output."""
    expected = to_numpy(datatype, expected_flat, shape)
    assert list(actual.shape) == list(shape), f"{what}: shape {list(actual.shape)} != {list(shape)}"
    if datatype == "BYTES":
        assert [bytes(v) for v in actual.reshape(-1)] == [bytes(v) for v in expected.reshape(-1)], what
    elif datatype == "BF16":
        np.testing.assert_allclose(from_bf16_bits(actual), from_bf16_bits(expected),
                                   rtol=1e-2, atol=1e-5, err_msg=what)
    elif datatype in FLOAT_TYPES:
        np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64),
                                   rtol=1e-4, atol=1e-5, err_msg=what)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=what)


# --------------------------------------------------------------------------------------
# expected.json cases
# --------------------------------------------------------------------------------------

# Models in tests/models that must not load; they have no usable expected answers.
FAILING_MODELS = {"broken", "bad_config"}


def expected_cases():
    """[(model, version, expected_dict)] for every loadable model with expected.json."""
    cases = []
    for path in sorted(MODELS_DIR.glob("*/*/expected.json")):
        model = path.parent.parent.name
        version = path.parent.name
        if model in FAILING_MODELS:
            continue
        with open(path) as f:
            cases.append((model, version, json.load(f)))
    return cases


def load_expected(model: str, version: str = "1") -> dict:
    with open(MODELS_DIR / model / version / "expected.json") as f:
        return json.load(f)


def expected_inputs(exp: dict):
    """[(name, datatype, np.ndarray)] for the inputs of an expected.json dict."""
    return [(n, t["datatype"], to_numpy(t["datatype"], t["data"], t["shape"]))
            for n, t in exp["inputs"].items()]


# --------------------------------------------------------------------------------------
# Binary tensor extension (HTTP)
# --------------------------------------------------------------------------------------

def build_binary_request(inputs, outputs=None, parameters=None, request_id=None,
                         binary_inputs=None):
    """inputs: [(name, datatype, np.ndarray)]. Returns (body, json_length).

    binary_inputs: set of input names to send as binary (default: all).
    """
    header = {"inputs": []}
    if request_id is not None:
        header["id"] = request_id
    if parameters:
        header["parameters"] = parameters
    if outputs is not None:
        header["outputs"] = outputs
    blobs = []
    for name, datatype, arr in inputs:
        entry = {"name": name, "datatype": datatype, "shape": list(arr.shape)}
        if binary_inputs is None or name in binary_inputs:
            blob = encode_tensor(datatype, arr)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = json_data(datatype, arr)
        header["inputs"].append(entry)
    head = json.dumps(header).encode("utf-8")
    return head + b"".join(blobs), len(head)


def parse_binary_response(resp: requests.Response):
    """-> (header_dict, {output_name: np.ndarray}) for JSON or binary responses."""
    body = resp.content
    hlen = resp.headers.get("Inference-Header-Content-Length")
    if hlen is None:
        header = json.loads(body)
        rest = b""
    else:
        n = int(hlen)
        assert 0 < n <= len(body), f"Inference-Header-Content-Length {n} vs body {len(body)}"
        header = json.loads(body[:n])
        rest = body[n:]
    arrays = {}
    off = 0
    for out in header["outputs"]:
        params = out.get("parameters") or {}
        if "binary_data_size" in params:
            size = params["binary_data_size"]
            assert off + size <= len(rest), "binary blob runs past the end of the body"
            arrays[out["name"]] = decode_tensor(out["datatype"], rest[off:off + size], out["shape"])
            off += size
        else:
            assert "data" in out, f"output {out['name']} has neither data nor binary_data_size"
            arrays[out["name"]] = from_json_data(out["datatype"], out["data"], out["shape"])
    assert off == len(rest), f"{len(rest) - off} unclaimed bytes after the binary outputs"
    return header, arrays


# --------------------------------------------------------------------------------------
# Server process
# --------------------------------------------------------------------------------------

def wait_for(predicate, timeout=60.0, what="condition"):
    """Polls predicate every 0.1 s until it returns something true, and returns that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sanitizer_env() -> dict:
    env = dict(os.environ)
    if SANITIZED:
        supp = f"suppressions={LSAN_SUPPRESSIONS}"
        lsan = env.get("LSAN_OPTIONS", "")
        if "suppressions=" not in lsan:
            env["LSAN_OPTIONS"] = f"{lsan}:{supp}" if lsan else supp
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        asan = env.get("ASAN_OPTIONS", "")
        if "detect_leaks" not in asan:
            asan = f"{asan}:detect_leaks=1" if asan else "detect_leaks=1"
        env["ASAN_OPTIONS"] = asan
    return env


class ServerProcess:
    """A `slipway serve` child process with stdout+stderr captured to a file."""

    def __init__(self, model_repository, extra_args=(), log_dir=None, name="slipway",
                 http_port=None, grpc_port=None):
        self.model_repository = str(model_repository)
        # Three distinct ports: free_port() may hand out the same free port twice.
        self.http_port = http_port or free_port()
        self.grpc_port = grpc_port or free_port()
        while grpc_port is None and self.grpc_port == self.http_port:
            self.grpc_port = free_port()
        self.metrics_port = free_port()
        while self.metrics_port in (self.http_port, self.grpc_port):
            self.metrics_port = free_port()
        self.extra_args = list(extra_args)
        log_dir = Path(log_dir or tempfile.mkdtemp(prefix="slipway-it-"))
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}-{self.http_port}.log"
        self.proc = None
        self._log_file = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def args(self):
        return [BINARY, "serve", "--model-repository", self.model_repository,
                "--http-port", str(self.http_port), "--grpc-port", str(self.grpc_port),
                "--metrics-port", str(self.metrics_port), *self.extra_args]

    def start(self):
        if not Path(BINARY).exists():
            raise RuntimeError(f"server binary {BINARY} does not exist (build it or set SLIPWAY_BINARY)")
        self._log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args(), stdout=self._log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=sanitizer_env(), cwd=REPO_ROOT)
        return self

    def wait_live(self, timeout=START_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode} during start-up:\n{self.log()}")
            try:
                r = requests.get(self.http_url + "/v2/health/live", timeout=2)
                if r.status_code == 200:
                    return self
                last = f"HTTP {r.status_code}"
            except requests.RequestException as e:  # not listening yet
                last = repr(e)
            time.sleep(0.1)
        raise RuntimeError(f"server not live after {timeout}s ({last}):\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def terminate(self, sig=signal.SIGTERM, timeout=60.0) -> int:
        """Send `sig` and wait for the exit code (kills and fails after `timeout`)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"server did not exit within {timeout}s of signal {sig}:\n{self.log()[-4000:]}")
        finally:
            if self._log_file:
                self._log_file.close()
        return rc

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self._log_file:
            self._log_file.close()

    def sanitizer_findings(self):
        return [line for line in self.log().splitlines()
                if any(p in line for p in SANITIZER_PATTERNS)]

    def assert_no_sanitizer_findings(self):
        if not SANITIZED:
            return
        bad = self.sanitizer_findings()
        assert not bad, "sanitizer reports in server log:\n" + "\n".join(bad) + "\n\n" + self.log()[-8000:]


def start_live(model_repository, **kwargs) -> "ServerProcess":
    """Starts a server (ServerProcess arguments) and waits until it is live; kills it on failure."""
    srv = ServerProcess(model_repository, **kwargs)
    srv.start()
    try:
        srv.wait_live()
    except Exception:
        srv.kill()
        raise
    return srv


def stop_ok(srv, timeout=90.0):
    """SIGTERM; the server must drain and exit 0 with no sanitizer findings in its log."""
    rc = srv.terminate(timeout=timeout)
    assert rc == 0, f"exit code {rc} after SIGTERM:\n{srv.log()[-4000:]}"
    srv.assert_no_sanitizer_findings()


def make_repository(tmp_path: Path, models) -> Path:
    """A model repository holding symlinks to some of tests/models."""
    repo = tmp_path / "repo"
    repo.mkdir(parents=True, exist_ok=True)
    for m in models:
        (repo / m).symlink_to(MODELS_DIR / m, target_is_directory=True)
    return repo


# --------------------------------------------------------------------------------------
# gRPC stubs
# --------------------------------------------------------------------------------------

_stubs = None


def grpc_modules():
    """Generate (once per process) and import the Python gRPC modules for proto/*.proto."""
    global _stubs
    if _stubs is not None:
        return _stubs
    GENERATED_DIR.mkdir(parents=True, exist_ok=True)
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.glob("*.proto"))
    cmd = ["protoc", f"-I{PROTO_DIR}", f"--python_out={GENERATED_DIR}", f"--grpc_out={GENERATED_DIR}",
           "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin", *protos]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=PROTO_DIR)
    if res.returncode != 0:
        raise RuntimeError(f"protoc failed ({' '.join(cmd)}):\n{res.stderr}")
    # The generated modules import each other by bare name (import model_config_pb2).
    if str(GENERATED_DIR) not in sys.path:
        sys.path.insert(0, str(GENERATED_DIR))
    import grpc_service_pb2  # noqa: E402
    import grpc_service_pb2_grpc  # noqa: E402
    import health_pb2  # noqa: E402
    import health_pb2_grpc  # noqa: E402
    import model_config_pb2  # noqa: E402

    class Stubs:
        pb = grpc_service_pb2
        pb_grpc = grpc_service_pb2_grpc
        health = health_pb2
        health_grpc = health_pb2_grpc
        mc = model_config_pb2

    _stubs = Stubs
    return _stubs


GRPC_CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 2**31 - 1),
    ("grpc.max_receive_message_length", 2**31 - 1),
]


# --------------------------------------------------------------------------------------
# Error responses
# --------------------------------------------------------------------------------------

def error_message(resp: requests.Response) -> str:
    """The {"error": "..."} message of an error response (asserts the shape)."""
    ctype = resp.headers.get("Content-Type", "")
    assert "json" in ctype, f"error response Content-Type {ctype!r}, body {resp.content[:200]!r}"
    body = resp.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], (
        f"error body must be {{\"error\": \"...\"}}, got {body!r}")
    return body["error"]


def mentions(message: str, *patterns: str) -> bool:
    return all(re.search(p, message, re.IGNORECASE) for p in patterns)
