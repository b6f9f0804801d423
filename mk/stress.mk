# Reliability (issue 9 "prove nothing hangs, nothing is lost, nothing leaks").
# Included by the Makefile; PY and install come from there. `make test` runs a
# fast slice (tests/tooling/test_faults.py, test_load.py, test_fuzz.py); this is the full run:
#   make stress                   200 fault schedules, 50 concurrent invocations, a long fuzz pass
#                                 (events, CLI arguments, and 400 request sequences over one keep-alive connection)
#   make stress SEED=123          another fault schedule set (each schedule line says how to replay it)
#   python -m reliability.fault_run --seed SEED --only N --verbose    replay one schedule
STRESS_SEED        ?= $(if $(SEED),$(SEED),20261125)
STRESS_SCHEDULES   ?= 200
STRESS_PARALLEL    ?= 4
STRESS_CONCURRENCY ?= 50
STRESS_FUZZ        ?= 1000
STRESS_FUZZ_CLI    ?= 40
STRESS_FUZZ_HTTP   ?= 400
STRESS_FUZZ_HTTP_CLI ?= 20

.PHONY: stress stress-faults stress-load stress-fuzz

##@ Bench and stress

stress: install ## full fault/load/fuzz run (SEED=... replays a fault schedule set); several minutes
	@status=0; \
	$(MAKE) --no-print-directory stress-faults || status=1; \
	$(MAKE) --no-print-directory stress-load || status=1; \
	$(MAKE) --no-print-directory stress-fuzz || status=1; \
	exit $$status

stress-faults: install ## STRESS_SCHEDULES seeded fault schedules through the fault proxy (SEED=...)
	$(PY) -m reliability.fault_run --seed $(STRESS_SEED) --schedules $(STRESS_SCHEDULES) --parallel $(STRESS_PARALLEL)

stress-load: install ## STRESS_CONCURRENCY concurrent invocations through invoke.py serve
	$(PY) -m reliability.load_run --concurrency $(STRESS_CONCURRENCY)

stress-fuzz: install ## hypothesis over events, invoke.py/seed.py arguments, environment values and Invoke API request sequences
	FUZZ_EXAMPLES=$(STRESS_FUZZ) FUZZ_CLI_EXAMPLES=$(STRESS_FUZZ_CLI) FUZZ_HTTP_EXAMPLES=$(STRESS_FUZZ_HTTP) \
	  FUZZ_HTTP_CLI_EXAMPLES=$(STRESS_FUZZ_HTTP_CLI) FUZZ_DERANDOMIZE=0 \
	  $(PY) -m pytest -q -p no:cacheprovider -n 2 -o timeout=1800 tests/function/test_fuzz.py \
	  tests/service/test_invoke_http.py::test_one_keep_alive_connection_answers_each_request_as_a_fresh_connection_does \
	  tests/service/test_invoke_http.py::test_the_same_sequences_through_boto3_succeed_where_they_should \
	  tests/service/test_invoke_http.py::test_the_same_sequences_through_the_aws_cli_succeed_where_they_should
