package faults

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goangel/angel/internal/faultapp"
	"github.com/goangel/angel/internal/testutil"
	"github.com/goangel/angel/production/productiontest"
)

// selfSigned writes a certificate for 127.0.0.1 and its key; it returns
// their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T) (cert, key string, pool *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(cert, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
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
