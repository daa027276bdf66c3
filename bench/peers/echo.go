// echo.go - TCP echo round trips over loopback with goroutines and package
// net: the Go twin of bench/echo_bench.c, same options, same output lines,
// run side by side with it by bench/compare-io.
//
// Usage:
//
//	echo [--conns=1,100,10000] [--secs=S] [--warmup=S] [--size=B] [--port=P]
//	echo --server [--buf=B]           listen on 127.0.0.1 (a free port),
//	                                  print "port N", serve until killed
//	                                  (reading into B bytes, default 4096)
//	echo --idle=N --port=P [--http] [--hold=S]
//
// For each N it starts a fresh server process (this program with
// --server, or uses the one on --port=P), opens N connections (a goroutine
// each, at most 64 connects in flight), and lets every connection do round
// trips for a warm-up (default 1 s) and a measured period (default 5 s):
// write a SIZE-byte message (default 64), read the SIZE-byte echo (io.ReadFull),
// compare it byte for byte.  Durations are multiplied by CSP_BENCH_SCALE.
// One line per N:
//
//	echo conns=N size=B secs=S round_trips=R rtt_per_s=X p50_us=A p99_us=B cpu_us_per_rt=C
//
// (one line; C is the CPU time of client and server processes during the
// measured period per round trip, from /proc/PID/stat, as in echo_bench.c)
// The server is one goroutine per connection: Read into a buffer of 4096
// bytes (--buf), Write what came.  A wrong byte or failed call exits 1.  --idle
// opens N connections, does one round trip on each (an echo, or with
// --http one GET / keep-alive request), prints "ready N" and keeps them open
// until killed (at most --hold seconds).
//
// Why the comparison is fair: see bench/echo_bench.c; the message pattern,
// the histogram (32 log-linear buckets per power of two, one atomic add per
// round trip), the clock reads and the process structure are the same.
// Go sets TCP_NODELAY and raises RLIMIT_NOFILE by itself; GOMAXPROCS is the
// number of CPUs, as libcsp's worker count.
package main

import (
	"bytes"
	"fmt"
	"io"
	"math/bits"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	maxSize          = 4096
	connectsInFlight = 64
	sub              = 32
	nbuckets         = sub * 64
)

var hist [nbuckets]uint64

func bucketOf(v uint64) int {
	if v < 2*sub {
		return int(v)
	}
	msb := 63 - bits.LeadingZeros64(v)
	shift := msb - 5
	return sub*shift + int(v>>uint(shift))
}

func bucketMid(b int) float64 {
	if b < 2*sub {
		return float64(b)
	}
	shift := uint(b/sub - 1)
	lo := uint64(b%sub+sub) << shift
	return float64(lo) + float64((uint64(1)<<shift)-1)/2.0
}

func quantileUs(total uint64, q float64) float64 {
	rank := uint64(float64(total) * q)
	var seen uint64
	for b := 0; b < nbuckets; b++ {
		seen += atomic.LoadUint64(&hist[b])
		if seen > rank {
			return bucketMid(b) / 1000.0
		}
	}
	return 0
}

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "echo: "+format+"\n", a...)
	os.Exit(1)
}

// CPU seconds (user + system) a process used so far, from /proc/PID/stat
// (fields 14 and 15, in clock ticks of 1/100 s); pid 0 is this process.
func cpuSeconds(pid int) float64 {
	path := "/proc/self/stat"
	if pid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/stat"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return float64(ut+st) / 100
}

// ---- the server ----

var serverBuf = maxSize // --buf: the server's read buffer

func echoConn(c net.Conn) {
	buf := make([]byte, serverBuf)
	for {
		n, err := c.Read(buf)
		if err != nil {
			break
		}
		if _, err := c.Write(buf[:n]); err != nil {
			break
		}
	}
	c.Close()
}

func listenAny() net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		die("listen: %v", err)
	}
	return l
}

func serve(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Temporary() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return
		}
		go echoConn(c)
	}
}

func spawnServer() (*exec.Cmd, int) {
	cmd := exec.Command("/proc/self/exe", "--server")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		die("pipe: %v", err)
	}
	if err := cmd.Start(); err != nil {
		die("start the server: %v", err)
	}
	var line [64]byte
	n := 0
	for n < len(line) && !bytes.Contains(line[:n], []byte("\n")) {
		k, err := out.Read(line[n:])
		if err != nil {
			die("the server did not start: %v", err)
		}
		n += k
	}
	var port int
	if _, err := fmt.Sscanf(string(line[:n]), "port %d", &port); err != nil {
		die("the server said %q", line[:n])
	}
	return cmd, port
}

// ---- the clients ----

const (
	warmup = iota
	measure
	stop
)

var (
	port   int
	size   = 64
	isHTTP bool
	tokens chan struct{}
	phase  int32
	errs   int64
)

func fail(id int, what string, err error) {
	if atomic.AddInt64(&errs, 1) <= 5 {
		if err != nil {
			fmt.Fprintf(os.Stderr, "echo: connection %d: %s: %v\n", id, what, err)
		} else {
			fmt.Fprintf(os.Stderr, "echo: connection %d: %s\n", id, what)
		}
	}
}

func dial(id int) net.Conn {
	tokens <- struct{}{}
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 30*time.Second)
	<-tokens
	if err != nil {
		fail(id, "connect", err)
		return nil
	}
	return c
}

// The message of round trip seq on connection id (the same xorshift as C).
func fill(m []byte, id int, seq uint64) {
	x := (uint64(id) << 32) ^ seq ^ 0x9e3779b97f4a7c15
	for i := range m {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		m[i] = byte(x)
	}
}

func client(id int, connected, finished *sync.WaitGroup, start chan struct{}) {
	defer finished.Done()
	c := dial(id)
	connected.Done()
	if c == nil {
		return
	}
	defer c.Close()
	<-start
	out := make([]byte, size)
	in := make([]byte, size)
	// At least one round trip each, however late the goroutine ran (as in C).
	for seq := uint64(0); seq == 0 || atomic.LoadInt32(&phase) != stop; seq++ {
		fill(out, id, seq)
		t0 := time.Now()
		if _, err := c.Write(out); err != nil {
			fail(id, "write", err)
			return
		}
		if _, err := io.ReadFull(c, in); err != nil {
			fail(id, "read", err)
			return
		}
		d := time.Since(t0)
		if !bytes.Equal(in, out) {
			fail(id, "the echo differs from the message", nil)
			return
		}
		if atomic.LoadInt32(&phase) == measure {
			atomic.AddUint64(&hist[bucketOf(uint64(d))], 1)
		}
	}
}

func oneRun(conns int, secs, warm float64, extPort int) {
	var server *exec.Cmd
	if extPort > 0 {
		port = extPort
	} else {
		server, port = spawnServer()
	}
	for i := range hist {
		atomic.StoreUint64(&hist[i], 0)
	}
	atomic.StoreInt32(&phase, warmup)
	tokens = make(chan struct{}, connectsInFlight)
	start := make(chan struct{})
	var connected, finished sync.WaitGroup
	connected.Add(conns)
	finished.Add(conns)
	for i := 0; i < conns; i++ {
		go client(i, &connected, &finished, start)
	}
	connected.Wait()
	if atomic.LoadInt64(&errs) != 0 {
		os.Exit(1)
	}
	close(start)
	time.Sleep(time.Duration(warm * 1e9))
	cpu0 := cpuSeconds(0)
	if server != nil {
		cpu0 += cpuSeconds(server.Process.Pid)
	}
	t0 := time.Now()
	atomic.StoreInt32(&phase, measure)
	time.Sleep(time.Duration(secs * 1e9))
	atomic.StoreInt32(&phase, stop)
	wall := time.Since(t0).Seconds()
	cpu1 := cpuSeconds(0)
	if server != nil {
		cpu1 += cpuSeconds(server.Process.Pid)
	}
	finished.Wait()
	if server != nil {
		server.Process.Kill()
		server.Wait()
	}
	if n := atomic.LoadInt64(&errs); n != 0 {
		die("%d error(s) with %d connections", n, conns)
	}
	var total uint64
	for i := range hist {
		total += atomic.LoadUint64(&hist[i])
	}
	if total == 0 {
		die("no round trip completed with %d connections", conns)
	}
	fmt.Printf("echo conns=%d size=%d secs=%.3f round_trips=%d rtt_per_s=%.0f p50_us=%.1f p99_us=%.1f cpu_us_per_rt=%.2f\n",
		conns, size, wall, total, float64(total)/wall, quantileUs(total, 0.50), quantileUs(total, 0.99),
		(cpu1-cpu0)*1e6/float64(total))
}

// ---- --idle ----

const get = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n"

func httpOnce(c net.Conn, id int) {
	if _, err := c.Write([]byte(get)); err != nil {
		fail(id, "write", err)
		return
	}
	buf := make([]byte, 0, 1024)
	tmp := make([]byte, 1024)
	for {
		s := string(buf)
		if end := strings.Index(s, "\r\n\r\n"); end >= 0 {
			if i := strings.Index(strings.ToLower(s), "\r\ncontent-length:"); i >= 0 {
				v := strings.TrimSpace(strings.SplitN(s[i+17:], "\r\n", 2)[0])
				if cl, err := strconv.Atoi(v); err == nil && len(s) >= end+4+cl {
					if !strings.HasPrefix(s, "HTTP/1.1 200") {
						fail(id, "not 200", nil)
					}
					return
				}
			}
		}
		if len(buf) >= 1023 {
			fail(id, "response too long", nil)
			return
		}
		n, err := c.Read(tmp[:1023-len(buf)])
		if err != nil {
			fail(id, "read", err)
			return
		}
		buf = append(buf, tmp[:n]...)
	}
}

func idleMain(conns int, hold float64) {
	tokens = make(chan struct{}, connectsInFlight)
	var wg sync.WaitGroup
	var mu sync.Mutex
	keep := make([]net.Conn, 0, conns) // open until the process ends
	wg.Add(conns)
	for i := 0; i < conns; i++ {
		go func(id int) {
			defer wg.Done()
			c := dial(id)
			if c == nil {
				return
			}
			mu.Lock()
			keep = append(keep, c)
			mu.Unlock()
			if isHTTP {
				httpOnce(c, id)
				return
			}
			out := make([]byte, 64)
			in := make([]byte, 64)
			fill(out, id, 0)
			if _, err := c.Write(out); err != nil {
				fail(id, "write", err)
			} else if _, err := io.ReadFull(c, in); err != nil {
				fail(id, "read", err)
			} else if !bytes.Equal(in, out) {
				fail(id, "the echo differs from the message", nil)
			}
		}(i)
	}
	wg.Wait()
	if atomic.LoadInt64(&errs) != 0 {
		os.Exit(1)
	}
	fmt.Printf("ready %d\n", conns)
	time.Sleep(time.Duration(hold * 1e9))
	os.Exit(0)
}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: echo [--conns=1,100,10000] [--secs=S] [--warmup=S] [--size=B] [--port=P]\n"+
		"       echo --server [--buf=B]\n"+
		"       echo --idle=N --port=P [--http] [--hold=S]\n")
	os.Exit(2)
}

func main() {
	conns := []int{1, 100, 10000}
	secs, warm := 5.0, 1.0
	server := false
	idle, hold := 0, 120.0
	extPort := 0
	scale := 1.0
	if s, err := strconv.ParseFloat(os.Getenv("CSP_BENCH_SCALE"), 64); err == nil && s > 0 {
		scale = s
	}
	atof := func(s string) float64 {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			usage()
		}
		return v
	}
	atoi := func(s string) int {
		v, err := strconv.Atoi(s)
		if err != nil {
			usage()
		}
		return v
	}
	for _, a := range os.Args[1:] {
		switch {
		case a == "--server":
			server = true
		case a == "--http":
			isHTTP = true
		case strings.HasPrefix(a, "--conns="):
			conns = conns[:0]
			for _, f := range strings.Split(a[8:], ",") {
				n := atoi(f)
				if n <= 0 {
					usage()
				}
				conns = append(conns, n)
			}
		case strings.HasPrefix(a, "--secs="):
			secs = atof(a[7:])
		case strings.HasPrefix(a, "--warmup="):
			warm = atof(a[9:])
		case strings.HasPrefix(a, "--size="):
			size = atoi(a[7:])
			if size <= 0 || size > maxSize {
				usage()
			}
		case strings.HasPrefix(a, "--buf="):
			serverBuf = atoi(a[6:])
			if serverBuf <= 0 || serverBuf > maxSize {
				usage()
			}
		case strings.HasPrefix(a, "--port="):
			extPort = atoi(a[7:])
		case strings.HasPrefix(a, "--idle="):
			idle = atoi(a[7:])
		case strings.HasPrefix(a, "--hold="):
			hold = atof(a[7:])
		default:
			usage()
		}
	}
	secs *= scale
	warm *= scale
	switch {
	case server:
		l := listenAny()
		fmt.Printf("port %d\n", l.Addr().(*net.TCPAddr).Port)
		serve(l)
	case idle > 0:
		if extPort <= 0 {
			usage()
		}
		port = extPort
		idleMain(idle, hold)
	default:
		for _, n := range conns {
			oneRun(n, secs, warm, extPort)
		}
	}
}
