# Deploying to AWS (README "Deploying to AWS"). Included by the Makefile; PY and
# install come from there. Every sam/aws command line is built by tools/deploy.py;
# DRY_RUN=1 prints them instead of running them (this repo has no AWS account).

ARCH       ?= arm64
STACK_NAME ?= pdf-manifest
PREFIXES   ?= $(PREFIX)
DEPLOY_PY   = $(PY) tools/deploy.py $(if $(filter 1 true yes,$(DRY_RUN)),--dry-run) --stack-name $(STACK_NAME) $(if $(AWS_REGION),--region $(AWS_REGION))

.PHONY: package deploy invoke-aws run-fanout rollback s3-trigger

##@ AWS

package: install ## build dist/function-{x86_64,arm64}.zip for Lambda (no Docker), print sizes vs limits
	$(PY) tools/package.py

deploy: install ## sam deploy ARCH's zip (guided without samconfig.toml); BUCKET_NAME=... required, DRY_RUN=1 prints
	$(if $(filter 1 true yes,$(DRY_RUN)),,$(PY) tools/package.py --arch $(ARCH))
	$(DEPLOY_PY) deploy --arch $(ARCH) --bucket '$(BUCKET_NAME)' --prefix '$(PREFIX)' --scope-prefix '$(SCOPE_PREFIX)' \
	  --kms-key-arn '$(KMS_KEY_ARN)' $(if $(filter 1 true yes,$(S3_TRIGGER)),--enable-s3-trigger)

invoke-aws: install ## aws lambda invoke the live alias with BUCKET_NAME/PREFIX, print the manifest URL; DRY_RUN=1
	$(DEPLOY_PY) invoke --bucket '$(BUCKET_NAME)' --prefix '$(PREFIX)'

run-fanout: install ## start the Step Functions fan-out over PREFIXES="a/ b/"; DRY_RUN=1 prints
	$(DEPLOY_PY) run-fanout $(PREFIXES)

rollback: install ## point the live alias at the previous version (TO_VERSION=n for a given one); DRY_RUN=1
	$(DEPLOY_PY) rollback $(if $(TO_VERSION),--to-version $(TO_VERSION))

s3-trigger: install ## add the *.pdf-under-PREFIX notification to BUCKET_NAME (after deploy S3_TRIGGER=1); DRY_RUN=1
	$(DEPLOY_PY) s3-trigger --bucket '$(BUCKET_NAME)' --prefix '$(PREFIX)'
