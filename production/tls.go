package production

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"

	"github.com/youmark/pkcs8"
)

// TLS as the runner serves it:
//   - --ssl: HTTPS; with --http2 also HTTP/2 over TLS (ALPN "h2", HTTP/1.1
//     for clients without it).
//   - --http2 without --ssl: HTTP/2 over cleartext with prior knowledge (h2c)
//     beside HTTP/1.1, for apps behind a proxy that speaks h2c.
//   - keys: PEM, unencrypted (PKCS#1, PKCS#8, SEC 1), encrypted PKCS#8
//     ("BEGIN ENCRYPTED PRIVATE KEY", OpenSSL 3's default) or legacy PEM
//     encryption (Proc-Type/DEK-Info), both opened with --key-password.
//   - client certificates: --client-ca-file and --client-auth; the verified
//     certificate is ClientCertificate(r).
//   - reload: on SIGHUP (Runner.Reload) the certificate and key are read
//     again; a good pair is served to new handshakes, a bad one keeps the old.

// clientAuthModes maps --client-auth to crypto/tls.
var clientAuthModes = map[string]tls.ClientAuthType{
	"none":               tls.NoClientCert,
	"request":            tls.RequestClientCert,
	"require":            tls.RequireAnyClientCert,
	"verify-if-given":    tls.VerifyClientCertIfGiven,
	"require-and-verify": tls.RequireAndVerifyClientCert,
}

// clientAuth returns the tls.ClientAuthType of --client-auth: given, or by
// default require-and-verify with --client-ca-file and none without.
func (c *Config) clientAuth() tls.ClientAuthType {
	if c.ClientAuth == "" {
		if c.ClientCAFile != "" {
			return tls.RequireAndVerifyClientCert
		}
		return tls.NoClientCert
	}
	return clientAuthModes[c.ClientAuth]
}

// validateTLS checks the TLS flags as far as can be seen before start: with
// --ssl, the certificate and key are given, readable, PEM, decryptable and a
// matching pair (kept for the runner), the client CA file is readable and
// holds certificates; the flags that need --ssl have it.
func (c *Config) validateTLS() error {
	if c.ClientAuth != "" {
		if _, ok := clientAuthModes[c.ClientAuth]; !ok {
			return fmt.Errorf("--client-auth must be one of none, request, require, verify-if-given, require-and-verify; got %q", c.ClientAuth)
		}
	}
	if !c.SSL {
		return c.tlsFlagsWithoutSSL()
	}
	if c.CertificateFile == "" || c.KeyFile == "" {
		var missing []string
		if c.CertificateFile == "" {
			missing = append(missing, "--certificate-file")
		}
		if c.KeyFile == "" {
			missing = append(missing, "--key-file")
		}
		return fmt.Errorf("--ssl needs %s", strings.Join(missing, " and "))
	}
	switch a := c.clientAuth(); {
	case (a == tls.VerifyClientCertIfGiven || a == tls.RequireAndVerifyClientCert) && c.ClientCAFile == "":
		return fmt.Errorf("--client-auth %s needs --client-ca-file (the CA certificates that client certificates must chain to)", c.ClientAuth)
	}
	if c.ClientCAFile != "" {
		pool, err := loadCAs(c.ClientCAFile)
		if err != nil {
			return err
		}
		c.clientCAs = pool
	}
	pair, err := c.loadKeyPair()
	c.keyPair = &pair
	return err
}

// tlsFlagsWithoutSSL refuses the TLS flags given without --ssl.
func (c *Config) tlsFlagsWithoutSSL() error {
	var given []string
	for _, f := range []struct{ name, v string }{
		{"--certificate-file", c.CertificateFile}, {"--certificate-password", c.CertificatePassword},
		{"--key-file", c.KeyFile}, {"--key-password", c.KeyPassword},
		{"--client-ca-file", c.ClientCAFile}, {"--client-auth", c.ClientAuth},
	} {
		if f.v != "" {
			given = append(given, f.name)
		}
	}
	switch {
	case len(given) == 0:
		return nil
	case c.HTTP2:
		return fmt.Errorf("%s need(s) --ssl: --http2 without --ssl serves cleartext HTTP/2 (h2c); give --ssl --http2 for HTTP/2 over TLS", strings.Join(given, ", "))
	}
	return fmt.Errorf("%s need(s) --ssl", strings.Join(given, ", "))
}

// loadCAs reads the PEM certificates of --client-ca-file.
func loadCAs(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--client-ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("--client-ca-file %s: no PEM certificate found (it must hold one or more \"BEGIN CERTIFICATE\" blocks)", path)
	}
	return pool, nil
}

// loadKeyPair reads and checks the certificate and key files.
func (c *Config) loadKeyPair() (tls.Certificate, error) {
	certPEM, err := readPEM("--certificate-file", c.CertificateFile, c.CertificatePassword, "--certificate-password")
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := readPEM("--key-file", c.KeyFile, c.KeyPassword, "--key-password")
	if err != nil {
		return tls.Certificate{}, err
	}
	if !strings.Contains(string(keyPEM), "PRIVATE KEY-----") {
		return tls.Certificate{}, fmt.Errorf("--key-file %s holds no private key (its PEM blocks: %s); give the key file, not the certificate", c.KeyFile, pemTypes(keyPEM))
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("--certificate-file %s and --key-file %s: %w (are they a pair? compare `openssl x509 -noout -pubkey -in CERT` with `openssl pkey -pubout -in KEY`)", c.CertificateFile, c.KeyFile, err)
	}
	return pair, nil
}

// pemTypes lists the types of the PEM blocks in data.
func pemTypes(data []byte) string {
	var types []string
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		types = append(types, b.Type)
	}
	return strings.Join(types, ", ")
}

// readPEM reads a PEM file and decrypts its encrypted blocks with password:
// encrypted PKCS#8 ("ENCRYPTED PRIVATE KEY", PBES2 or the PKCS#12 PBE
// schemes, through github.com/youmark/pkcs8) and legacy PEM encryption
// (Proc-Type: 4,ENCRYPTED). Errors name the flag, the file, the format and
// what to do.
func readPEM(flag, path, password, passwordFlag string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	var out []byte
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch {
		case block.Type == "ENCRYPTED PRIVATE KEY":
			if password == "" {
				return nil, fmt.Errorf("%s %s is encrypted (PKCS#8, \"BEGIN ENCRYPTED PRIVATE KEY\"): give its password with %s", flag, path, passwordFlag)
			}
			key, err := pkcs8.ParsePKCS8PrivateKey(block.Bytes, []byte(password))
			if err != nil {
				return nil, fmt.Errorf("%s %s is encrypted (PKCS#8) and cannot be decrypted with %s: %w; check the password, or decrypt the key with `openssl pkey -in KEY -out PLAIN`", flag, path, passwordFlag, err)
			}
			der, err := x509.MarshalPKCS8PrivateKey(key)
			if err != nil {
				return nil, fmt.Errorf("%s %s: the decrypted key: %w", flag, path, err)
			}
			block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
		//lint:ignore SA1019 legacy encrypted PEM is what --*-password has always meant
		case x509.IsEncryptedPEMBlock(block): //nolint:staticcheck
			if password == "" {
				return nil, fmt.Errorf("%s %s is encrypted (legacy PEM encryption, %s): give its password with %s", flag, path, block.Headers["DEK-Info"], passwordFlag)
			}
			//lint:ignore SA1019 legacy encrypted PEM is what --*-password has always meant
			der, err := x509.DecryptPEMBlock(block, []byte(password)) //nolint:staticcheck
			if err == nil && strings.HasSuffix(block.Type, "PRIVATE KEY") && !isPrivateKey(der) {
				// Legacy PEM encryption has no integrity check: a wrong
				// password passes its padding check about once in 256
				// tries and yields garbage.
				err = errors.New("the decrypted bytes are not a private key")
			}
			if err != nil {
				return nil, fmt.Errorf("%s %s is encrypted (legacy PEM encryption, %s) and cannot be decrypted with %s: %w; check the password", flag, path, block.Headers["DEK-Info"], passwordFlag, err)
			}
			block = &pem.Block{Type: block.Type, Bytes: der}
		}
		out = append(out, pem.EncodeToMemory(block)...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s %s: no PEM data found (a DER file? convert it with `openssl x509 -inform der` or `openssl pkey -inform der`)", flag, path)
	}
	return out, nil
}

// isPrivateKey reports whether der is a private key in one of the forms a
// PEM key file holds (PKCS#8, PKCS#1 RSA, SEC 1 EC).
func isPrivateKey(der []byte) bool {
	if _, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return true
	}
	if _, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return true
	}
	_, err := x509.ParseECPrivateKey(der)
	return err == nil
}

// certStore holds the pair served to new handshakes; Reload replaces it.
type certStore struct {
	pair atomic.Pointer[tls.Certificate]
}

// setupTLS makes the TLS configuration of --ssl (each life serves a clone:
// the certificate comes from one shared store) and registers the certificate
// reload with Runner.Reload. The protocols of --http2 are set by
// protocols.
func (rs *runState) setupTLS() {
	cfg := rs.cfg
	if !cfg.SSL {
		return
	}
	store := &certStore{}
	store.pair.Store(cfg.keyPair)
	protos := []string{"http/1.1"}
	if cfg.HTTP2 {
		protos = []string{"h2", "http/1.1"}
	}
	rs.tls = &tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return store.pair.Load(), nil },
		MinVersion:     tls.VersionTLS12,
		NextProtos:     protos,
		ClientAuth:     cfg.clientAuth(),
		ClientCAs:      cfg.clientCAs,
	}
	rs.scheme = "https"
	rs.r.onReloadHook(func() error {
		pair, err := cfg.loadKeyPair()
		if err != nil {
			rs.entry.WithError(err).Errorf("Certificate reload failed: still serving the old certificate; fix %s / %s and reload again", cfg.CertificateFile, cfg.KeyFile)
			return reported(fmt.Errorf("certificate reload: %w", err)) // signals.go: logged once, here
		}
		store.pair.Store(&pair)
		rs.entry.Infof("Certificate reloaded from %s (%s); new handshakes get it", cfg.CertificateFile, describeCert(&pair))
		return nil
	})
}

// describeCert names a certificate for the log: subject and expiry.
func describeCert(pair *tls.Certificate) string {
	leaf := pair.Leaf
	if leaf == nil && len(pair.Certificate) > 0 {
		leaf, _ = x509.ParseCertificate(pair.Certificate[0])
	}
	if leaf == nil {
		return "unparsable leaf"
	}
	return fmt.Sprintf("subject %q, expires %s", leaf.Subject.String(), leaf.NotAfter.UTC().Format("2006-01-02"))
}

// protocols is what each life's http.Server speaks: HTTP/1.1, plus HTTP/2
// over TLS with --ssl --http2, or cleartext HTTP/2 with prior knowledge
// (h2c) with --http2 alone.
func (rs *runState) protocols() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	switch {
	case rs.cfg.HTTP2 && rs.cfg.SSL:
		p.SetHTTP2(true)
	case rs.cfg.HTTP2:
		p.SetUnencryptedHTTP2(true)
	}
	return &p
}

// ClientCertificate returns the client certificate of r when the TLS
// handshake verified it against --client-ca-file (--client-auth
// verify-if-given or require-and-verify), or nil.
func ClientCertificate(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil
	}
	return r.TLS.VerifiedChains[0][0]
}
