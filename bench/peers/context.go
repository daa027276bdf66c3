// context.go - Go's side of the context benchmarks in bench/micro.c:
//   ctx_cancel        ctx, cancel := context.WithCancel(context.Background()); cancel()
//   ctx_child_cancel  the same with a live cancellable parent (the child is
//                     registered with the parent and removed again)
// Output: NAME ns_per_op=... ops=... wall_s=... (the peers' format).
package main

import (
	"context"
	"fmt"
	"os"
	"time"
)

func report(name string, n int, d time.Duration) {
	fmt.Printf("%s ns_per_op=%.2f ops=%d wall_s=%.3f\n", name,
		float64(d.Nanoseconds())/float64(n), n, d.Seconds())
}

func main() {
	n := 2000000
	if len(os.Args) > 1 && os.Args[1] == "--quick" {
		n = 1000
	}
	cancelled := 0
	start := time.Now()
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if ctx.Err() == context.Canceled {
			cancelled++
		}
	}
	report("ctx_cancel", n, time.Since(start))

	parent, pcancel := context.WithCancel(context.Background())
	start = time.Now()
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithCancel(parent)
		cancel()
		if ctx.Err() == context.Canceled {
			cancelled++
		}
	}
	report("ctx_child_cancel", n, time.Since(start))
	pcancel()
	if cancelled != 2*n {
		fmt.Fprintf(os.Stderr, "cancelled %d of %d\n", cancelled, 2*n)
		os.Exit(1)
	}
}
