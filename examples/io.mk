## examples/io.mk - network and cancellation examples (echo, httpd, timeout).
