package production

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/sirupsen/logrus"
)

// secretFlags are the flags whose values are secrets: never shown by
// /debug/pprof/cmdline, /instances or the logs.
var secretFlags = []string{"admin-token", "pubsub-token", "pubsub-password", "key-password", "certificate-password"}

// secrets returns the secret values of c: the secret flags' values and the
// password of --pubsub-url's user information.
func (c *Config) secrets() []string {
	var out []string
	for _, v := range []string{c.AdminToken, c.PubSubToken, c.PubSubPassword, c.KeyPassword, c.CertificatePassword} {
		if v != "" {
			out = append(out, v)
		}
	}
	if u, err := url.Parse(c.PubSubURL); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			out = append(out, p)
		} else if n := u.User.Username(); n != "" {
			out = append(out, n) // nats://TOKEN@host: the user is a token
		}
	}
	return out
}

// redactor replaces every secret value in a string; the zero value (no
// secrets) returns strings as they are.
type redactor struct{ r *strings.Replacer }

func newRedactor(secrets []string) redactor {
	if len(secrets) == 0 {
		return redactor{}
	}
	pairs := make([]string, 0, 2*len(secrets))
	for _, s := range secrets {
		pairs = append(pairs, s, redacted)
	}
	return redactor{strings.NewReplacer(pairs...)}
}

func (r redactor) String(s string) string {
	if r.r == nil {
		return s
	}
	return r.r.Replace(s)
}

// redactArgs returns args with the values of the secret flags (--flag=V and
// --flag V) and every secret value elsewhere replaced.
func (r redactor) redactArgs(args []string) []string {
	out := make([]string, len(args))
	secretNext := false
	for i, a := range args {
		switch {
		case secretNext:
			a, secretNext = redacted, false
		case strings.HasPrefix(a, "--"):
			name, _, hasValue := strings.Cut(a[2:], "=")
			for _, f := range secretFlags {
				if name == f {
					if hasValue {
						a = "--" + name + "=" + redacted
					} else {
						secretNext = true
					}
				}
			}
		}
		out[i] = r.String(a)
	}
	return out
}

// redactHook is a logrus hook that replaces the secrets in a line's message
// and fields before it is written (hooks fire before formatting).
type redactHook struct{ r redactor }

// newRedactHook returns the hook of cfg's secrets (none: a no-op).
func newRedactHook(cfg *Config) logrus.Hook { return redactHook{newRedactor(cfg.secrets())} }

func (redactHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h redactHook) Fire(e *logrus.Entry) error {
	if h.r.r == nil {
		return nil
	}
	e.Message = h.r.String(e.Message)
	for k, v := range e.Data {
		switch v := v.(type) {
		case string:
			e.Data[k] = h.r.String(v)
		case error:
			if s := v.Error(); h.r.String(s) != s {
				e.Data[k] = h.r.String(s)
			}
		case fmt.Stringer:
			if s := v.String(); h.r.String(s) != s {
				e.Data[k] = h.r.String(s)
			}
		}
	}
	return nil
}
