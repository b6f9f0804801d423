"""The Docker-free stand-in for the Lambda service, split as Lambda splits it.

Service side: Invoke API (api_server), environments and scaling (pool), one
environment's lifecycle (environment), the Runtime API each runtime talks to
(runtime_api), platform log lines and log collection (logs). The runtime inside
an environment is AWS's own awslambdaric under Python 3.13 (lambda_python says
where they are), or a custom ``bootstrap``. Nothing in here ships to Lambda; the
handler never imports it.
"""
