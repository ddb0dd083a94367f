// Command outside is the client side of bench/scripts/outside.sh: what a user
// of a goangel service sees, measured from another process over loopback,
// bounded in count and time, never retrying.
//
//	outside respawn -addr 127.0.0.1:PORT [-n 200] [-pause 10ms]
//	    crashes a life n times (GET /crash: the life answers its id, then
//	    ends) and times each crash to the first answer of the crashed
//	    instance's next life (GET /life polled on new connections); prints
//	    one line of key=value fields
//	    (-trace FILE: the client's side of the respawn trace)
//	outside trace -server FILE -client FILE
//	    lines up benchapp's trace (BENCHAPP_TRACE=FILE) with the client's:
//	    the median and p99 of each step of the respawn path, counted from
//	    the /crash handler's call of App.Crash
//	outside rtt -addr 127.0.0.1:PORT [-n 1000]
//	    times GET /life on new connections, one after the other (the floor
//	    of the respawn figure)
//	outside wait -addr 127.0.0.1:PORT [-timeout 30s] [-tls]
//	    waits until GET / answers 200
//	outside freeport
//	    prints a free loopback TCP port
//	outside cert -dir DIR
//	    writes a self-signed certificate for 127.0.0.1 to DIR/cert.pem and
//	    DIR/key.pem
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/goangel/angel/internal/loadclient"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "respawn":
		err = respawnCmd(args)
	case "trace":
		err = traceCmd(args)
	case "rtt":
		err = rttCmd(args)
	case "wait":
		err = waitCmd(args)
	case "freeport":
		err = freeport()
	case "cert":
		err = certCmd(args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "outside:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: outside respawn|wait|freeport|cert [flags] (see the package doc)")
	os.Exit(64)
}

func respawnCmd(args []string) error {
	fs := flag.NewFlagSet("respawn", flag.ExitOnError)
	addr := fs.String("addr", "", "host:port of a benchapp")
	n := fs.Int("n", 200, "crashes to time")
	warm := fs.Int("warm", 10, "crashes before the timed ones (not counted)")
	pause := fs.Duration("pause", 10*time.Millisecond, "wait between two crashes")
	timeout := fs.Duration("timeout", 5*time.Second, "the longest one crash may take to its new life's first answer")
	trace := fs.String("trace", "", "write the client's side of the respawn trace to this file")
	fs.Parse(args)
	if *addr == "" || *n < 1 {
		return errors.New("respawn: give -addr HOST:PORT of a running benchapp and -n ≥ 1")
	}
	c := &client{addr: *addr, timeout: *timeout}
	if *trace != "" {
		f, err := os.Create(*trace)
		if err != nil {
			return err
		}
		defer f.Close()
		w := bufio.NewWriter(f)
		defer w.Flush()
		c.trace = w
	}
	rtt, err := c.rtt(200)
	if err != nil {
		return err
	}
	var fromAnswer, fromSend []time.Duration
	polls := 0
	for i := range *warm + *n {
		time.Sleep(*pause)
		s, a, p, err := c.crashOnce()
		if err != nil {
			return fmt.Errorf("crash %d: %w", i+1, err)
		}
		if i >= *warm {
			fromAnswer, fromSend, polls = append(fromAnswer, a), append(fromSend, s), polls+p
		}
	}
	fmt.Printf("n=%d p50-µs=%.1f p99-µs=%.1f max-µs=%.1f send-p50-µs=%.1f send-p99-µs=%.1f polls=%.2f rtt-p50-µs=%.1f rtt-p99-µs=%.1f\n",
		*n, us(q(fromAnswer, 0.5)), us(q(fromAnswer, 0.99)), us(q(fromAnswer, 1)), us(q(fromSend, 0.5)), us(q(fromSend, 0.99)),
		float64(polls)/float64(*n), us(q(rtt, 0.5)), us(q(rtt, 0.99)))
	return nil
}

// crashOnce crashes the life that answers GET /crash and polls GET /life
// until the crashed instance's next life answers. It returns the time from
// sending /crash and from reading its answer (the life ends after it) to that
// first answer, and the polls it took.
func (c *client) crashOnce() (fromSend, fromAnswer time.Duration, polls int, err error) {
	send := time.Now()
	id, err := c.get("/crash")
	if err != nil {
		return 0, 0, 0, err
	}
	answered := time.Now()
	c.step(send, "client-send", id)
	c.step(answered, "client-answer", id)
	inst, _, ok := strings.Cut(id, ".")
	if !ok {
		return 0, 0, 0, fmt.Errorf("GET /crash answered %q, want INSTANCE.LIFE: is this a benchapp?", id)
	}
	for {
		sent := time.Now()
		got, err := c.get("/life")
		polls++
		if err != nil {
			return 0, 0, polls, fmt.Errorf("GET /life after the crash of %s: %w", id, err)
		}
		if i, _, _ := strings.Cut(got, "."); i == inst && got != id {
			now := time.Now()
			c.step(sent, "client-poll-sent", got)
			c.step(now, "client-new-answer", got)
			return now.Sub(send), now.Sub(answered), polls, nil
		}
		if time.Since(answered) > c.timeout {
			return 0, 0, polls, fmt.Errorf("instance %s had no new life %v after the crash of life %s", inst, c.timeout, id)
		}
	}
}

func rttCmd(args []string) error {
	fs := flag.NewFlagSet("rtt", flag.ExitOnError)
	addr := fs.String("addr", "", "host:port")
	n := fs.Int("n", 1000, "requests")
	fs.Parse(args)
	rtt, err := (&client{addr: *addr, timeout: 5 * time.Second}).rtt(*n)
	if err != nil {
		return err
	}
	fmt.Printf("n=%d rtt-p50-µs=%.1f rtt-p99-µs=%.1f\n", *n, us(q(rtt, 0.5)), us(q(rtt, 0.99)))
	return nil
}

// rtt times n GET /life on new connections, one after the other: the floor
// of the respawn figure (its last poll is one of them).
func (c *client) rtt(n int) ([]time.Duration, error) {
	var rtt []time.Duration
	for range n {
		t := time.Now()
		if _, err := c.get("/life"); err != nil {
			return nil, err
		}
		rtt = append(rtt, time.Since(t))
	}
	return rtt, nil
}

type client struct {
	addr    string
	timeout time.Duration
	trace   *bufio.Writer // nil: no trace
}

func (c *client) step(t time.Time, what, id string) {
	if c.trace != nil {
		fmt.Fprintf(c.trace, "%d %s %s\n", t.UnixNano(), what, id)
	}
}

// get sends one GET on a new connection (rawGet) and returns the body of a
// 200 answer; it never retries.
func (c *client) get(path string) (string, error) {
	status, body, err := rawGet(c.addr, path, c.timeout)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", path, err)
	}
	if status != 200 {
		return "", fmt.Errorf("GET %s: status %d", path, status)
	}
	return body, nil
}

func q(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func waitCmd(args []string) error {
	fs := flag.NewFlagSet("wait", flag.ExitOnError)
	addr := fs.String("addr", "", "host:port")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait")
	useTLS := fs.Bool("tls", false, "the server speaks TLS")
	fs.Parse(args)
	deadline := time.Now().Add(*timeout)
	var last error
	for time.Now().Before(deadline) {
		var a loadclient.Answer
		if *useTLS {
			a, last = tlsGet(*addr)
		} else {
			a, last = loadclient.Get(*addr, "/", time.Second)
		}
		if last == nil && a.Status == 200 {
			return nil
		}
		if last == nil {
			last = fmt.Errorf("status %d", a.Status)
		}
		time.Sleep(20 * time.Millisecond) // a server starting up: poll gently
	}
	return fmt.Errorf("wait: %s did not answer GET / with 200 within %v: %v", *addr, *timeout, last)
}

// tlsGet sends GET / over TLS (the self-signed certificate of cert).
func tlsGet(addr string) (loadclient.Answer, error) {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("https://" + addr + "/")
	if err != nil {
		return loadclient.Answer{}, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return loadclient.Answer{Status: resp.StatusCode}, nil
}

// traceCmd lines up the two traces of one respawn run. Every crash of life
// I.L is followed by one new life I.L' of the same instance: the client's
// client-new-answer names it. Each step's time is counted from the crash
// step (the /crash handler calling App.Crash, server clock = client clock:
// one machine).
func traceCmd(args []string) error {
	fs := flag.NewFlagSet("trace", flag.ExitOnError)
	server := fs.String("server", "", "benchapp's BENCHAPP_TRACE file")
	clientF := fs.String("client", "", "outside respawn's -trace file")
	fs.Parse(args)
	steps := map[string]map[string]int64{} // step -> id -> unix ns
	var order []string
	for _, path := range []string{*server, *clientF} {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("trace: %w (give -server and -client)", err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var ns int64
			var what, id string
			if _, err := fmt.Sscan(line, &ns, &what, &id); err != nil {
				return fmt.Errorf("trace: %s: bad line %q", path, line)
			}
			if steps[what] == nil {
				steps[what] = map[string]int64{}
				order = append(order, what)
			}
			steps[what][id] = ns
		}
	}
	// Pair each crashed life with its successor: client-send and
	// client-answer name the crashed life, client-poll-sent and
	// client-new-answer the new one.
	type crash struct{ old, new string }
	var crashes []crash
	for old := range steps["client-answer"] {
		inst, _, _ := strings.Cut(old, ".")
		var life int
		fmt.Sscanf(old[len(inst)+1:], "%d", &life)
		best, bestLife := "", 0
		for id := range steps["client-new-answer"] {
			i, _, _ := strings.Cut(id, ".")
			var l int
			fmt.Sscanf(id[len(i)+1:], "%d", &l)
			if i == inst && l > life && (best == "" || l < bestLife) {
				best, bestLife = id, l
			}
		}
		if best != "" {
			crashes = append(crashes, crash{old, best})
		}
	}
	onOld := map[string]bool{"crash": true, "ended": true, "respawning": true, "client-send": true, "client-answer": true}
	type row struct {
		what     string
		p50, p99 time.Duration
		n        int
	}
	var rows []row
	for _, what := range order {
		var ds []time.Duration
		for _, c := range crashes {
			t0, ok := steps["crash"][c.old]
			id := c.new
			if onOld[what] {
				id = c.old
			}
			t, ok2 := steps[what][id]
			if ok && ok2 {
				ds = append(ds, time.Duration(t-t0))
			}
		}
		if len(ds) > 0 {
			rows = append(rows, row{what, q(ds, 0.5), q(ds, 0.99), len(ds)})
		}
	}
	slices.SortFunc(rows, func(a, b row) int { return int(a.p50 - b.p50) })
	fmt.Printf("%d crashes; µs from the /crash handler's App.Crash call\n%-20s %8s %8s %5s\n", len(crashes), "step", "p50", "p99", "n")
	for _, r := range rows {
		fmt.Printf("%-20s %8.1f %8.1f %5d\n", r.what, us(r.p50), us(r.p99), r.n)
	}
	return nil
}

func freeport() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	return nil
}

func certCmd(args []string) error {
	fs := flag.NewFlagSet("cert", flag.ExitOnError)
	dir := fs.String("dir", "", "directory to write cert.pem and key.pem to")
	fs.Parse(args)
	if *dir == "" {
		return errors.New("cert: give -dir DIR")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(*dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
}
