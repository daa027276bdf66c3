// http.go - a Go net/http "hello" server, the peer of examples/httpd.c for
// bench/compare-io (wrk against both, and resident memory per idle
// keep-alive connection).
//
// Usage: http [--port N]     (default 8080; 0 picks a free port)
//
// It prints "http: listening on http://127.0.0.1:N/" (as httpd prints
// "httpd: listening on ...") and serves until killed:
//
//	GET / (or HEAD /)   200, "Hello, World!\n"
//	anything else       404, "404 Not Found\n"
//
// Why the comparison is fair: the response is byte for byte the one of
// examples/httpd.c except for the order of the two headers (Content-Type,
// Content-Length; no Date header: httpd sends none), keep-alive as in
// HTTP/1.1, and the same protections httpd has: a 10 s limit on reading a
// request head, a 30 s idle timeout, a cap on the head size (8 KiB;
// net/http adds 4 KiB of slack).  One goroutine per connection, as httpd
// has one task per connection; GOMAXPROCS is the number of CPUs, as
// libcsp's worker count.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

const hello = "Hello, World!\n"

func handle(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Date"] = nil // httpd sends no Date header
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.URL.Path != "/" || (r.Method != "GET" && r.Method != "HEAD") {
		h.Set("Content-Length", "14")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "404 Not Found\n")
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(hello)))
	io.WriteString(w, hello)
}

func main() {
	port := 8080
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		if args[i] == "--port" && i+1 < len(args) {
			p, err := strconv.Atoi(args[i+1])
			if err != nil {
				fmt.Fprintln(os.Stderr, "usage: http [--port N]")
				os.Exit(2)
			}
			port = p
			i++
		} else {
			fmt.Fprintln(os.Stderr, "usage: http [--port N]")
			os.Exit(2)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		fmt.Fprintf(os.Stderr, "http: cannot listen on port %d: %v\n", port, err)
		os.Exit(1)
	}
	fmt.Printf("http: listening on http://127.0.0.1:%d/\n", l.Addr().(*net.TCPAddr).Port)
	srv := &http.Server{
		Handler:           http.HandlerFunc(handle),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    8192,
	}
	if err := srv.Serve(l); err != nil {
		fmt.Fprintln(os.Stderr, "http:", err)
		os.Exit(1)
	}
}
