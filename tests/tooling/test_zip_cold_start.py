"""bench/zip_cold_start.py's pure parts: the REPORT line it reads and the -X importtime it sums up (no timing)."""

from __future__ import annotations

import json

from bench.zip_cold_start import handler_subtree, importtime_summary, parse_importtime, report_init_ms
from local_runtime import logs


def test_init_duration_is_read_from_the_report_line_text_or_json():
    report = logs.Report(
        request_id="r", duration_ms=3.2, memory_size_mb=512, max_memory_used_mb=90, init_duration_ms=612.345
    )
    text = f"START RequestId: r Version: $LATEST\nhello\nEND RequestId: r\n{logs.report_line('text', report)}\n"
    as_json = "\n".join(
        [
            logs.start_line("json", "r"),
            json.dumps({"level": "INFO", "message": "Init Duration: 1 ms"}),
            logs.report_line("json", report),
        ]
    )
    warm = logs.report_line(
        "text", logs.Report(request_id="r", duration_ms=3.2, memory_size_mb=512, max_memory_used_mb=90)
    )

    assert report_init_ms(text) == 612.35  # the text line rounds to 2 places
    assert report_init_ms(as_json) == 612.345
    assert report_init_ms(warm) is None
    assert report_init_ms("Init Duration: 5.00 ms\n") is None  # a function's own line is not the REPORT


IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       100 |        100 |   encodings.utf_8
import time:       900 |       1000 | site
import time:        50 |         50 |       fractions
import time:        20 |         70 |     statistics
import time:      3000 |       3000 |     botocore
import time:       100 |       3170 |   pdf_manifest.key_ranges
import time:      5000 |       5000 |   aioboto3
import time:       200 |       8370 | lambda_function
"""


def test_importtime_keeps_the_handler_subtree_and_ranks_it():
    rows = parse_importtime("noise\n" + IMPORTTIME)
    subtree = handler_subtree(rows)

    assert [row.module for row in subtree] == [
        "fractions",
        "statistics",
        "botocore",
        "pdf_manifest.key_ranges",
        "aioboto3",
        "lambda_function",
    ]
    assert [row.depth for row in subtree] == [3, 2, 2, 1, 1, 0]
    summary = importtime_summary([rows, rows], top=3)
    # lambda_function (8.37) is more than its aioboto3 (5.0): listed; key_ranges is 95 % botocore: left out.
    assert [(row["module"], row["cumulative_ms"]) for row in summary["top"]] == [
        ("lambda_function", 8.37),
        ("aioboto3", 5.0),
        ("botocore", 3.0),
    ]
    assert [(row["module"], row["self_ms"]) for row in summary["self"]] == [
        ("aioboto3", 5.0),
        ("botocore", 3.0),
        ("lambda_function", 0.2),
    ]
    assert [row["module"] for row in summary["direct"]] == ["aioboto3", "pdf_manifest.key_ranges"]
    assert handler_subtree(parse_importtime("import time:  1 |  1 | site\n")) == []
