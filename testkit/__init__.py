"""What the tests, the benchmarks (``bench/``) and the fault harness (``reliability/``) share.

A stand-in Lambda context for in-process calls (``lambda_context``), a fresh
import of the handler (``cold_import``), S3's latency model (``latency_model``)
and the S3 operation a request line names (``s3_operations``). Those three
users import from here, never from one another; nothing imports ``tests``.
"""
