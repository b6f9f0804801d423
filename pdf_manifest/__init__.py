"""The handler's parts, shipped in the Lambda zip beside ``lambda_function.py``.

``lambda_function.py`` (at the root, the module Lambda's ``Handler`` names) wires
them: ``scan_request`` reads an event into one checked request, ``key_ranges``
lists a prefix as many key ranges at once, ``list_parser`` parses the LIST pages,
``presign`` signs each URL, ``manifest_upload`` streams the manifest to S3.
Nothing in here imports the local sandbox (``local_runtime``, ``local_dev``,
``testkit``); import-linter checks it.
"""
