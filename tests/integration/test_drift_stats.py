"""Drift statistics (src/slipway/monitoring/drift_stats) against SciPy.

Feeds seeded test vectors to the drift_stats_cli test driver (JSON lines in, JSON lines out)
and checks every result against the reference SciPy gives:
  ks      scipy.stats.ks_2samp(a, b, method='asymp')
  chi2    scipy.stats.chi2_contingency([ref, live], correction=False), zero columns dropped
  psi     a direct numpy computation
  kstwo   scipy.stats.kstwo.sf(d, n)            (the KS p-value's distribution, every branch)
  gammaq  scipy.special.gammaincc(a, x)         (the chi-squared p-value's Q(a, x))
  edges   numpy.quantile (linear) and numpy.searchsorted

Environment:
  SLIPWAY_DRIFT_CLI  the driver binary (default build/tests/drift_stats_cli); the module is
                     skipped when it is missing.
Needs numpy and scipy (Debian's python3-numpy / python3-scipy); written against SciPy 1.10.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

scipy_stats = pytest.importorskip("scipy.stats")
scipy_special = pytest.importorskip("scipy.special")

REPO = Path(__file__).resolve().parents[2]
CLI = Path(os.environ.get("SLIPWAY_DRIFT_CLI", REPO / "build" / "tests" / "drift_stats_cli"))

if not CLI.is_file() or not os.access(CLI, os.X_OK):
    pytest.skip(f"drift_stats_cli not built: {CLI} is missing (build the drift_stats_cli target "
                f"or set SLIPWAY_DRIFT_CLI)", allow_module_level=True)

REL = 1e-6     # relative tolerance against SciPy
ABS = 1e-12    # absolute tolerance for values near 0


def run_cli(requests: list[dict]) -> list[dict]:
    """One driver run for a whole batch; one reply per request, in order."""
    stdin = "".join(json.dumps(r) + "\n" for r in requests)
    proc = subprocess.run([str(CLI)], input=stdin, capture_output=True, text=True, timeout=300,
                          check=True)
    replies = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(replies) == len(requests), proc.stdout[-2000:]
    return replies


def close(actual, expected, rel=REL, abs_tol=ABS) -> bool:
    if actual is None or expected is None:
        return False
    return math.isclose(float(actual), float(expected), rel_tol=rel, abs_tol=abs_tol)


def ks_cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(20240611)
    sizes = [5, 6, 7, 9, 10, 13, 20, 31, 50, 64, 100, 150, 257, 500, 999, 1000, 1500, 2000]
    cases = []
    for n1 in sizes:
        for n2 in rng.choice(sizes, size=3, replace=False):
            n2 = int(n2)
            cases.append((f"normal {n1}/{n2}", rng.normal(0, 1, n1), rng.normal(0, 1, n2)))
            shift = rng.choice([0.1, 0.3, 0.7, 1.5, 4.0])
            cases.append((f"shift{shift} {n1}/{n2}", rng.normal(0, 1, n1),
                           rng.normal(shift, 1, n2)))
            cases.append((f"scale {n1}/{n2}", rng.normal(0, 1, n1), rng.normal(0, 2.5, n2)))
            cases.append((f"uniform {n1}/{n2}", rng.uniform(0, 1, n1), rng.uniform(0.1, 1.2, n2)))
            # Ties, within and across the samples.
            cases.append((f"ties {n1}/{n2}", np.round(rng.normal(0, 1, n1), 1),
                          np.round(rng.normal(0.2, 1, n2), 1)))
            cases.append((f"integers {n1}/{n2}", rng.integers(0, 5, n1).astype(float),
                          rng.integers(0, 6, n2).astype(float)))
    # Equal sizes (en = n/2, half-way rounding), identical and disjoint samples.
    for n in [5, 6, 7, 11, 40, 141, 282, 283, 1000, 2000]:
        x = rng.normal(0, 1, n)
        cases.append((f"equal {n}", x, rng.normal(0.25, 1, n)))
        cases.append((f"identical {n}", x, x.copy()))
        cases.append((f"disjoint {n}", x, x + 100.0))
    cases.append(("one vs many", np.array([0.5]), rng.uniform(0, 1, 200)))
    cases.append(("constant", np.full(30, 2.0), np.full(45, 2.0)))
    cases.append(("near-disjoint", np.arange(50.0), np.arange(45.0, 95.0)))
    return cases


KS_CASES = ks_cases()


@pytest.fixture(scope="module")
def ks_replies():
    return run_cli([{"test": "ks", "a": a.tolist(), "b": b.tolist()} for _, a, b in KS_CASES])


def test_ks_matches_scipy_asymp(ks_replies):
    assert len(KS_CASES) > 300
    failures = []
    for (name, a, b), got in zip(KS_CASES, ks_replies):
        want = scipy_stats.ks_2samp(a, b, method="asymp")
        if "error" in got or not (close(got["statistic"], want.statistic)
                                  and close(got["p_value"], want.pvalue)):
            failures.append(f"{name}: got {got}, scipy D={want.statistic!r} "
                            f"p={want.pvalue!r}")
    assert not failures, "\n".join(failures[:20])


def test_ks_known_shapes(ks_replies):
    by_name = {name: got for (name, _, _), got in zip(KS_CASES, ks_replies)}
    for n in [40, 1000]:
        assert by_name[f"identical {n}"] == {"statistic": 0, "p_value": 1}
        assert by_name[f"disjoint {n}"]["statistic"] == 1
        assert by_name[f"disjoint {n}"]["p_value"] < 1e-10
    assert by_name["constant"] == {"statistic": 0, "p_value": 1}


def test_ks_p_values_cover_the_range(ks_replies):
    # The vectors must exercise small, middling and large p-values, or the comparison is weak.
    p = np.array([r["p_value"] for r in ks_replies])
    assert (p < 1e-6).sum() > 10
    assert ((p > 1e-3) & (p < 0.5)).sum() > 30
    assert (p > 0.5).sum() > 30


def test_kstwo_sf_matches_scipy_on_every_branch():
    rng = np.random.default_rng(7)
    requests, expected = [], []
    for n in [1, 2, 3, 4, 5, 8, 10, 17, 50, 99, 139, 140, 141, 200, 500, 1000, 2500, 10000,
              99999, 100000, 100001, 150000, 1000001, 3000000]:
        # (n = 1e6 exactly also agrees, to 3e-12; SciPy takes seconds per point there.)
        # Points around every switch: nx <= 0.5, <= 1, nx^2 cut-overs, x >= 0.5, nx >= n-1.
        xs = {0.0, 0.3 / n, 0.5 / n, 0.75 / n, 1.0 / n, 1.5 / n, 0.5, 0.75, 0.999, 1.0,
              1 - 1.0 / n, 1 - 0.5 / n}
        for nx2 in [0.1, 0.5, 0.754693, 0.76, 1.0, 2.0, 2.19, 2.2, 2.3, 3.9, 4.0, 4.1, 8.0, 17.0,
                    18.0, 25.0, 100.0, 369.0, 370.0, 371.0]:
            xs.add(math.sqrt(nx2 / n))
        xs.update(float(v) for v in rng.uniform(0, 1, 6))
        xs.update(float(v) for v in rng.uniform(0, 3 / math.sqrt(n), 10))
        for x in sorted(v for v in xs if 0 <= v <= 1):
            requests.append({"test": "kstwo", "n": n, "d": x})
            expected.append(float(scipy_stats.kstwo.sf(x, n)))
    replies = run_cli(requests)
    failures = [f"n={r['n']} d={r['d']!r}: got {g}, scipy {e!r}"
                for r, g, e in zip(requests, replies, expected)
                if not close(g.get("p_value"), e)]
    assert not failures, f"{len(failures)} of {len(requests)}:\n" + "\n".join(failures[:20])


def test_ks_errors():
    replies = run_cli([{"test": "ks", "a": [], "b": [1.0, 2.0]},
                       {"test": "ks", "a": [1.0], "b": [2.0]},
                       {"test": "ks", "a": [1.0, 2.0], "b": "x"}])
    assert all("error" in r for r in replies), replies
    assert "empty" in replies[0]["error"]


def chi2_cases() -> list[tuple[list[int], list[int]]]:
    rng = np.random.default_rng(99)
    cases = []
    for k in range(2, 11):
        for _ in range(8):
            probs = rng.dirichlet(np.ones(k))
            ref = rng.multinomial(int(rng.integers(20, 5000)), probs)
            drift = rng.choice([0.0, 0.05, 0.3])
            live_probs = (1 - drift) * probs + drift * rng.dirichlet(np.ones(k))
            live = rng.multinomial(int(rng.integers(20, 5000)), live_probs)
            cases.append((ref.tolist(), live.tolist()))
        # Zero columns (both rows), zero cells in one row only, and a tiny table.
        ref = rng.integers(0, 50, k)
        live = rng.integers(0, 50, k)
        zero = rng.choice(k, size=max(1, k // 3), replace=False)
        ref[zero] = 0
        live[zero] = 0
        ref[0] = max(ref[0], 1)
        live[0] = max(live[0], 1)
        cases.append((ref.tolist(), live.tolist()))
        one_sided = rng.integers(1, 30, k)
        cases.append((one_sided.tolist(), [0] * (k - 1) + [int(rng.integers(1, 30))]))
    cases.append(([10, 20, 30], [10, 20, 30]))          # identical rows: statistic 0
    cases.append(([7, 0, 0], [3, 0, 0]))                 # one category left: dof 0
    cases.append(([1000000, 1], [1, 1000000]))          # p underflows towards 0
    cases.append(([500, 480, 520], [100, 80, 160]))
    return cases


def test_chi2_matches_scipy():
    cases = chi2_cases()
    replies = run_cli([{"test": "chi2", "ref": r, "live": l} for r, l in cases])
    failures = []
    for (ref, live), got in zip(cases, replies):
        table = np.array([ref, live])
        table = table[:, table.sum(axis=0) > 0]
        stat, p, dof, _ = scipy_stats.chi2_contingency(table, correction=False)
        if "error" in got or not (close(got["statistic"], stat) and close(got["p_value"], p)):
            failures.append(f"{ref} / {live}: got {got}, scipy stat={stat!r} p={p!r} dof={dof}")
    assert not failures, "\n".join(failures[:20])
    ps = [r["p_value"] for r in replies]
    assert min(ps) < 1e-10 and max(ps) == 1


def test_chi2_errors():
    replies = run_cli([{"test": "chi2", "ref": [1, 2], "live": [1, 2, 3]},
                       {"test": "chi2", "ref": [0, 0], "live": [1, 2]},
                       {"test": "chi2", "ref": [], "live": []},
                       {"test": "chi2", "ref": [1, -2], "live": [1, 2]}])
    assert all("error" in r for r in replies), replies


def test_gammaq_matches_scipy():
    requests, expected = [], []
    for a in [0.5, 1.0, 1.5, 2.0, 3.5, 4.5, 9.5, 10.0, 10.5, 25.0, 100.0, 499.5, 5000.0, 1e6]:
        for x in sorted({0.0, 1e-8, 0.01, 0.5, 1.0, 2.0, a / 2, a - 1, a, a + 1, a + 2,
                         a + math.sqrt(a), a + 5 * math.sqrt(a), 2 * a, 3 * a + 20, 700.0}):
            if x < 0:
                continue
            want = float(scipy_special.gammaincc(a, x))
            if 0 < want < 1e-290:
                continue  # subnormal range: not comparable relatively
            requests.append({"test": "gammaq", "a": a, "x": x})
            expected.append(want)
    replies = run_cli(requests)
    failures = [f"a={r['a']} x={r['x']}: got {g}, scipy {e!r}"
                for r, g, e in zip(requests, replies, expected)
                if not close(g.get("q"), e, rel=1e-11, abs_tol=1e-300)]
    assert not failures, f"{len(failures)} of {len(requests)}:\n" + "\n".join(failures[:20])


def psi_reference(expected, actual, eps=1e-4):
    e = np.maximum(np.asarray(expected, dtype=float), eps)
    a = np.maximum(np.asarray(actual, dtype=float), eps)
    return float(np.sum((a - e) * np.log(a / e)))


def test_psi_matches_numpy():
    rng = np.random.default_rng(5)
    cases = []
    for k in [2, 3, 5, 10, 20, 50]:
        for _ in range(5):
            e = rng.dirichlet(np.ones(k))
            a = rng.dirichlet(np.ones(k) * rng.choice([0.5, 5, 50]))
            if rng.random() < 0.5:
                a[rng.integers(0, k)] = 0.0  # an empty bin hits the epsilon floor
            cases.append((e.tolist(), a.tolist()))
        e = rng.dirichlet(np.ones(k))
        cases.append((e.tolist(), e.tolist()))
    replies = run_cli([{"test": "psi", "expected": e, "actual": a} for e, a in cases])
    for (e, a), got in zip(cases, replies):
        assert close(got["psi"], psi_reference(e, a)), (e, a, got)
    # And with an explicit epsilon.
    got = run_cli([{"test": "psi", "expected": [0.5, 0.5, 0.0], "actual": [0.3, 0.3, 0.4],
                    "epsilon": 0.01}])[0]
    assert close(got["psi"], psi_reference([0.5, 0.5, 0.0], [0.3, 0.3, 0.4], 0.01))


def test_quantile_edges_and_counts_match_numpy():
    rng = np.random.default_rng(11)
    cases = [(rng.normal(0, 1, n), int(bins), rng.normal(0.3, 1.2, 300))
             for n, bins in [(10, 4), (100, 10), (1000, 10), (997, 7), (50, 20)]]
    cases.append((np.round(rng.normal(0, 1, 200), 0), 10, rng.normal(0, 1, 100)))  # many ties
    replies = run_cli([{"test": "edges", "reference": r.tolist(), "bins": b, "values": v.tolist()}
                       for r, b, v in cases])
    for (ref, bins, values), got in zip(cases, replies):
        want = np.unique(np.quantile(ref, np.arange(1, bins) / bins))
        edges = np.array(got["edges"])
        assert edges.shape == want.shape and np.allclose(edges, want, rtol=1e-12, atol=1e-12), \
            (got["edges"], want)
        counts = np.bincount(np.searchsorted(edges, values, side="left"),
                             minlength=len(edges) + 1)
        assert got["counts"] == counts.tolist()


def test_psi_over_quantile_bins_detects_a_shift():
    rng = np.random.default_rng(3)
    ref = rng.normal(0, 1, 5000)
    same = rng.normal(0, 1, 5000)
    shifted = rng.normal(1.0, 1, 5000)
    edges = np.quantile(ref, np.arange(1, 10) / 10)
    share = lambda v: (np.bincount(np.searchsorted(edges, v), minlength=10) / len(v)).tolist()
    replies = run_cli([{"test": "psi", "expected": share(ref), "actual": share(same)},
                       {"test": "psi", "expected": share(ref), "actual": share(shifted)}])
    assert replies[0]["psi"] < 0.02
    assert replies[1]["psi"] > 0.2


def test_bad_lines_get_errors_and_the_driver_goes_on():
    stdin = 'not json\n{"test": "nope"}\n{"test": "psi", "expected": [1], "actual": [1]}\n'
    proc = subprocess.run([str(CLI)], input=stdin, capture_output=True, text=True, timeout=60,
                          check=True)
    replies = [json.loads(line) for line in proc.stdout.splitlines()]
    assert "error" in replies[0] and "error" in replies[1]
    assert replies[2] == {"psi": 0}
