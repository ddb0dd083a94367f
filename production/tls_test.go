package production_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/youmark/pkcs8"

	"github.com/goangel/angel/internal/testutil"
	"github.com/goangel/angel/production"
)

// startTLS runs configure with --ssl (flag "--ssl"), or --ssl --http2 (flag
// "--http2"), and a fresh self-signed certificate; the harness's client
// trusts it.
func startTLS(t *testing.T, flag string, configure func(*production.App) error, args ...string) *harness {
	t.Helper()
	cert, key := writePair(t, t.TempDir(), "server")
	flags := []string{"--ssl"}
	if flag == "--http2" {
		flags = append(flags, "--http2")
	}
	h := startRunner(t, configure, append(append(flags, "--certificate-file", cert, "--key-file", key), args...),
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

// pki issues certificates for the TLS tests from a CA of its own
// (testutil's).
type pki struct {
	t      *testing.T
	dir    string
	ca     *testutil.CA
	caFile string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	ca := testutil.NewCA(t, dir)
	return &pki{t: t, dir: dir, ca: ca, caFile: ca.CertFile}
}

func (p *pki) write(name string, data []byte) string {
	p.t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

func (p *pki) pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.Cert)
	return pool
}

// issue makes a certificate for cn (a server's for localhost, or a
// client's) and returns it and its key.
func (p *pki) issue(cn string, client bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	p.t.Helper()
	return p.ca.Issue(p.t, cn, !client)
}

// files writes a certificate and its unencrypted PKCS#8 key; they are
// overwritten when the same name is written again.
func (p *pki) files(name string, c *x509.Certificate, k *ecdsa.PrivateKey) (cert, key string) {
	p.t.Helper()
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		p.t.Fatal(err)
	}
	return p.write(name+".crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})),
		p.write(name+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

// pkcs8Encrypted writes k as an encrypted PKCS#8 key ("BEGIN ENCRYPTED
// PRIVATE KEY"): with openssl (what users have) when installed, else with
// github.com/youmark/pkcs8.
func (p *pki) pkcs8Encrypted(name string, k *ecdsa.PrivateKey, password string) string {
	p.t.Helper()
	_, plain := p.files(name+"-plain", &x509.Certificate{}, k)
	out := filepath.Join(p.dir, name+".key")
	if openssl, err := exec.LookPath("openssl"); err == nil {
		cmd := exec.Command(openssl, "pkcs8", "-topk8", "-v2", "aes256", "-in", plain, "-out", out, "-passout", "pass:"+password)
		if b, err := cmd.CombinedOutput(); err != nil {
			p.t.Fatalf("openssl pkcs8: %v\n%s", err, b)
		}
	} else {
		der, err := pkcs8.MarshalPrivateKey(k, []byte(password), nil)
		if err != nil {
			p.t.Fatal(err)
		}
		p.write(name+".key", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der}))
	}
	b, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(b), "-----BEGIN ENCRYPTED PRIVATE KEY-----") {
		p.t.Fatalf("%s is not an encrypted PKCS#8 key (%v):\n%s", out, err, b)
	}
	return out
}

// legacyEncrypted writes k with legacy PEM encryption (Proc-Type, DEK-Info).
func (p *pki) legacyEncrypted(name string, k *ecdsa.PrivateKey, password string) string {
	p.t.Helper()
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		p.t.Fatal(err)
	}
	//lint:ignore SA1019 the legacy format is what the test needs
	block, err := x509.EncryptPEMBlock(rand.Reader, "EC PRIVATE KEY", der, []byte(password), x509.PEMCipherAES256) //nolint:staticcheck
	if err != nil {
		p.t.Fatal(err)
	}
	return p.write(name+".key", pem.EncodeToMemory(block))
}

// tlsClient returns a client trusting p's CA, presenting cert (if any),
// one connection per request, speaking h2 when the server offers it.
func tlsClient(p *pki, cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: p.pool(), ServerName: "localhost"}
	if cert != nil {
		// Always present it (Go's client otherwise leaves out a
		// certificate that the server's CA list does not name).
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true, ForceAttemptHTTP2: true}, Timeout: 10 * time.Second}
}

// whoami answers the common name of the verified client certificate, and
// of the server certificate it was served with.
func whoami(app *production.App) error {
	app.Router.Get("/", func(w http.ResponseWriter, r *http.Request) {
		if c := production.ClientCertificate(r); c != nil {
			io.WriteString(w, c.Subject.CommonName)
			return
		}
		io.WriteString(w, "anonymous")
	})
	return nil
}

func fetch(c *http.Client, url string) (string, *http.Response, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp, err
}

// TestEncryptedKeys: an encrypted PKCS#8 key (as openssl writes it) and a
// legacy-encrypted PEM key both open with --key-password and serve.
func TestEncryptedKeys(t *testing.T) {
	p := newPKI(t)
	c, k := p.issue("server", false)
	cert, _ := p.files("server", c, k)
	for _, key := range []string{p.pkcs8Encrypted("pkcs8", k, "s3cret"), p.legacyEncrypted("legacy", k, "s3cret")} {
		t.Run(filepath.Base(key), func(t *testing.T) {
			h := startRunner(t, whoami, []string{"-j", "1", "--ssl", "--http2", "--certificate-file", cert, "--key-file", key, "--key-password", "s3cret"})
			body, resp, err := fetch(tlsClient(p, nil), h.run.URL+"/")
			if err != nil || resp.StatusCode != 200 || body != "anonymous" {
				t.Fatalf("GET / = %v %q, %v", resp, body, err)
			}
			if resp.Proto != "HTTP/2.0" {
				t.Errorf("served over %s, want HTTP/2.0 (h2 over TLS)", resp.Proto)
			}
		})
	}
}

// TestBadTLSInput: every bad key, pair or CA file is a usage error (exit
// 64) that names the file and says what is wrong.
func TestBadTLSInput(t *testing.T) {
	p := newPKI(t)
	c, k := p.issue("server", false)
	cert, key := p.files("server", c, k)
	_, other := p.issue("other", false)
	_, otherKey := p.files("other", c, other)
	enc := p.pkcs8Encrypted("pkcs8", k, "s3cret")
	legacy := p.legacyEncrypted("legacy", k, "s3cret")
	noCA := p.write("empty-ca.crt", []byte("nothing here\n"))
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"pkcs8 without password", []string{"--key-file", enc}, []string{enc, "is encrypted (PKCS#8", "--key-password"}},
		{"pkcs8 wrong password", []string{"--key-file", enc, "--key-password", "wrong"}, []string{enc, "is encrypted (PKCS#8) and cannot be decrypted with --key-password", "check the password"}},
		{"legacy without password", []string{"--key-file", legacy}, []string{legacy, "is encrypted (legacy PEM encryption, AES-256-CBC", "--key-password"}},
		{"legacy wrong password", []string{"--key-file", legacy, "--key-password", "wrong"}, []string{legacy, "cannot be decrypted with --key-password"}},
		{"mismatched pair", []string{"--key-file", otherKey}, []string{cert, otherKey, "private key does not match public key"}},
		{"certificate as key", []string{"--key-file", cert}, []string{cert, "holds no private key (its PEM blocks: CERTIFICATE)"}},
		{"missing client CA", []string{"--key-file", key, "--client-ca-file", filepath.Join(p.dir, "none.crt")}, []string{"--client-ca-file", "none.crt", "no such file"}},
		{"client CA without certificates", []string{"--key-file", key, "--client-ca-file", noCA}, []string{noCA, "no PEM certificate found"}},
		{"verify without CA", []string{"--key-file", key, "--client-auth", "require-and-verify"}, []string{"--client-auth require-and-verify needs --client-ca-file"}},
		{"bad client auth", []string{"--key-file", key, "--client-auth", "sometimes"}, []string{"--client-auth must be one of none, request, require, verify-if-given, require-and-verify", `"sometimes"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errOut := &syncBuffer{}
			r := production.New("test", hello, production.WithOutput(io.Discard, errOut), production.WithLookupEnv(noEnv))
			err := r.Run(context.Background(), append([]string{"--ssl", "--certificate-file", cert, "-p", "0"}, tc.args...))
			if production.ExitCode(err) != production.ExitUsage {
				t.Fatalf("Run = %v (exit %d), want exit 64", err, production.ExitCode(err))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestH2C: --http2 without --ssl serves cleartext HTTP/2 with prior
// knowledge beside HTTP/1.1 (Go's HTTP/2 client, and curl where installed).
func TestH2C(t *testing.T) {
	h := startRunner(t, hello, []string{"-j", "2", "--http2"})
	if !strings.HasPrefix(h.run.URL, "http://") {
		t.Fatalf("URL %s, want http://", h.run.URL)
	}
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protos}
	defer tr.CloseIdleConnections()
	body, resp, err := fetch(&http.Client{Transport: tr, Timeout: 10 * time.Second}, h.run.URL+"/")
	if err != nil || resp.StatusCode != 200 || body != "Hello, production world!" {
		t.Fatalf("h2c GET / = %v %q, %v", resp, body, err)
	}
	if resp.Proto != "HTTP/2.0" {
		t.Errorf("h2c client served over %s, want HTTP/2.0", resp.Proto)
	}
	body, resp, err = fetch(fresh(), h.run.URL+"/")
	if err != nil || resp.StatusCode != 200 || resp.Proto != "HTTP/1.1" {
		t.Errorf("HTTP/1.1 GET / = %v %q, %v", resp, body, err)
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Log("curl is not installed: h2c checked with Go's client only")
		return
	}
	out, err := exec.Command(curl, "-sS", "--max-time", "10", "--http2-prior-knowledge", "-w", "\n%{http_version}", h.run.URL+"/").CombinedOutput()
	if err != nil || string(out) != "Hello, production world!\n2" {
		t.Errorf("curl --http2-prior-knowledge: %v\n%s", err, out)
	}
}

// TestClientCertificates: --client-ca-file with each --client-auth mode; the
// verified client certificate is production.ClientCertificate(r).
func TestClientCertificates(t *testing.T) {
	server := newPKI(t)
	clients := newPKI(t)
	sc, sk := server.issue("server", false)
	cert, key := server.files("server", sc, sk)
	cc, ck := clients.issue("alice", true)
	ccFile, ckFile := clients.files("alice", cc, ck)
	alice, err := tls.LoadX509KeyPair(ccFile, ckFile)
	if err != nil {
		t.Fatal(err)
	}
	stranger := newPKI(t)
	xc, xk := stranger.issue("mallory", true)
	xcFile, xkFile := stranger.files("mallory", xc, xk)
	mallory, err := tls.LoadX509KeyPair(xcFile, xkFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode                   string
		alice, none, strangers string // the answer, or "refused"
	}{
		{"require-and-verify", "alice", "refused", "refused"},
		{"verify-if-given", "alice", "anonymous", "refused"},
		{"require", "anonymous", "refused", "anonymous"}, // any certificate, none verified
		{"request", "anonymous", "anonymous", "anonymous"},
		{"none", "anonymous", "anonymous", "anonymous"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			h := startRunner(t, whoami, []string{"-j", "1", "--ssl", "--certificate-file", cert, "--key-file", key, "--client-ca-file", clients.caFile, "--client-auth", tc.mode})
			for _, c := range []struct {
				who  string
				cert *tls.Certificate
				want string
			}{{"alice", &alice, tc.alice}, {"no certificate", nil, tc.none}, {"a stranger's", &mallory, tc.strangers}} {
				body, _, err := fetch(tlsClient(server, c.cert), h.run.URL+"/")
				got := body
				if err != nil {
					got = "refused"
				}
				if got != c.want {
					t.Errorf("%s: got %q (%v), want %q", c.who, got, err, c.want)
				}
			}
		})
	}
}

// TestCertificateReload: a reload (SIGHUP) serves a good new pair to new
// handshakes; a bad one keeps the old pair and says why.
func TestCertificateReload(t *testing.T) {
	p := newPKI(t)
	c1, k1 := p.issue("first", false)
	cert, key := p.files("server", c1, k1)
	h := startRunner(t, whoami, []string{"-j", "2", "--ssl", "--certificate-file", cert, "--key-file", key})
	served := func() string {
		t.Helper()
		_, resp, err := fetch(tlsClient(p, nil), h.run.URL+"/")
		if err != nil {
			t.Fatalf("GET /: %v", err)
		}
		return resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "first" {
		t.Fatalf("served %q, want first", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c2, k2 := p.issue("second", false)
	p.files("server", c2, k2)
	if err := h.run.Reload(ctx); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	for range 4 { // every instance
		if got := served(); got != "second" {
			t.Fatalf("after the reload served %q, want second", got)
		}
	}
	if !strings.Contains(h.run.Log(), `Certificate reloaded from `+cert+` (subject "CN=second"`) {
		t.Errorf("log lacks the reload:\n%s", h.run.Log())
	}

	_, k3 := p.issue("third", false)
	c4, _ := p.issue("fourth", false)
	p.files("server", c4, k3) // a mismatched pair
	err := h.run.Reload(ctx)
	if err == nil || !strings.Contains(err.Error(), "private key does not match public key") {
		t.Errorf("Reload with a mismatched pair = %v, want it to say why", err)
	}
	if got := served(); got != "second" {
		t.Errorf("after a bad reload served %q, want second (the old pair)", got)
	}
	if !strings.Contains(h.run.Log(), "Certificate reload failed: still serving the old certificate; fix "+cert) {
		t.Errorf("log lacks the failed reload:\n%s", h.run.Log())
	}
}
