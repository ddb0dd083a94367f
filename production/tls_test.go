package production_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goangel/angel/production"
)

// startTLS runs configure with --ssl (or --http2) and a fresh self-signed
// certificate; the harness's client trusts it.
func startTLS(t *testing.T, flag string, configure func(*production.App) error, args ...string) *harness {
	t.Helper()
	cert, key := writePair(t, t.TempDir(), "server")
	h := startRunner(t, configure, append([]string{flag, "--certificate-file", cert, "--key-file", key}, args...),
		production.WithRestartPolicy(production.RestartPolicy{StableAfter: 10 * time.Second}))
	pemBytes, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	h.tr.TLSClientConfig = &tls.Config{RootCAs: pool, ServerName: "localhost"}
	h.tr.ForceAttemptHTTP2 = true // offer h2; the server decides
	return h
}

// getProto does a GET and returns the status and the protocol it was served with.
func getProto(t *testing.T, h *harness, path string) (int, string) {
	t.Helper()
	resp, err := h.client.Get(h.run.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.TLS == nil {
		t.Fatalf("GET %s was not served over TLS", path)
	}
	return resp.StatusCode, resp.Proto
}

func TestSSL(t *testing.T) {
	h := startTLS(t, "--ssl", hello, "-j", "2")
	if code, proto := getProto(t, h, "/"); code != 200 || proto != "HTTP/1.1" {
		t.Fatalf("GET / = %d over %s, want 200 over HTTP/1.1 (--ssl does not offer h2)", code, proto)
	}
	if want := "listening at https://" + h.run.Addr().String(); !strings.Contains(h.run.Log(), want) {
		t.Errorf("log lacks %q:\n%s", want, h.run.Log())
	}
}

func TestHTTP2(t *testing.T) {
	h := startTLS(t, "--http2", hello, "-j", "2")
	if code, proto := getProto(t, h, "/"); code != 200 || proto != "HTTP/2.0" {
		t.Fatalf("GET / = %d over %s, want 200 over HTTP/2.0", code, proto)
	}
}

// Crashing instances under HTTP/2 load fails no request: a draining life
// answers with "Connection: close", which net/http's HTTP/2 server turns into
// a graceful GOAWAY, and the client moves to a live instance.
func TestHTTP2CrashNoFailedRequest(t *testing.T) {
	h := startTLS(t, "--http2", crashy, "-j", "4", "--max-restarts", "100000", "--quiet")
	if _, proto := getProto(t, h, "/"); proto != "HTTP/2.0" {
		t.Fatalf("served over %s, want HTTP/2.0", proto)
	}
	const clients = 4
	stop := make(chan struct{})
	var (
		requests, failed atomic.Int64
		firstErr         atomic.Value
		wg               sync.WaitGroup
	)
	for range clients {
		wg.Go(func() {
			for i := 0; i < 100_000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				code, _, _, err := h.get("/")
				requests.Add(1)
				if err == nil && code != 200 {
					err = io.ErrUnexpectedEOF
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	crashes := 0
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) && crashes < 200 {
		if code, _, _, err := h.get("/crash/crash"); err == nil && code == 200 {
			crashes++
		}
		time.Sleep(10 * time.Millisecond) // pace the crashes; not a synchronisation
	}
	close(stop)
	wg.Wait()
	t.Logf("%d requests over HTTP/2 while %d instances crashed; %d failed", requests.Load(), crashes, failed.Load())
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed; first: %v", n, requests.Load(), firstErr.Load())
	}
	if crashes == 0 {
		t.Fatal("no crash was triggered")
	}
	waitFor(t, 10*time.Second, "every instance back", func() bool {
		for _, s := range h.run.Stats().Instances {
			if !s.Up {
				return false
			}
		}
		return true
	})
}
