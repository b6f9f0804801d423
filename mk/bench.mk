# Benchmarks (issue 6 "Scale and speed"). Not part of `make test`: timings need
# a quiet machine, and the million-key scan takes minutes.
#   make bench                      presign rates, then scans of 1k/10k/100k keys
#   BENCH_MAX=1000000 make bench    ... and of 1M keys
#   BENCH_TIME_CAP=120 make bench   seconds a single scan run may take (default 60)
#   make bench RECORD=1             write the committed bench/results/*.json and docs/graphs/bench-*.svg
#                                   (default: bench/out/, ignored by git)
.PHONY: bench bench-presign bench-scan presign-stress

##@ Bench and stress

bench: install ## run the benchmarks into bench/out/ (RECORD=1: update bench/results/ and the site's graphs)
	$(PY) bench/presign_bench.py
	$(PY) bench/scan_bench.py
	$(MAKE) --no-print-directory presign-stress

bench-presign: install ## presigned URLs/s on one core: botocore vs aiobotocore vs presign.py
	$(PY) bench/presign_bench.py

bench-scan: install ## scan time, peak RSS and /tmp vs N against the S3 stand-in (BENCH_MAX=1000000 for 1M)
	$(PY) bench/scan_bench.py

presign-stress: install ## presign.py vs botocore with thousands of hypothesis examples per property
	HYPOTHESIS_PROFILE=thorough $(PY) -m pytest -q -p no:cacheprovider -n 2 tests/test_presign.py -k matches_botocore
