## tests/io.mk - netpoller, contexts, task dump.
