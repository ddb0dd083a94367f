package production

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
)

// validateTLS checks the certificate and key of --ssl/--http2 as far as can be
// seen before start: both given, readable, PEM, decryptable, a matching pair;
// and keeps the pair for the runner.
func (c *Config) validateTLS() error {
	which := "--ssl"
	if !c.SSL {
		which = "--http2"
	}
	if c.CertificateFile == "" || c.KeyFile == "" {
		var missing []string
		if c.CertificateFile == "" {
			missing = append(missing, "--certificate-file")
		}
		if c.KeyFile == "" {
			missing = append(missing, "--key-file")
		}
		return fmt.Errorf("%s needs %s", which, strings.Join(missing, " and "))
	}
	pair, err := c.loadKeyPair()
	c.keyPair = &pair
	return err
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
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("--certificate-file %s and --key-file %s: %w", c.CertificateFile, c.KeyFile, err)
	}
	return pair, nil
}

// readPEM reads a PEM file and decrypts its encrypted blocks with password.
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
		//lint:ignore SA1019 legacy encrypted PEM is what --*-password means
		if x509.IsEncryptedPEMBlock(block) { //nolint:staticcheck
			if password == "" {
				return nil, fmt.Errorf("%s %s is encrypted: give %s", flag, path, passwordFlag)
			}
			der, err := x509.DecryptPEMBlock(block, []byte(password)) //nolint:staticcheck
			if err != nil {
				return nil, fmt.Errorf("%s %s: %s: %w", flag, path, passwordFlag, err)
			}
			block = &pem.Block{Type: block.Type, Bytes: der}
		}
		out = append(out, pem.EncodeToMemory(block)...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s %s: no PEM data found", flag, path)
	}
	return out, nil
}

// serverTLS is the TLS configuration of --ssl (HTTP/1.1 over TLS) and
// --http2 (HTTP/2 over TLS, HTTP/1.1 for clients without it).
func serverTLS(pair tls.Certificate, http2 bool) *tls.Config {
	protos := []string{"http/1.1"}
	if http2 {
		protos = []string{"h2", "http/1.1"}
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12, NextProtos: protos}
}
