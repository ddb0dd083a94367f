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

// adminSocketPath is the path of --admin-socket p: in $RUNTIME_DIRECTORY
// (the first of them) when it is relative and systemd set that.
func (r *Runner) adminSocketPath(p string) string {
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
// process answers on is an error (as is any other file there), unless
// takeOver: this process was started by a binary upgrade of that one, and
// binds a new socket file in its place (the old process keeps serving its
// accepted connections, and leaves the file alone when it stops).
func listenAdminSocket(ctx context.Context, path string, mode fs.FileMode, takeOver bool) (*adminSocket, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("--admin-socket %s: the file exists and is not a socket: remove it or pick another path", path)
		}
		d := net.Dialer{Timeout: time.Second}
		if c, err := d.DialContext(ctx, "unix", path); err == nil {
			c.Close()
			if !takeOver {
				return nil, fmt.Errorf("--admin-socket %s: another process listens on it (is the app already running?)", path)
			}
		} else if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("--admin-socket %s: %w", path, err)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("--admin-socket %s: removing the old socket: %w", path, err)
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on --admin-socket %s: %w", path, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false) // close removes only our own file
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		os.Remove(path)
		return nil, fmt.Errorf("--admin-socket %s: setting its permissions: %w", path, err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("--admin-socket %s: %w", path, err)
	}
	return &adminSocket{Listener: ln, path: path, file: fi}, nil
}

// adminSocket is the listener of --admin-socket and the file it made.
type adminSocket struct {
	net.Listener
	path string
	file fs.FileInfo
}

// Close closes the listener and removes the socket file, unless another
// process (the new one of a binary upgrade) has put its own there.
func (s *adminSocket) Close() error {
	err := s.Listener.Close()
	if fi, serr := os.Lstat(s.path); serr == nil && os.SameFile(fi, s.file) {
		if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	return err
}
