## tests/fuzz.mk - the libFuzzer target and `make fuzz` (issue 5).
