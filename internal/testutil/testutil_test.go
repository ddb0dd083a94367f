package testutil_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goangel/angel/internal/testutil"
)

// fakeTB records Fatalf instead of ending the test.
type fakeTB struct {
	testing.TB
	mu    sync.Mutex
	fatal string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit() // as testing.T's Fatalf does
}

func TestWaitFor(t *testing.T) {
	n := 0
	testutil.WaitFor(t, 10*time.Second, "the third call", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		testutil.WaitFor(f, time.Millisecond, "something that never holds", func() bool { return false })
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("WaitFor did not give up")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !strings.Contains(f.fatal, "something that never holds") {
		t.Fatalf("WaitFor's failure %q does not name what it waited for", f.fatal)
	}
}

func TestCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t, dir)
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	for _, c := range []struct {
		name   string
		server bool
		usage  x509.ExtKeyUsage
		host   string
	}{
		{"server", true, x509.ExtKeyUsageServerAuth, "localhost"},
		{"server", true, x509.ExtKeyUsageServerAuth, "127.0.0.1"},
		{"client", false, x509.ExtKeyUsageClientAuth, ""},
	} {
		certFile, keyFile := ca.WriteCert(t, dir, c.name, c.server)
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: c.host, KeyUsages: []x509.ExtKeyUsage{c.usage}}); err != nil {
			t.Errorf("%s for %q: %v", c.name, c.host, err)
		}
	}

	certFile, keyFile := testutil.WriteSelfSigned(t, dir, "self")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	self := x509.NewCertPool()
	self.AddCert(pair.Leaf)
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: self, DNSName: "localhost"}); err != nil {
		t.Errorf("self-signed for localhost: %v", err)
	}
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err == nil {
		t.Error("the self-signed certificate verifies against the CA")
	}
}
