"""Load: concurrent invocations through ``invoke.py serve`` (the Invoke API) against one S3.

``make test`` runs a small wave (8 at once, cold then warm); ``make stress``
runs ``python -m reliability.load_run --concurrency 50``. Both check every
manifest against its prefix, a shared /tmp left empty, the serving process's
RSS, and that the server still answers afterwards.
"""

from __future__ import annotations

import io

from reliability.load_run import RSS_GROWTH_LIMIT_MB, Wave, run_load

FAST_CONCURRENCY = 8


def test_concurrent_invocations_through_the_invoke_api_are_all_correct() -> None:
    out = io.StringIO()

    report = run_load(concurrency=FAST_CONCURRENCY, keys_per_prefix=40, waves=2, out=out)

    assert report.problems == [], out.getvalue() + report.table()
    assert [len(w.calls) for w in report.waves] == [FAST_CONCURRENCY, FAST_CONCURRENCY]
    assert all(c.ok for w in report.waves for c in w.calls), report.table()
    assert report.answers_after
    assert report.tmp_names_seen >= 1  # the sampler really watched the shared /tmp
    assert report.rss_after_mb - report.rss_before_mb < RSS_GROWTH_LIMIT_MB


def test_latency_percentiles_are_nearest_rank() -> None:
    from reliability.load_run import Call

    wave = Wave("w", [Call("p", float(s), True) for s in range(1, 11)], seconds=2.0)

    assert wave.percentile(50) == 5.0
    assert wave.percentile(90) == 9.0
    assert wave.percentile(100) == 10.0
    assert wave.throughput == 5.0
