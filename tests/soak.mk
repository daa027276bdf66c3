## tests/soak.mk - the long mixed workload behind `make soak` (issue 5).
