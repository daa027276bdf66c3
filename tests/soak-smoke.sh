#!/bin/sh
# soak-smoke.sh - a 3-second run of tests/soak for `make check`: every
# subsystem of the soak does a few hundred rounds with all its checks
# (values reconciled, locks, timers, contexts, task churn); the RSS plateau
# test needs a long run, so only the peak-RSS ceiling applies here.
# `make soak` is the real thing (SOAK_SECONDS, default 600).
prog=${SOAK_PROGRAM:-tests/soak}
exec "$prog" --seconds=3
