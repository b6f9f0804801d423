"""A pytest plugin for testing the function: ``pip install -e .`` registers it (entry point ``pytest11``).

The fixtures live in ``lambda_pytest.plugin``; docs/reference/testing.md shows how to use them. It is
a developer tool, like ``tools/``: it may import the layers below it (the service, the sandbox and
testkit), and nothing that ships in the function's zip imports it.
"""
