// Command e2eclient is the client of example/systemd/e2e.sh, run inside the
// container against its loopback: strict load that never retries
// (internal/loadclient), one GET, and a crash loop of one instance.
//
//	e2eclient load -addr 127.0.0.1:3000 -keep-alive 4 -new 2 -body 'Hello, production world!'
//	    runs until SIGTERM or SIGINT, then prints "ok=N failed=M: details"
//	    and exits 1 when a request failed (0 requests is a failure too)
//	e2eclient get URL
//	    prints the status and the body; exits 1 unless the status is 200
//	e2eclient crashloop -addr 127.0.0.1:3000 -admin http://127.0.0.1:9090 -instance 0 -n 12
//	    crashes n lives of instance #0 in a row (GET /crash on a keep-alive
//	    connection one of its lives accepted, as the admin listener's request
//	    counts tell), each a new life; prints the lives it crashed
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/goangel/angel/internal/loadclient"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: e2eclient load|get|crashloop [flags]")
		os.Exit(64)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "load":
		err = load(args)
	case "get":
		err = get(args)
	case "crashloop":
		err = crashLoop(args)
	default:
		err = fmt.Errorf("unknown command %q: want load, get or crashloop", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2eclient:", err)
		os.Exit(1)
	}
}

func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:3000", "host:port")
	keepAlive := fs.Int("keep-alive", 4, "keep-alive workers")
	newConn := fs.Int("new", 2, "workers opening a connection per request")
	body := fs.String("body", "Hello, production world!", "the body every answer must have")
	fs.Parse(args)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	cfg := loadclient.Config{Addr: *addr, Path: "/", Body: *body}
	ka, nc := cfg, cfg
	ka.Workers, ka.KeepAlive = *keepAlive, true
	nc.Workers = *newConn
	a, b := loadclient.Start(ctx, ka), loadclient.Start(ctx, nc)
	ra, rb := a.Wait(), b.Wait()
	ok := ra.Count(loadclient.OK) + rb.Count(loadclient.OK)
	failed := ra.Failed() + rb.Failed()
	fmt.Printf("ok=%d failed=%d: keep-alive %v; new connections %v\n", ok, failed, ra, rb)
	if failed > 0 || ok == 0 {
		return fmt.Errorf("%d requests failed, %d succeeded", failed, ok)
	}
	return nil
}

func get(args []string) error {
	if len(args) != 1 {
		return errors.New("get takes one URL")
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(args[0])
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	fmt.Printf("%d %s\n", resp.StatusCode, b)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", args[0], resp.StatusCode)
	}
	return nil
}

// conn is one keep-alive connection.
type conn struct {
	c  net.Conn
	br *bufio.Reader
}

// get sends one request on the connection and reads the whole answer.
func (k *conn) get(path string) (string, error) {
	k.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(k.c, "GET %s HTTP/1.1\r\nHost: e2e\r\n\r\n", path); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: status %d %q", path, resp.StatusCode, b)
	}
	return string(b), nil
}

// instances is what the admin listener's /instances says of each instance.
type instances struct {
	Instances []struct {
		Number   int    `json:"number"`
		Life     int    `json:"life"`
		State    string `json:"state"`
		Requests uint64 `json:"requests"`
	} `json:"instances"`
}

func readInstances(admin string) (map[int][2]uint64, error) { // number -> life, requests
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(admin + "/instances")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var in instances
	if err := json.NewDecoder(resp.Body).Decode(&in); err != nil {
		return nil, fmt.Errorf("GET %s/instances: %w", admin, err)
	}
	m := map[int][2]uint64{}
	for _, i := range in.Instances {
		if i.State == "serving" {
			m[i.Number] = [2]uint64{uint64(i.Life), i.Requests}
		}
	}
	return m, nil
}

// crashLoop crashes one instance's lives in a row, with no other client
// about: a keep-alive connection stays on the life that accepted it, and
// the admin listener's request counts tell which one that is.
func crashLoop(args []string) error {
	fs := flag.NewFlagSet("crashloop", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:3000", "host:port")
	admin := fs.String("admin", "http://127.0.0.1:9090", "the admin listener")
	instance := fs.Int("instance", 0, "the instance to crash")
	n := fs.Int("n", 12, "how many lives to crash")
	fs.Parse(args)
	deadline := time.Now().Add(2 * time.Minute)
	var lastLife uint64
	for i := 0; i < *n; {
		if time.Now().After(deadline) {
			return fmt.Errorf("crashed %d lives of instance #%d within 2 minutes, want %d", i, *instance, *n)
		}
		before, err := readInstances(*admin)
		if err != nil {
			return err
		}
		c, err := net.DialTimeout("tcp", *addr, 10*time.Second)
		if err != nil {
			return err
		}
		k := &conn{c: c, br: bufio.NewReader(c)}
		if _, err := k.get("/"); err != nil {
			c.Close()
			return err
		}
		// The request is counted when its handler returns, which may
		// follow the answer: wait until one instance counts it (or a life
		// changed meanwhile, and the count says nothing: try again).
		served, life := -1, uint64(0)
		for wait, changed := time.Now().Add(10*time.Second), false; served < 0 && !changed && time.Now().Before(wait); {
			after, err := readInstances(*admin)
			if err != nil {
				c.Close()
				return err
			}
			for num, b := range before {
				a, ok := after[num]
				switch {
				case !ok || a[0] != b[0]:
					changed = true
				case a[1] == b[1]+1:
					served, life = num, a[0]
				}
			}
			if served < 0 && !changed {
				time.Sleep(20 * time.Millisecond)
			}
		}
		if served == *instance && life > lastLife {
			if _, err := k.get("/crash"); err != nil {
				c.Close()
				return fmt.Errorf("crash %d: %w", i+1, err)
			}
			fmt.Printf("crashing instance #%d life %d\n", served, life)
			lastLife = life
			i++
			c.Close()
			// The next connection must find the next life: wait for it.
			for wait := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				now, err := readInstances(*admin)
				if err != nil {
					return err
				}
				if a, ok := now[*instance]; ok && a[0] > lastLife {
					break
				}
				if time.Now().After(wait) {
					return fmt.Errorf("instance #%d: no life after %d serves within 10s", *instance, lastLife)
				}
			}
			continue
		}
		c.Close()
	}
	return nil
}
