# Deploying to AWS (README "Deploying to AWS"). Included by the Makefile; PY and
# install come from there. Every sam/aws command line is built and every value
# checked by tools/deploy.py, which reads the make variables below from its
# environment (see LITERAL_VARS in the Makefile: they reach it byte for byte,
# never through a shell line). DRY_RUN=1 prints the commands and runs nothing;
# a real run names the account and region and asks before changing anything
# (YES=1 answers for you).
#   make deploy BUCKET_NAME=... [PREFIX=...] [SCOPE_PREFIX=...] [KMS_KEY_ARN=...] [S3_TRIGGER=1] [ARCH=x86_64]
#               [MEMORY_SIZE=512] [TIMEOUT=120] [URL_EXPIRY_SECONDS=900] [LOG_LEVEL=INFO]
#     (a setting left out takes template.yaml's default, never the stack's previous value;
#      DRY_RUN=1 still writes build/sam/template-<arch>.yaml, the exact template it would deploy)
#   make invoke-aws | run-fanout PREFIXES="a/ b/" | rollback [TO_VERSION=n] | s3-trigger   [STACK_NAME=...] [AWS_REGION=...]

LITERAL_VARS += BUCKET_NAME PREFIX SCOPE_PREFIX KMS_KEY_ARN S3_TRIGGER ARCH STACK_NAME AWS_REGION PREFIXES TO_VERSION DRY_RUN YES
LITERAL_VARS += MEMORY_SIZE TIMEOUT URL_EXPIRY_SECONDS LOG_LEVEL

DEPLOY_PY = $(PY) tools/deploy.py

.PHONY: package deploy invoke-aws run-fanout rollback s3-trigger

##@ AWS

package: install ## build dist/function-{x86_64,arm64}.zip for Lambda (no Docker), print sizes vs limits
	$(PY) tools/package.py

deploy: install ## sam deploy ARCH's zip, MEMORY_SIZE/TIMEOUT/URL_EXPIRY_SECONDS/LOG_LEVEL; BUCKET_NAME=... required, DRY_RUN=1 prints
	$(DEPLOY_PY) deploy --package

invoke-aws: install ## aws lambda invoke the live alias with BUCKET_NAME/PREFIX, print the manifest URL; DRY_RUN=1
	$(DEPLOY_PY) invoke

run-fanout: install ## start the Step Functions fan-out over PREFIXES="a/ b/"; DRY_RUN=1 prints
	$(DEPLOY_PY) run-fanout

rollback: install ## point the live alias at the previous version (TO_VERSION=n for a given one); DRY_RUN=1
	$(DEPLOY_PY) rollback

s3-trigger: install ## add the *.pdf-under-PREFIX notification to BUCKET_NAME (after deploy S3_TRIGGER=1); DRY_RUN=1
	$(DEPLOY_PY) s3-trigger
