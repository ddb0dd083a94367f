package production

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// validateAdminSocket checks --admin-socket and --admin-socket-mode.
func (c *Config) validateAdminSocket() error {
	m, err := strconv.ParseUint(c.AdminSocketMode, 8, 32)
	if err != nil || m > 0o777 {
		return fmt.Errorf("--admin-socket-mode %q: want octal permissions such as 0600 (owner only) or 0660 (owner and group)", c.AdminSocketMode)
	}
	if len(c.AdminSocket) > 100 {
		return fmt.Errorf("--admin-socket %q: a Unix socket path must be shorter than about 100 bytes; use a shorter path (a relative one is in $RUNTIME_DIRECTORY under systemd)", c.AdminSocket)
	}
	return nil
}

// adminSocketMode is --admin-socket-mode, checked by Validate.
func (c *Config) adminSocketMode() fs.FileMode {
	m, _ := strconv.ParseUint(c.AdminSocketMode, 8, 32)
	return fs.FileMode(m)
}

// adminSocketPath is --admin-socket, in $RUNTIME_DIRECTORY (the first of
// them) when it is relative and systemd set that.
func (r *Runner) adminSocketPath(cfg *Config) string {
	p := cfg.AdminSocket
	if filepath.IsAbs(p) {
		return p
	}
	if dir, ok := r.lookupEnv("RUNTIME_DIRECTORY"); ok && dir != "" {
		first, _, _ := strings.Cut(dir, ":")
		return filepath.Join(first, p)
	}
	return p
}

// listenAdminSocket binds the Unix socket path with permissions mode. A
// socket file left by a process that ended is replaced; one that a running
// process answers on is an error, as is any other file there.
func listenAdminSocket(ctx context.Context, path string, mode fs.FileMode) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("--admin-socket %s: the file exists and is not a socket: remove it or pick another path", path)
		}
		d := net.Dialer{Timeout: time.Second}
		if c, err := d.DialContext(ctx, "unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("--admin-socket %s: another process listens on it (is the app already running?)", path)
		} else if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("--admin-socket %s: %w", path, err)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("--admin-socket %s: removing the stale socket: %w", path, err)
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on --admin-socket %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("--admin-socket %s: setting its permissions: %w", path, err)
	}
	return ln, nil
}
