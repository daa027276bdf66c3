## bench/io.mk - the I/O benchmarks (issue 8).
