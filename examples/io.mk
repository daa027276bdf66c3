## examples/io.mk - network and cancellation examples (echo, httpd, timeout).
noinst_PROGRAMS += examples/echo examples/httpd examples/timeout
examples_echo_LDADD = $(LDADD_CSP)
examples_httpd_LDADD = $(LDADD_CSP)
examples_timeout_LDADD = $(LDADD_CSP)
