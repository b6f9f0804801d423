"""The Docker-free stand-in for the Lambda service: context, environment, embedded S3.

Nothing in here ships to Lambda; the handler never imports it.
"""
