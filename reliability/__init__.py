"""Reliability harnesses: fault injection between the handler and S3, load through the Invoke API, fuzzing.

Nothing in here ships to Lambda. ``python -m reliability.fault_run`` and
``python -m reliability.load_run`` are what ``make stress`` runs; the pytest
files ``tests/tooling/test_faults.py``, ``tests/tooling/test_load.py`` and ``tests/function/test_fuzz.py``
run small slices of the same code in ``make test``.
"""
