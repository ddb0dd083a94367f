package production

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLegacyKeyWrongPasswordThatPassesPadding: legacy PEM encryption has no
// integrity check, so about one wrong password in 256 decrypts without an
// error into garbage. Such a password is still reported as the wrong
// password, not as a key that does not parse (TestBadTLSInput drew one
// under load: its key and IV are random in every run).
func TestLegacyKeyWrongPasswordThatPassesPadding(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 the legacy format is what the test needs
	block, err := x509.EncryptPEMBlock(rand.Reader, "EC PRIVATE KEY", der, []byte("s3cret"), x509.PEMCipherAES256) //nolint:staticcheck
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "legacy.key")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	// Find a wrong password that passes the padding check (1 in 256 on
	// average; 100,000 tries miss with a probability below 1e-170).
	wrong := ""
	for i := range 100_000 {
		p := fmt.Sprintf("wrong%d", i)
		//lint:ignore SA1019 the legacy format is what the test needs
		if _, err := x509.DecryptPEMBlock(block, []byte(p)); err == nil { //nolint:staticcheck
			wrong = p
			break
		}
	}
	if wrong == "" {
		t.Fatal("no wrong password passed the padding check in 100,000 tries")
	}
	_, err = readPEM("--key-file", path, wrong, "--key-password")
	if err == nil || !strings.Contains(err.Error(), "cannot be decrypted with --key-password") || !strings.Contains(err.Error(), path) {
		t.Errorf("readPEM with the wrong password %q = %v, want it to say the key cannot be decrypted with --key-password", wrong, err)
	}
	if _, err := readPEM("--key-file", path, "s3cret", "--key-password"); err != nil {
		t.Errorf("readPEM with the right password: %v", err)
	}
}
