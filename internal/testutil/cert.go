package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a throw-away certificate authority for tests: a P-256 key and a
// self-signed CA certificate valid from an hour ago to an hour from now.
type CA struct {
	Cert     *x509.Certificate
	Key      *ecdsa.PrivateKey
	CertFile string // the CA certificate as PEM: dir/ca.pem
}

// serial numbers the certificates of one test binary.
var serial atomic.Int64

// NewCA makes a CA and writes its certificate to dir/ca.pem.
func NewCA(tb testing.TB, dir string) *CA {
	tb.Helper()
	key := newKey(tb)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: "goangel test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	ca := &CA{Cert: cert, Key: key, CertFile: filepath.Join(dir, "ca.pem")}
	writePEM(tb, ca.CertFile, "CERTIFICATE", der)
	return ca
}

// WriteCert issues a certificate named name signed by ca and writes it and
// its key as PEM to dir/NAME.pem and dir/NAME-key.pem, whose paths it
// returns. A server certificate is for 127.0.0.1 and localhost; the other
// kind is a client certificate.
func (ca *CA) WriteCert(tb testing.TB, dir, name string, server bool) (certFile, keyFile string) {
	tb.Helper()
	return writeLeaf(tb, dir, name, server, ca.Cert, ca.Key)
}

// WriteSelfSigned writes a self-signed server certificate for 127.0.0.1
// and localhost and its key as PEM to dir/NAME.pem and dir/NAME-key.pem,
// whose paths it returns. A client trusts it by putting the certificate
// itself in its root pool.
func WriteSelfSigned(tb testing.TB, dir, name string) (certFile, keyFile string) {
	tb.Helper()
	return writeLeaf(tb, dir, name, true, nil, nil)
}

// Issue makes a certificate named name signed by ca (a server's for
// 127.0.0.1 and localhost, or a client's) and returns it and its key,
// written nowhere.
func (ca *CA) Issue(tb testing.TB, name string, server bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	tb.Helper()
	return leaf(tb, name, server, ca.Cert, ca.Key)
}

// leaf issues a leaf certificate signed by parent (itself when parent is
// nil).
func leaf(tb testing.TB, name string, server bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	tb.Helper()
	key := newKey(tb)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return cert, key
}

// writeLeaf issues a leaf certificate (see leaf) and writes it and its
// PKCS #8 key.
func writeLeaf(tb testing.TB, dir, name string, server bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (certFile, keyFile string) {
	tb.Helper()
	cert, key := leaf(tb, name, server, parent, parentKey)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writePEM(tb, certFile, "CERTIFICATE", cert.Raw)
	writePEM(tb, keyFile, "PRIVATE KEY", kder)
	return certFile, keyFile
}

func newKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return key
}

func writePEM(tb testing.TB, path, typ string, der []byte) {
	tb.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// ReadCert parses the first certificate of the PEM file certFile (for a
// client's root pool).
func ReadCert(tb testing.TB, certFile string) *x509.Certificate {
	tb.Helper()
	data, err := os.ReadFile(certFile)
	if err != nil {
		tb.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		tb.Fatalf("%s: no PEM data", certFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	return cert
}
