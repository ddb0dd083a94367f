package production

import "fmt"

// redacted replaces a secret when a Config is printed.
const redacted = "[redacted]"

// Format prints the Config with its secrets (passwords, tokens) replaced by
// "[redacted]", whatever the verb (%v, %+v, %#v, %s): a Config logged or
// printed from configure never shows them.
func (c Config) Format(f fmt.State, verb rune) {
	type plain Config // no methods: no recursion
	p := plain(c)
	for _, s := range []*string{&p.CertificatePassword, &p.KeyPassword, &p.PubSubToken, &p.PubSubPassword, &p.AdminToken} {
		if *s != "" {
			*s = redacted
		}
	}
	p.keyPair = nil
	fmt.Fprintf(f, fmt.FormatString(f, verb), p)
}

// String is the Config as %v prints it, secrets redacted.
func (c Config) String() string { return fmt.Sprintf("%+v", c) }
