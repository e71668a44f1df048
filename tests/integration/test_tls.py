"""TLS on the HTTP and gRPC ports: HTTPS and gRPC over TLS, client certificates (mTLS), and a
certificate reload on SIGHUP. Certificates are made with the `openssl` command line per module."""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import grpc
import pytest
import requests

import slipway_testlib as lib

MODEL = "identity_fp32"
EXPECTED = lib.load_expected(MODEL)
T = lib.REQUEST_TIMEOUT_S


# ----------------------------------------------------------------------------- certificates

def openssl(*args, cwd):
    res = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    assert res.returncode == 0, f"openssl {' '.join(args)} failed:\n{res.stderr}"


def make_ca(d: Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN=Slipway test {name}",
            cwd=d)


def make_leaf(d: Path, name: str, ca: str, server: bool) -> None:
    """name.pem / name.key signed by ca; a server certificate names 127.0.0.1 and localhost."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    ext = d / f"{name}.ext"
    ext.write_text("basicConstraints=CA:FALSE\n" + (
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n" if server
        else "extendedKeyUsage=clientAuth\n"))
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", ext.name, cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """ca signs server and client; ca2, unrelated, signs server2 (the reload's new certificate)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command line is not installed")
    d = tmp_path_factory.mktemp("pki")
    make_ca(d, "ca")
    make_ca(d, "ca2")
    make_leaf(d, "server", "ca", server=True)
    make_leaf(d, "client", "ca", server=False)
    make_leaf(d, "server2", "ca2", server=True)
    return d


def der(pem_path: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem_path.read_text())


# ----------------------------------------------------------------------------- servers

def tls_args(cert, key, client_ca=None):
    args = ["--tls-cert", str(cert), "--tls-key", str(key), "--state-db", ":memory:"]
    if client_ca is not None:
        args += ["--tls-client-ca", str(client_ca)]
    return args


def https(srv, path="/v2/health/live"):
    return f"https://127.0.0.1:{srv.http_port}{path}"


def start_tls(tmp_path, extra_args, ca, client=None):
    """A server on a repository holding MODEL, live over HTTPS (trusting `ca`)."""
    repo = lib.make_repository(tmp_path, [MODEL])
    srv = lib.ServerProcess(repo, extra_args=extra_args, log_dir=tmp_path / "logs")
    srv.start()
    deadline = time.monotonic() + lib.START_TIMEOUT_S
    last = None
    while time.monotonic() < deadline:
        if srv.proc.poll() is not None:
            raise RuntimeError(f"server exited with {srv.proc.returncode} during start-up:\n{srv.log()}")
        try:
            r = requests.get(https(srv), verify=str(ca), cert=client, timeout=2)
            if r.status_code == 200:
                return srv
            last = f"HTTP {r.status_code}"
        except requests.RequestException as e:
            last = repr(e)
        time.sleep(0.1)
    srv.kill()
    raise RuntimeError(f"server not live over HTTPS after {lib.START_TIMEOUT_S}s ({last}):\n{srv.log()}")


def infer_body():
    t = EXPECTED["inputs"]["INPUT0"]
    return {"inputs": [{"name": "INPUT0", "datatype": t["datatype"], "shape": t["shape"], "data": t["data"]}]}


def check_infer(resp):
    assert resp.status_code == 200, resp.text
    out = resp.json()["outputs"][0]
    e = EXPECTED["outputs"]["OUTPUT0"]
    lib.assert_matches_expected(out["datatype"], lib.from_json_data(out["datatype"], out["data"], out["shape"]),
                                e["data"], e["shape"], what="OUTPUT0")


def grpc_stub(srv, ca: Path, client=None):
    key, chain = (None, None) if client is None else (Path(client[1]).read_bytes(), Path(client[0]).read_bytes())
    creds = grpc.ssl_channel_credentials(root_certificates=ca.read_bytes(), private_key=key,
                                         certificate_chain=chain)
    ch = grpc.secure_channel(srv.grpc_target, creds, options=lib.GRPC_CHANNEL_OPTIONS)
    return ch, lib.grpc_modules().pb_grpc.GRPCInferenceServiceStub(ch)


def grpc_infer(stub):
    pb = lib.grpc_modules().pb
    t = EXPECTED["inputs"]["INPUT0"]
    req = pb.ModelInferRequest(model_name=MODEL)
    req.inputs.add(name="INPUT0", datatype=t["datatype"], shape=t["shape"])
    req.raw_input_contents.append(lib.encode_tensor(t["datatype"], lib.to_numpy(t["datatype"], t["data"], t["shape"])))
    resp = stub.ModelInfer(req, timeout=T)
    out = resp.outputs[0]
    got = lib.decode_tensor(out.datatype, resp.raw_output_contents[0], list(out.shape))
    e = EXPECTED["outputs"]["OUTPUT0"]
    lib.assert_matches_expected(out.datatype, got, e["data"], e["shape"], what="OUTPUT0")


def peer_certificate(port: int, alpn=None) -> bytes:
    """The DER certificate a new TLS connection to `port` is shown (not verified)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return s.getpeercert(binary_form=True)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (OSError, ssl.SSLError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# ----------------------------------------------------------------------------- TLS

@pytest.fixture(scope="module")
def tls_server(pki, tmp_path_factory):
    srv = start_tls(tmp_path_factory.mktemp("tls"), tls_args(pki / "server.pem", pki / "server.key"), pki / "ca.pem")
    yield srv
    lib.stop_ok(srv)


def test_https_inference_with_the_ca(tls_server, pki):
    ca = str(pki / "ca.pem")  # per request: REQUESTS_CA_BUNDLE would override Session.verify
    with requests.Session() as s:
        for _ in range(3):  # keep-alive over one TLS connection
            check_infer(s.post(https(tls_server, f"/v2/models/{MODEL}/infer"), json=infer_body(),
                               verify=ca, timeout=T))
        assert s.get(https(tls_server, "/v2/health/ready"), verify=ca, timeout=T).json() == {"ready": True}


def test_https_refused_by_a_client_trusting_another_ca(tls_server, pki):
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(https(tls_server), verify=str(pki / "ca2.pem"), timeout=T)


def test_plain_http_to_the_tls_port_fails(tls_server):
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{tls_server.http_port}/v2/health/live", timeout=T)
    # ... and the server goes on serving TLS clients.
    assert peer_certificate(tls_server.http_port)


def tls_version_handshake(port, version, alpn=None):
    """Handshakes offering only `version` (weak settings allowed, so the client does offer it)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = ctx.maximum_version = version
    if alpn:
        ctx.set_alpn_protocols(alpn)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return s.version()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls_1_2_is_the_minimum(tls_server):
    for port, alpn in ((tls_server.http_port, None), (tls_server.grpc_port, ["h2"])):
        assert tls_version_handshake(port, ssl.TLSVersion.TLSv1_2, alpn) == "TLSv1.2"
        with pytest.raises((ssl.SSLError, OSError)) as ei:
            tls_version_handshake(port, ssl.TLSVersion.TLSv1_1, alpn)
        assert "NO_PROTOCOLS_AVAILABLE" not in str(ei.value), "this client cannot offer TLS 1.1"
    # The HTTP port says why.
    with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"):
        tls_version_handshake(tls_server.http_port, ssl.TLSVersion.TLSv1_1)


def test_metrics_port_stays_plain_http(tls_server):
    r = requests.get(f"http://127.0.0.1:{tls_server.metrics_port}/metrics", timeout=T)
    assert r.status_code == 200
    assert "nv_inference_request_success" in r.text


def test_grpc_over_tls_with_the_ca(tls_server, pki):
    ch, stub = grpc_stub(tls_server, pki / "ca.pem")
    with ch:
        pb = lib.grpc_modules().pb
        assert stub.ServerLive(pb.ServerLiveRequest(), timeout=T).live
        assert stub.ModelReady(pb.ModelReadyRequest(name=MODEL), timeout=T).ready
        grpc_infer(stub)


def test_grpc_refused_by_a_client_trusting_another_ca(tls_server, pki):
    ch, stub = grpc_stub(tls_server, pki / "ca2.pem")
    with ch:
        with pytest.raises(grpc.RpcError) as ei:
            stub.ServerLive(lib.grpc_modules().pb.ServerLiveRequest(), timeout=10)
        assert ei.value.code() == grpc.StatusCode.UNAVAILABLE, ei.value


def test_insecure_grpc_to_the_tls_port_fails(tls_server):
    with grpc.insecure_channel(tls_server.grpc_target) as ch:
        stub = lib.grpc_modules().pb_grpc.GRPCInferenceServiceStub(ch)
        with pytest.raises(grpc.RpcError) as ei:
            stub.ServerLive(lib.grpc_modules().pb.ServerLiveRequest(), timeout=10)
        assert ei.value.code() == grpc.StatusCode.UNAVAILABLE, ei.value


# ----------------------------------------------------------------------------- mTLS

@pytest.fixture(scope="module")
def mtls_server(pki, tmp_path_factory):
    client = (str(pki / "client.pem"), str(pki / "client.key"))
    srv = start_tls(tmp_path_factory.mktemp("mtls"),
                    tls_args(pki / "server.pem", pki / "server.key", client_ca=pki / "ca.pem"),
                    pki / "ca.pem", client=client)
    yield srv
    lib.stop_ok(srv)


def test_mtls_http_without_a_client_certificate_is_refused(mtls_server, pki):
    # TLS 1.3 reports the missing certificate after the handshake: either way the request fails.
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(https(mtls_server), verify=str(pki / "ca.pem"), timeout=T)


def test_mtls_http_with_a_certificate_from_another_ca_is_refused(mtls_server, pki):
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(https(mtls_server), verify=str(pki / "ca.pem"),
                     cert=(str(pki / "server2.pem"), str(pki / "server2.key")), timeout=T)


def test_mtls_http_with_the_client_certificate(mtls_server, pki):
    r = requests.post(https(mtls_server, f"/v2/models/{MODEL}/infer"), json=infer_body(),
                      verify=str(pki / "ca.pem"), cert=(str(pki / "client.pem"), str(pki / "client.key")),
                      timeout=T)
    check_infer(r)


def test_mtls_grpc_without_a_client_certificate_is_refused(mtls_server, pki):
    ch, stub = grpc_stub(mtls_server, pki / "ca.pem")
    with ch:
        with pytest.raises(grpc.RpcError) as ei:
            stub.ServerLive(lib.grpc_modules().pb.ServerLiveRequest(), timeout=10)
        assert ei.value.code() == grpc.StatusCode.UNAVAILABLE, ei.value


def test_mtls_grpc_with_the_client_certificate(mtls_server, pki):
    ch, stub = grpc_stub(mtls_server, pki / "ca.pem", client=(pki / "client.pem", pki / "client.key"))
    with ch:
        assert stub.ServerLive(lib.grpc_modules().pb.ServerLiveRequest(), timeout=T).live
        grpc_infer(stub)


# ----------------------------------------------------------------------------- reload

def replace_file(src: Path, dst: Path):
    """Swaps dst for a copy of src in one rename, as a certificate manager would."""
    tmp = dst.with_name(dst.name + ".new")
    shutil.copyfile(src, tmp)
    tmp.replace(dst)


def test_sighup_reloads_the_certificate_and_keeps_serving(pki, tmp_path):
    live = tmp_path / "live"
    live.mkdir()
    shutil.copyfile(pki / "server.pem", live / "cert.pem")
    shutil.copyfile(pki / "server.key", live / "key.pem")
    srv = start_tls(tmp_path, tls_args(live / "cert.pem", live / "key.pem"), pki / "ca.pem")
    try:
        old, new = der(pki / "server.pem"), der(pki / "server2.pem")
        assert peer_certificate(srv.http_port) == old
        assert peer_certificate(srv.grpc_port, alpn=["h2"]) == old
        # A connection opened before the reload.
        kept = requests.Session()
        check_infer(kept.post(https(srv, f"/v2/models/{MODEL}/infer"), json=infer_body(),
                              verify=str(pki / "ca.pem"), timeout=T))

        replace_file(pki / "server2.key", live / "key.pem")
        replace_file(pki / "server2.pem", live / "cert.pem")
        time.sleep(0.5)
        assert peer_certificate(srv.http_port) == old, "HTTP must not change its certificate before SIGHUP"
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: peer_certificate(srv.http_port) == new, 10, "HTTP to show the new certificate")
        assert "reloaded TLS certificate" in srv.log()

        # New clients trust the new CA; the old connection goes on as it was.
        check_infer(requests.post(https(srv, f"/v2/models/{MODEL}/infer"), json=infer_body(),
                                  verify=str(pki / "ca2.pem"), timeout=T))
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(https(srv), verify=str(pki / "ca.pem"), timeout=T)
        check_infer(kept.post(https(srv, f"/v2/models/{MODEL}/infer"), json=infer_body(),
                              verify=str(pki / "ca.pem"), timeout=T))
        kept.close()

        # gRPC rereads the files by itself (every 10 s).
        wait_for(lambda: peer_certificate(srv.grpc_port, alpn=["h2"]) == new, 30,
                 "gRPC to show the new certificate")
        ch, stub = grpc_stub(srv, pki / "ca2.pem")
        with ch:
            grpc_infer(stub)

        # A reload that fails (a key that does not match) keeps the current certificate.
        replace_file(pki / "server.key", live / "key.pem")
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "not reloaded" in srv.log(), 10, "the failed reload to be logged")
        assert "does not match" in srv.log()
        assert peer_certificate(srv.http_port) == new
        check_infer(requests.post(https(srv, f"/v2/models/{MODEL}/infer"), json=infer_body(),
                                  verify=str(pki / "ca2.pem"), timeout=T))
    finally:
        try:
            lib.stop_ok(srv)
        finally:
            srv.kill()


def test_sighup_without_tls_is_ignored(tmp_path):
    srv = lib.start_live(lib.make_repository(tmp_path, [MODEL]), log_dir=tmp_path / "logs",
                         extra_args=["--state-db", ":memory:"])
    try:
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "TLS is off" in srv.log(), 10, "SIGHUP to be logged")
        assert requests.get(srv.http_url + "/v2/health/live", timeout=T).status_code == 200
    finally:
        try:
            lib.stop_ok(srv)
        finally:
            srv.kill()


# ----------------------------------------------------------------------------- start-up errors

def start_fails(tmp_path, extra_args):
    """Runs a server that must refuse to start; returns its log."""
    srv = lib.ServerProcess(lib.make_repository(tmp_path, [MODEL]), extra_args=extra_args,
                            log_dir=tmp_path / "logs")
    srv.start()
    try:
        rc = srv.proc.wait(timeout=lib.START_TIMEOUT_S)
    finally:
        srv.kill()
    assert rc == 2, f"exit code {rc}, expected 2:\n{srv.log()}"
    return srv.log()


def test_start_with_a_key_that_does_not_match_fails(pki, tmp_path):
    log = start_fails(tmp_path, tls_args(pki / "server.pem", pki / "client.key"))
    assert str(pki / "client.key") in log and "does not match" in log, log


def test_start_with_a_missing_certificate_fails(pki, tmp_path):
    missing = tmp_path / "no-such-cert.pem"
    log = start_fails(tmp_path, tls_args(missing, pki / "server.key"))
    assert str(missing) in log, log


def test_start_with_a_bad_client_ca_fails(pki, tmp_path):
    bad = tmp_path / "not-a-ca.pem"
    bad.write_text("not PEM at all\n")
    log = start_fails(tmp_path, tls_args(pki / "server.pem", pki / "server.key", client_ca=bad))
    assert str(bad) in log, log


def test_start_with_a_certificate_but_no_key_fails(pki, tmp_path):
    log = start_fails(tmp_path, ["--tls-cert", str(pki / "server.pem"), "--state-db", ":memory:"])
    assert "--tls-key" in log, log
