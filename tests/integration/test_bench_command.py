"""`slipway bench` (the built-in KServe v2 load generator) against the session server.

Every run uses short windows; the tests check exit codes, messages and the JSON/CSV reports'
structure and counts, never wall-clock timings.
"""

from __future__ import annotations

import csv
import json
import subprocess

import pytest

import slipway_testlib as lib

SHORT = ["--window-ms", "300", "--max-windows", "4", "--warmup-seconds", "0.2"]
RUN_TIMEOUT_S = 180


def _bench(args, timeout=RUN_TIMEOUT_S):
    return subprocess.run([lib.BINARY, "bench", *args], capture_output=True, text=True,
                          timeout=timeout, env=lib.sanitizer_env(), cwd=lib.REPO_ROOT)


def _urls(server):
    return ["--url", f"127.0.0.1:{server.http_port}", "--grpc-url", server.grpc_target]


def _report(path):
    with open(path) as f:
        return json.load(f)


def _assert_clean_point(point, batch_size=1):
    assert point["requests"] > 0, point
    assert point["throughput_infer_per_s"] > 0, point
    assert point["errors"] == 0, point
    assert point["errors_by_kind"] == {}, point
    lat = point["latency_us"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99_9"] <= lat["max"], lat
    assert 1 <= point["windows"] <= 4, point
    assert len(point["window_throughputs"]) == point["windows"]
    assert isinstance(point["stable"], bool)
    # The session server advertises the statistics extension.
    assert point["server"] is not None, point
    assert point["server"]["queue_us"] >= 0
    assert point["server"]["compute_us"] > 0
    # infer/s counts batch items.
    assert point["throughput_infer_per_s"] == pytest.approx(point["requests_per_s"] * batch_size)


@pytest.mark.parametrize("protocol", ["http-json", "http-binary", "grpc"])
def test_closed_loop_sweep(server, tmp_path, protocol):
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    r = _bench([*_urls(server), "--model", "add_sub", "--protocol", protocol,
                "--concurrency-range", "1:2", *SHORT, "--json", str(out_json), "--csv", str(out_csv)])
    assert r.returncode == 0, r.stderr
    assert "concurrency 1: window 1" in r.stderr  # progress lines
    assert "concurrency 2" in r.stdout  # the table
    rep = _report(out_json)
    assert rep["protocol"] == protocol
    assert rep["mode"] == "closed_loop"
    assert rep["server_statistics"] is True
    assert [i["name"] for i in rep["inputs"]] == ["INPUT0", "INPUT1"]
    assert all(i["shape"] == [1, 16] and i["datatype"] == "FP32" for i in rep["inputs"])
    assert [p["concurrency"] for p in rep["points"]] == [1, 2]
    for p in rep["points"]:
        _assert_clean_point(p)
    with open(out_csv) as f:
        rows = list(csv.DictReader(f))
    assert [int(row["concurrency"]) for row in rows] == [1, 2]
    assert all(int(row["requests"]) > 0 and int(row["errors"]) == 0 for row in rows)
    assert all(float(row["server_compute_us"]) > 0 for row in rows)


@pytest.mark.parametrize("protocol", ["http-binary", "grpc"])
def test_open_loop_poisson_rate(server, tmp_path, protocol):
    out_json = tmp_path / "r.json"
    r = _bench([*_urls(server), "--model", "add_sub", "--protocol", protocol,
                "--request-rate", "200", "--max-threads", "8", *SHORT, "--json", str(out_json),
                "--quiet"])
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # --quiet
    rep = _report(out_json)
    assert rep["mode"] == "open_loop"
    [p] = rep["points"]
    assert p["request_rate"] == 200
    assert p["concurrency"] == 8  # the worker pool
    _assert_clean_point(p)


@pytest.mark.parametrize("protocol", ["http-json", "http-binary", "grpc"])
def test_bytes_model_with_shape(server, tmp_path, protocol):
    out_json = tmp_path / "r.json"
    r = _bench([*_urls(server), "--model", "identity_bytes", "--protocol", protocol,
                "--batch-size", "2", "--shape", "INPUT0:3", *SHORT, "--json", str(out_json),
                "--quiet"])
    assert r.returncode == 0, r.stderr
    rep = _report(out_json)
    assert rep["inputs"] == [{"name": "INPUT0", "datatype": "BYTES", "shape": [2, 3]}]
    [p] = rep["points"]
    _assert_clean_point(p, batch_size=2)


def test_variable_shape_without_shape_flag_is_a_usage_error(server):
    r = _bench([*_urls(server), "--model", "identity_bytes", *SHORT])
    assert r.returncode == 2, r.stderr
    assert "--shape INPUT0:" in r.stderr


def test_fp16_over_binary_and_not_over_json(server):
    r = _bench([*_urls(server), "--model", "identity_fp16", "--protocol", "http-binary",
                "--shape", "INPUT0:4", "--input-data", "zero", *SHORT, "--quiet"])
    assert r.returncode == 0, r.stderr
    r = _bench([*_urls(server), "--model", "identity_fp16", "--protocol", "http-json",
                "--shape", "INPUT0:4", *SHORT])
    assert r.returncode == 2
    assert "FP16" in r.stderr and "http-binary" in r.stderr


def test_input_data_file(server, tmp_path):
    data = tmp_path / "inputs.json"
    data.write_text(json.dumps({"inputs": {
        "INPUT0": {"data": list(range(32)), "shape": [2, 16]},
        "INPUT1": {"data": [0.5] * 32, "shape": [2, 16]}}}))
    out_json = tmp_path / "r.json"
    r = _bench([*_urls(server), "--model", "add_sub", "--protocol", "grpc", "--input-data",
                str(data), *SHORT, "--json", str(out_json), "--quiet"])
    assert r.returncode == 0, r.stderr
    rep = _report(out_json)
    assert [i["shape"] for i in rep["inputs"]] == [[2, 16], [2, 16]]
    _assert_clean_point(rep["points"][0])

    data.write_text(json.dumps({"inputs": {"INPUT0": {"data": [1, 2, 3]}}}))
    r = _bench([*_urls(server), "--model", "add_sub", "--input-data", str(data), *SHORT])
    assert r.returncode == 2
    assert "INPUT0" in r.stderr


def test_error_responses_are_counted_and_exit_1(server, tmp_path):
    # ~25 MB of BYTES is over the session server's 16 MiB body limit: every request fails.
    out_json = tmp_path / "r.json"
    r = _bench([*_urls(server), "--model", "identity_bytes", "--protocol", "http-binary",
                "--shape", "INPUT0:3000000", "--window-ms", "200", "--max-windows", "3",
                "--warmup-seconds", "0", "--json", str(out_json), "--quiet"])
    assert r.returncode == 1, r.stderr
    assert "errors; first:" in r.stderr
    [p] = _report(out_json)["points"]
    assert p["errors"] > 0
    assert sum(p["errors_by_kind"].values()) == p["errors"]
    assert p["requests"] == 0


def test_unknown_model(server):
    r = _bench([*_urls(server), "--model", "no_such_model", *SHORT])
    assert r.returncode == 2
    assert "no_such_model" in r.stderr and "not available" in r.stderr


def test_no_server_on_port():
    port = lib.free_port()
    r = _bench(["--url", f"127.0.0.1:{port}", "--model", "add_sub", *SHORT])
    assert r.returncode == 2
    assert "cannot reach" in r.stderr and str(port) in r.stderr


def test_no_grpc_server_on_port(server):
    port = lib.free_port()
    r = _bench(["--url", f"127.0.0.1:{server.http_port}", "--grpc-url", f"127.0.0.1:{port}",
                "--model", "add_sub", "--protocol", "grpc", *SHORT])
    assert r.returncode == 2
    assert "cannot reach the gRPC server" in r.stderr


@pytest.mark.parametrize("args", [
    ["--model", "add_sub"],                                    # --url missing
    ["--url", "127.0.0.1", "--model", "add_sub"],              # no port
    ["--url", "127.0.0.1:8000", "--model", "add_sub", "--protocol", "smtp"],
    ["--url", "127.0.0.1:8000", "--model", "add_sub", "--concurrency-range", "4:1"],
    ["--url", "127.0.0.1:8000", "--model", "add_sub", "--shape", "INPUT0"],
    ["--url", "127.0.0.1:8000", "--model", "add_sub", "--no-such-flag"],
])
def test_bad_arguments_exit_2(args):
    r = _bench(args)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.strip() != ""
