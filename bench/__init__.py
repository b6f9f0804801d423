"""Benchmarks (make bench): presigning, scanning, and the S3 stand-in they run against."""
