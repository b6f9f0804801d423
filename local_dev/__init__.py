"""The developer side of the local sandbox: what runs the function on a laptop.

Where the service (``local_runtime``) knows nothing of this app, this package
does: the ``.env`` file and the variables that shadow it (``env_file``), whether
an S3 endpoint answers (``s3_endpoint``), the embedded S3 (``embedded_s3``), the
sample events under ``events/`` (``events``), the function as ``template.yaml``
declares it (``template_config``), the re-run under ``.venv`` (``venv_guard``)
and the command lines behind the root's ``invoke.py``, ``seed.py`` and
``demo.py`` (``invoke_cli``, ``seed``, ``demo``). A future S3 event bridge or a
file watcher that reloads the handler lands here too.
"""
