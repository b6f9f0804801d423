"""The Docker-free stand-in for the Lambda service, split as Lambda splits it.

Invoke API (api_server), environments and scaling (pool), one environment's
lifecycle (environment), the Runtime API each runtime talks to (runtime_api),
platform log lines and log collection (logs), what the service knows of a
function and the process environment it derives (config), Lambda's Python
(lambda_python) and bounded, strict JSON (strict_json). The runtime inside an
environment is AWS's own awslambdaric under Python 3.13, or a custom
``bootstrap``.

The service knows nothing of the app it runs: the function's name, handler,
code and settings come from the caller (``local_dev`` reads them from
``template.yaml``). It imports nothing of the handler or of the tooling
(import-linter checks it), and nothing in here ships to Lambda.
"""
