"""Build and deploy tooling: tools/package.py (the Lambda zips) and tools/deploy.py (SAM, aws CLI)."""
