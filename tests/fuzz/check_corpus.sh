#!/bin/sh
# check_corpus.sh - make check's run of the fuzz target (tests/fuzz/fuzz_chan.c,
# built without libFuzzer): every input of the committed corpus, then
# pseudo-random inputs from a fixed seed (FUZZ_RANDOM_RUNS, FUZZ_SEED).
# A model violation aborts and saves the input as
# tests/fuzz/fuzz_chan-failure.bin.
FUZZ_SAVE=tests/fuzz/fuzz_chan-failure.bin
export FUZZ_SAVE
exec $LOG_RUNNER tests/fuzz/fuzz_chan "${srcdir:-.}/tests/fuzz/corpus"
