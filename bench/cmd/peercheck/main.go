// Command peercheck measures one server of the peer comparison
// (bench/scripts/peers.sh) the way a user sees it, with a strict client that
// never retries (internal/loadclient), over loopback only and bounded in time:
//
//	peercheck -mode memory -workers 16 -procs 17 -- gunicorn … -b 127.0.0.1:{port} -w {workers} app:app
//	peercheck -mode crash  -workers 2  -procs 3  -- puma -w {workers} -b tcp://127.0.0.1:{port} config.ru
//
// It starts the command in a process group of its own on a free port ({port}
// and {workers} in the arguments are replaced; PORT and WORKERS are set in its
// environment), waits until it answers and its process tree has -procs
// processes, measures, and stops the whole group. The app must answer "/"
// (200), "/id" (which worker answered: a process id, or goangel's
// instance.life) and "/crash" (ends the worker that answers it).
//
// memory: idle RSS of the whole process tree, 2s after every worker is up.
//
// crash: crash-to-serving time (from sending /crash to the first answer of a
// worker whose id was never seen before, polled on new connections), 5 times;
// then, for keep-alive and new-connection load (8 clients), -load of load
// while /crash is sent every -every: failed requests per crash, req/s against
// the same load without crashes (run before and after, their mean), and
// whether the process was still up.
//
// It prints one line of key=value fields.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/goangel/angel/internal/loadclient"
)

func main() {
	mode := flag.String("mode", "", "memory or crash")
	workers := flag.Int("workers", 2, "workers (instances) to start: replaces {workers}")
	procs := flag.Int("procs", 0, "processes the tree has once every worker is up (default workers+1)")
	load := flag.Duration("load", 5*time.Second, "crash mode: how long each load runs")
	every := flag.Duration("every", 500*time.Millisecond, "crash mode: time between two crashes under load")
	logPath := flag.String("log", os.DevNull, "file for the server's output")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: peercheck -mode memory|crash [flags] -- command args… (see the package doc)")
		flag.PrintDefaults()
	}
	flag.Parse()
	if (*mode != "memory" && *mode != "crash") || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(64)
	}
	if *procs <= 0 {
		*procs = *workers + 1
	}
	s, err := start(flag.Args(), *workers, *logPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "peercheck:", err)
		os.Exit(1)
	}
	defer s.stop()
	if err := s.waitUp(*procs, 60*time.Second); err != nil {
		s.stop()
		fmt.Fprintf(os.Stderr, "peercheck: %v (server log: %s)\n", err, *logPath)
		os.Exit(1)
	}
	var out string
	if *mode == "memory" {
		time.Sleep(2 * time.Second) // idle: let start-up garbage settle
		rss, n := treeRSS(s.cmd.Process.Pid)
		out = fmt.Sprintf("rss_mib=%.1f procs=%d", float64(rss)/(1<<20), n)
	} else {
		out, err = s.crash(*load, *every)
		if err != nil {
			s.stop()
			fmt.Fprintf(os.Stderr, "peercheck: %v (server log: %s)\n", err, *logPath)
			os.Exit(1)
		}
	}
	fmt.Println(out)
}

type server struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{} // closed when the process has exited
}

func start(argv []string, workers int, logPath string) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	args := make([]string, len(argv))
	for i, a := range argv {
		a = strings.ReplaceAll(a, "{port}", port)
		args[i] = strings.ReplaceAll(a, "{workers}", strconv.Itoa(workers))
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "PORT="+port, "WORKERS="+strconv.Itoa(workers))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", args[0], err)
	}
	s := &server{cmd: cmd, addr: "127.0.0.1:" + port, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		logf.Close()
		close(s.done)
	}()
	return s, nil
}

func (s *server) alive() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// stop ends the whole process group: SIGTERM, then SIGKILL after 10s.
func (s *server) stop() {
	pgid := s.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	<-s.done
}

// waitUp waits until "/" answers 200 and the process tree has procs processes.
func (s *server) waitUp(procs int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if !s.alive() {
			return fmt.Errorf("%s exited before it served", s.cmd.Path)
		}
		_, _, err := get(s.addr, "/", time.Second)
		_, n := treeRSS(s.cmd.Process.Pid)
		if err == nil && n >= procs {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not serving with %d processes after %v (last error: %v, processes: %d)", procs, timeout, err, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// get sends one request on a new connection and returns status and body.
func get(addr, path string, timeout time.Duration) (int, string, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

// crash runs the crash measurements (see the package doc).
func (s *server) crash(load, every time.Duration) (string, error) {
	seen := map[string]bool{}
	// Learn the ids of the workers up now (accept order is the kernel's for
	// some peers: poll a while).
	for range 200 {
		if _, id, err := get(s.addr, "/id", time.Second); err == nil {
			seen[id] = true
		}
	}
	var respawns []time.Duration
	for range 5 {
		t0 := time.Now()
		get(s.addr, "/crash", 2*time.Second) // peers end the worker before answering
		for {
			st, id, err := get(s.addr, "/id", 2*time.Second)
			if err == nil && st == http.StatusOK && !seen[id] {
				respawns = append(respawns, time.Since(t0))
				seen[id] = true
				break
			}
			if err == nil {
				seen[id] = true
			}
			if time.Since(t0) > 20*time.Second {
				return "", errors.New("no new worker answered within 20s of a crash")
			}
		}
		time.Sleep(300 * time.Millisecond)
		for range 50 { // the other workers' ids, should one have changed
			if _, id, err := get(s.addr, "/id", time.Second); err == nil {
				seen[id] = true
			}
		}
	}
	slices.Sort(respawns)
	fields := []string{
		fmt.Sprintf("respawn_ms=%.2f", ms(respawns[len(respawns)/2])),
		fmt.Sprintf("respawn_min_ms=%.2f", ms(respawns[0])),
		fmt.Sprintf("respawn_max_ms=%.2f", ms(respawns[len(respawns)-1])),
	}
	for _, ka := range []bool{true, false} {
		conn := "ka"
		if !ka {
			conn = "new"
		}
		cfg := loadclient.Config{Addr: s.addr, Path: "/", Workers: 8, KeepAlive: ka, Timeout: 5 * time.Second}
		// The load without crashes runs before and after the one with
		// crashes (their mean is the baseline), so that warm-up and drift
		// do not favour either.
		base1 := runLoad(cfg, load, 0, s.addr)
		crashed := runLoad(cfg, load, every, s.addr)
		base2 := runLoad(cfg, load, 0, s.addr)
		baseRPS := (base1.rps + base2.rps) / 2
		baseFailed := base1.res.Failed() + base2.res.Failed()
		up := s.alive()
		if up {
			if _, _, err := get(s.addr, "/", 5*time.Second); err != nil {
				up = false
			}
		}
		fields = append(fields,
			fmt.Sprintf("%s_crashes=%d", conn, crashed.crashes),
			fmt.Sprintf("%s_failed=%d", conn, crashed.res.Failed()),
			fmt.Sprintf("%s_failed_per_crash=%.1f", conn, float64(crashed.res.Failed())/float64(max(1, crashed.crashes))),
			fmt.Sprintf("%s_rps_base=%.0f", conn, baseRPS),
			fmt.Sprintf("%s_rps_crash=%.0f", conn, crashed.rps),
			fmt.Sprintf("%s_base_failed=%d", conn, baseFailed),
			fmt.Sprintf("%s_up=%v", conn, up),
			fmt.Sprintf("%s_kinds=%s", conn, kinds(crashed.res)),
		)
		fmt.Fprintf(os.Stderr, "peercheck: %s load: without crashes %v, then %v; with %d crashes %v\n", conn, base1.res, base2.res, crashed.crashes, crashed.res)
		if !up {
			break
		}
		time.Sleep(time.Second) // let the last worker come back
	}
	return strings.Join(fields, " "), nil
}

type loadRun struct {
	res     *loadclient.Result
	rps     float64
	crashes int
}

// runLoad runs cfg for d; with every > 0 it sends /crash every that often.
func runLoad(cfg loadclient.Config, d, every time.Duration, addr string) loadRun {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	crashes := make(chan int, 1)
	go func() {
		n := 0
		if every > 0 {
			t := time.NewTicker(every)
			defer t.Stop()
		loop:
			for {
				select {
				case <-t.C:
					get(addr, "/crash", time.Second)
					n++
				case <-ctx.Done():
					break loop
				}
			}
		}
		crashes <- n
	}()
	t0 := time.Now()
	res := loadclient.Run(ctx, cfg)
	el := time.Since(t0)
	return loadRun{res: res, rps: float64(res.Requests) / el.Seconds(), crashes: <-crashes}
}

// kinds lists the failed requests of res by kind: "reset:52,timeout:5"
// ("none" when none failed).
func kinds(res *loadclient.Result) string {
	var parts []string
	for k := loadclient.Refused; k <= loadclient.Other; k++ {
		if n := res.Count(k); n > 0 {
			parts = append(parts, strings.ReplaceAll(k.String(), " ", "-")+":"+strconv.Itoa(n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// treeRSS sums VmRSS over pid and its descendants; it returns bytes and the
// number of processes.
func treeRSS(root int) (int64, int) {
	children := map[int][]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces, so cut after the last ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fs := strings.Fields(s[i+1:])
		if len(fs) < 2 {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		ppid, _ := strconv.Atoi(fs[1])
		children[ppid] = append(children[ppid], pid)
	}
	var total int64
	n := 0
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		n++
		total += vmRSS(p)
		queue = append(queue, children[p]...)
	}
	return total, n
}

func vmRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
