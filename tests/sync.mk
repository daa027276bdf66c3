## tests/sync.mk - sync primitives, tasks and scheduler, errors, deadlock.
