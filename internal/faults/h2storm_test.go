package faults

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goangel/angel/internal/faultapp"
	"github.com/goangel/angel/internal/testutil"
	"github.com/goangel/angel/production/productiontest"
)

// selfSigned writes a certificate for localhost and its key, and a pool
// that trusts it.
func selfSigned(t *testing.T) (cert, key string, pool *x509.CertPool) {
	t.Helper()
	cert, key = testutil.WriteSelfSigned(t, t.TempDir(), "localhost")
	pool = x509.NewCertPool()
	pool.AddCert(testutil.ReadCert(t, cert))
	return cert, key, pool
}

// TestHTTP2CrashStorm: HTTP/2 clients multiplexing on a few connections
// while lives are ended every way. Go's client retries only what the server
// said it never processed (GOAWAY's last stream, REFUSED_STREAM): it sees no
// failure, and the server processed each request exactly once.
func TestHTTP2CrashStorm(t *testing.T) {
	const lives = 200
	cert, key, pool := selfSigned(t)
	a := faultapp.New()
	r := productiontest.Start(t, "faultapp", a.Configure,
		[]string{"-j", "4", "--quiet", "--ssl", "--http2", "--certificate-file", cert, "--key-file", key, "--max-restarts", "1000000"}, stormPolicy)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				resp, err := client.Get(r.URL + "/count")
				if err == nil {
					var b []byte
					b, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && (resp.StatusCode != 200 || string(b) != "ok" || resp.ProtoMajor != 2) {
						err = fmt.Errorf("%s %d %q", resp.Proto, resp.StatusCode, b)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		})
	}
	// The crasher uses its own connections, each to whichever instance.
	crasher := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}, ForceAttemptHTTP2: true, DisableKeepAlives: true}, Timeout: 10 * time.Second}
	for i := 0; i < lives; i++ {
		kind := faultapp.CrashKinds[i%len(faultapp.CrashKinds)]
		before := restarts(r)
		// A new connection can still reach a life that has just ended (its
		// view leaves the round-robin when its drain starts), and over
		// HTTP/2 no "Connection: close" says so: such a crash request ends
		// nothing, so it is sent again until a respawn shows.
		sent := time.Time{}
		testutil.WaitFor(t, 10*time.Second, fmt.Sprintf("crash %d (%s) respawned", i, kind), func() bool {
			if restarts(r) > before {
				return true
			}
			if time.Since(sent) > 500*time.Millisecond {
				sent = time.Now()
				resp, err := crasher.Get(r.URL + "/crash/" + kind)
				if err != nil {
					t.Fatalf("crash %d: %v", i, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			return false
		})
	}
	stop()
	wg.Wait()
	t.Logf("HTTP/2 crash storm: %d lives ended; %d requests ok, %d failed; %d processed by the server", lives, ok.Load(), failed.Load(), a.Served.Load())
	if failed.Load() != 0 {
		t.Errorf("%d requests failed; first: %v", failed.Load(), firstErr.Load())
	}
	if ok.Load() == 0 {
		t.Error("no request went through")
	}
	if served := a.Served.Load(); served != ok.Load() {
		t.Errorf("the server processed %d requests for %d answered: a retried request had been processed", served, ok.Load())
	}
}
