"""statemachine/: valid ASL (asl-validator), and Lab 6's predictions played through the definition.

There is no Step Functions here, so the checks are two:

* ``asl-validator`` (npm, pinned in tools/asl/, installed by ``make test``
  through ``make asl-validator``) validates every ``statemachine/*.asl.json``,
  and rejects a broken copy, so a pass means it really looked;
* a small interpreter for the states this definition uses (Task with Retry and
  Catch, Choice, Pass, a distributed Map's failure threshold) runs each row of
  Lab 6's outcome table (``<table id="lab-6-outcomes">`` in docs/index.html)
  against the real definition: what the function does in that row goes in,
  the prefix's entry and the execution's status come out, and both must read
  as the table says. Editing the definition (say, the threshold or the Catch)
  without the lab, or the lab without the definition, fails here.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

MACHINES = sorted((ROOT / "statemachine").glob("*.asl.json"))
FANOUT = ROOT / "statemachine" / "fanout.asl.json"
VALIDATOR = ROOT / "tools" / "asl" / "node_modules" / ".bin" / "asl-validator"
INDEX = ROOT / "docs" / "index.html"


# ---------------------------------------------------------------------------
# asl-validator
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def validator() -> Path:
    if not VALIDATOR.exists() or shutil.which("node") is None:
        message = "asl-validator is not installed: make asl-validator (make test does it)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI runs make test, which installs it: missing there is a bug
        pytest.skip(message)
    return VALIDATOR


def validate(validator: Path, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(validator), "--json-path", str(path)], capture_output=True, text=True, timeout=60, check=False
    )


def test_there_is_a_state_machine_to_check() -> None:
    assert FANOUT in MACHINES


@pytest.mark.parametrize("path", MACHINES, ids=lambda path: path.name)
def test_every_definition_is_valid_asl(validator: Path, path: Path) -> None:
    done = validate(validator, path)

    assert done.returncode == 0, done.stdout + done.stderr


def test_the_validator_rejects_a_broken_definition(validator: Path, tmp_path: Path) -> None:
    broken = json.loads(FANOUT.read_text(encoding="utf-8"))
    processor = broken["States"]["EachPrefix"]["ItemProcessor"]
    processor["States"][processor["StartAt"]]["Next"] = "NoSuchState"
    path = tmp_path / "broken.asl.json"
    path.write_text(json.dumps(broken), encoding="utf-8")

    done = validate(validator, path)

    assert done.returncode != 0 and "NoSuchState" in done.stdout + done.stderr


# ---------------------------------------------------------------------------
# A small interpreter for this definition's states
# ---------------------------------------------------------------------------

# Errors no Catch matches, States.ALL included (Step Functions error handling).
UNCATCHABLE = {"States.Runtime", "States.DataLimitExceeded"}


class ChildFailed(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def _path(data: Any, path: str) -> Any:
    """A reference path such as ``$.result.body.count``; a missing field is a States.Runtime error."""
    assert path.startswith("$"), path
    for part in [p for p in path[1:].split(".") if p]:
        if not isinstance(data, dict) or part not in data:
            raise ChildFailed("States.Runtime")
        data = data[part]
    return data


def _template(template: dict[str, Any], data: Any) -> dict[str, Any]:
    out = {}
    for key, value in template.items():
        if key.endswith(".$"):
            call = re.fullmatch(r"States\.StringToJson\((.+)\)", value)
            if call:
                try:
                    out[key[:-2]] = json.loads(_path(data, call.group(1)))
                except (TypeError, json.JSONDecodeError):
                    raise ChildFailed("States.Runtime") from None
            else:
                out[key[:-2]] = _path(data, value)
        else:
            out[key] = value
    return out


def _put(data: dict[str, Any], result_path: str, value: Any) -> dict[str, Any]:
    assert re.fullmatch(r"\$\.\w+", result_path), result_path
    return {**data, result_path[2:]: value}


def run_child(processor: dict[str, Any], item: dict[str, Any], function: dict[str, Any]) -> dict[str, Any]:
    """One child execution; ``function`` is what the Lambda task does: ``{"raises": name}`` or ``{"answers": ...}``.

    Returns the child's output, or raises ChildFailed with the error that failed it.
    """
    states = processor["States"]
    name, data = processor["StartAt"], item
    while True:
        state = states[name]
        if state["Type"] == "Task":
            assert state["Resource"] == "arn:aws:states:::lambda:invoke"
            if "raises" in function:
                error = function["raises"]
                catcher = next(
                    (
                        c
                        for c in state.get("Catch", [])
                        if error not in UNCATCHABLE and (error in c["ErrorEquals"] or "States.ALL" in c["ErrorEquals"])
                    ),
                    None,
                )
                if catcher is None:
                    raise ChildFailed(error)
                data = _put(data, catcher["ResultPath"], {"Error": error, "Cause": f"{error} (cause)"})
                name = catcher["Next"]
                continue
            result = {"Payload": function["answers"]}
            if "ResultSelector" in state:
                result = _template(state["ResultSelector"], result)
            data = _put(data, state["ResultPath"], result)
        elif state["Type"] == "Choice":
            matched = [c for c in state["Choices"] if _path(data, c["Variable"]) == c["NumericEquals"]]
            name = matched[0]["Next"] if matched else state["Default"]
            continue
        elif state["Type"] == "Pass":
            data = _template(state["Parameters"], data) if "Parameters" in state else data
        else:
            raise AssertionError(f"the interpreter does not know {state['Type']} states: teach it, or the lab")
        if state.get("End"):
            return data
        name = state["Next"]


def run_fanout(definition: dict[str, Any], prefixes: dict[str, dict[str, Any]]) -> tuple[str, list[Any]]:
    """The execution's status and its ``manifests``, one child per prefix (a failed child leaves no entry)."""
    fan_out = definition["States"][definition["StartAt"]]
    assert fan_out["Type"] == "Map" and fan_out["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    entries, failed = [], 0
    for prefix, function in prefixes.items():
        selector = fan_out["ItemSelector"]  # each item's value becomes the event, as {"prefix": ...}
        item = {key[:-2]: prefix for key, path in selector.items() if path == "$$.Map.Item.Value"}
        assert set(item) == {"prefix"}, selector
        try:
            entries.append(run_child(fan_out["ItemProcessor"], item, function))
        except ChildFailed:
            failed += 1
    tolerated = fan_out.get("ToleratedFailurePercentage", 0)
    if failed and 100 * failed / len(prefixes) > tolerated:
        return "FAILED: States.ExceedToleratedFailureThreshold", entries
    return "SUCCEEDED", entries


def _answer(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"answers": {"statusCode": status, "body": json.dumps(body)}}


OK = _answer(200, {"count": 3, "manifest_key": "manifests/m.jsonl", "manifest_url": "https://example.invalid/m"})


def _without_catch(definition: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(definition)
    processor = changed["States"][changed["StartAt"]]["ItemProcessor"]
    del processor["States"][processor["StartAt"]]["Catch"]
    return changed


def _tolerating_all(definition: dict[str, Any]) -> dict[str, Any]:
    changed = _without_catch(definition)
    changed["States"][changed["StartAt"]]["ToleratedFailurePercentage"] = 100
    return changed


# Each row of Lab 6's table: (how the definition is changed, what the function does for the row's prefix).
CASES = {
    "ok": (lambda d: d, OK),
    "denied": (lambda d: d, _answer(403, {"error": "access denied to s3://acme-reports/other/"})),
    "deadline": (lambda d: d, {"raises": "ScanDeadlineExceeded"}),
    "throttled": (lambda d: d, {"raises": "Lambda.TooManyRequestsException"}),
    "uncaught": (_without_catch, {"raises": "ScanDeadlineExceeded"}),
    "tolerated": (_tolerating_all, {"raises": "ScanDeadlineExceeded"}),
}


class _Table(HTMLParser):
    """The rows of ``<table id="lab-6-outcomes">``: data-case -> the text of each cell."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self._inside = False
        self._case: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "table":
            self._inside = values.get("id") == "lab-6-outcomes"
        if self._inside and tag == "tr" and values.get("data-case"):
            self._case = values["data-case"]
            self.rows[self._case] = []
        if self._case and tag == "td":
            self.rows[self._case].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._case = None
        if tag == "table":
            self._inside = False

    def handle_data(self, data: str) -> None:
        if self._case and self.rows[self._case]:
            self.rows[self._case][-1] += data


@pytest.fixture(scope="module")
def lab_rows() -> dict[str, list[str]]:
    table = _Table()
    table.feed(INDEX.read_text(encoding="utf-8"))
    return table.rows


def test_the_lab_has_a_row_for_every_case(lab_rows: dict[str, list[str]]) -> None:
    assert set(lab_rows) == set(CASES)
    assert all(len(cells) == 3 for cells in lab_rows.values())


@pytest.mark.parametrize("case", CASES)
def test_each_lab_prediction_comes_true_on_the_definition(lab_rows: dict[str, list[str]], case: str) -> None:
    change, function = CASES[case]
    definition = change(json.loads(FANOUT.read_text(encoding="utf-8")))
    # The row's prefix next to one that works: the others must not be affected.
    status, entries = run_fanout(definition, {"2026/01/": OK, "2026/02/": function})
    _, said_entry, said_status = (" ".join(cell.split()) for cell in lab_rows[case])

    assert said_status.startswith(status.split(";")[0])
    assert entries[0] == {"prefix": "2026/01/", "status": "ok", **json.loads(OK["answers"]["body"])}
    if len(entries) == 1:
        assert said_entry.startswith("none"), f"{case}: the child fails, so there is no entry"
        return
    entry = entries[1]
    assert f'"status": "{entry["status"]}"' in said_entry
    shown = ["statusCode"] + (["error"] if entry["status"] == "failed" else [])
    for field in (name for name in shown if name in entry):
        assert json.dumps({field: entry[field]})[1:-1] in said_entry, (case, field, entry)


def test_a_function_answer_the_definition_cannot_read_fails_the_run() -> None:
    """The reason for the threshold of 0: States.Runtime is not caught, and is a bug worth a failed run."""
    definition = json.loads(FANOUT.read_text(encoding="utf-8"))
    status, entries = run_fanout(definition, {"2026/01/": OK, "2026/02/": {"answers": {"statusCode": 200}}})

    assert status == "FAILED: States.ExceedToleratedFailureThreshold" and len(entries) == 1


def test_the_site_states_the_definitions_threshold() -> None:
    definition = json.loads(FANOUT.read_text(encoding="utf-8"))
    threshold = definition["States"][definition["StartAt"]]["ToleratedFailurePercentage"]
    html = INDEX.read_text(encoding="utf-8")
    deploying = (ROOT / "docs" / "reference" / "deploying.md").read_text(encoding="utf-8")

    assert set(re.findall(r"ToleratedFailurePercentage: (\d+)", html)) == {str(threshold)}
    assert set(re.findall(r"ToleratedFailurePercentage: (\d+)", deploying)) == {str(threshold)}
    assert f"ToleratedFailurePercentage {threshold}" in definition["Comment"]
