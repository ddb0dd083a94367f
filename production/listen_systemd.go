package production

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/activation"
)

// listenSystemd returns the shared listener of a Run, from the first of:
//   - the sockets inherited from the old process, in a process started by a
//     binary upgrade (see upgrade.go);
//   - the sockets systemd passes (socket activation: LISTEN_FDS, LISTEN_PID,
//     LISTEN_FDNAMES), in which case -a/-p are not used;
//   - bind (the -a/-p socket).
//
// Several sockets are served as one listener. The sockets are kept so that a
// binary upgrade can pass them on.
func (rs *runState) listenSystemd(bind func() (net.Listener, error)) (net.Listener, error) {
	d := rs.r.sys.Load()
	child := d != nil && d.child
	var lns []net.Listener
	switch {
	case child:
		var err error
		if lns, err = d.inherit(); err != nil {
			return nil, err
		}
	default:
		files := activationFiles()
		for i, f := range files {
			ln, err := net.FileListener(f) // a dup: f stays open for a later Run
			name := f.Name()
			if err != nil {
				for _, l := range lns {
					l.Close()
				}
				return nil, fmt.Errorf("socket activation: LISTEN_FDS socket #%d (fd %d, name %q) is not a listening stream socket: %w; give the .socket unit ListenStream= only", i, listenFdsStart+i, name, err)
			}
			rs.entry.Infof("Socket activation: serving on the socket systemd passed as %q (fd %d, %s %s); -a/-p are not used", name, listenFdsStart+i, ln.Addr().Network(), ln.Addr())
			lns = append(lns, ln)
		}
	}
	if len(lns) == 0 {
		ln, err := bind()
		if err != nil {
			return nil, err
		}
		lns = []net.Listener{ln}
	}
	for i, ln := range lns {
		d.keep(listenerName(i), ln, child) // upgrade.go
	}
	if len(lns) == 1 {
		return lns[0], nil
	}
	return newMultiListener(lns), nil
}

// listenAdmin returns the admin listener of a Run: in a process started by
// a binary upgrade, the socket the old process passed (it holds the port:
// binding it again would fail); else bind's. Either way it is kept so that
// the next binary upgrade passes it on (--pprof is served on it too).
func (rs *runState) listenAdmin(bind func() (net.Listener, error)) (net.Listener, error) {
	d := rs.r.sys.Load()
	var ln net.Listener
	inherited := false
	if d != nil && d.child {
		var err error
		if ln, err = d.inheritOne(adminListenerName); err != nil {
			return nil, err
		}
		if ln != nil {
			inherited = true
			rs.entry.Infof("Binary upgrade: pid %d serves the admin listener on the socket inherited from the old process (%s %s)", os.Getpid(), ln.Addr().Network(), ln.Addr())
		}
	}
	if ln == nil {
		var err error
		if ln, err = bind(); err != nil {
			return nil, err
		}
	}
	d.keep(adminListenerName, ln, inherited) // upgrade.go
	return ln, nil
}

// activated holds the sockets systemd passed: a resource of the process,
// not of one Run, hence package state. go-systemd's activation.Files(true)
// takes them once per process (it unsets LISTEN_*, so a second call returns
// nothing: go-systemd issue #384); calling Files(false) again instead would
// wrap fd numbers that an earlier Run may have closed and the process reused
// (go-systemd PR #276). So they are taken once, kept open, and every Run
// serves on its own dup of them. Unsetting LISTEN_* also keeps them from
// a process started by a binary upgrade, which gets its sockets from the
// old process instead.
var activated struct {
	once  sync.Once
	files []*os.File
}

func activationFiles() []*os.File {
	activated.once.Do(func() { activated.files = activation.Files(true) })
	return activated.files
}

// multiListener serves several listening sockets as one: a goroutine per
// socket accepts and hands the connections over.
type multiListener struct {
	lns   []net.Listener
	conns chan net.Conn
	errs  chan error
	stop  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

func newMultiListener(lns []net.Listener) *multiListener {
	m := &multiListener{lns: lns, conns: make(chan net.Conn), errs: make(chan error), stop: make(chan struct{})}
	for _, ln := range lns {
		m.wg.Go(func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					select {
					case m.errs <- err:
						continue
					case <-m.stop:
						return
					}
				}
				select {
				case m.conns <- c:
				case <-m.stop:
					c.Close()
					return
				}
			}
		})
	}
	return m
}

func (m *multiListener) Accept() (net.Conn, error) {
	select {
	case c := <-m.conns:
		return c, nil
	case err := <-m.errs:
		return nil, err
	case <-m.stop:
		return nil, net.ErrClosed
	}
}

// Close closes every socket and waits for the accepting goroutines.
func (m *multiListener) Close() error {
	var errs []error
	m.once.Do(func() {
		close(m.stop)
		for _, ln := range m.lns {
			errs = append(errs, ln.Close())
		}
		m.wg.Wait()
	})
	return errors.Join(errs...)
}

// Addr is the first socket's address.
func (m *multiListener) Addr() net.Addr { return m.lns[0].Addr() }

// String lists every address (for the log).
func (m *multiListener) String() string {
	var s []string
	for _, ln := range m.lns {
		s = append(s, ln.Addr().String())
	}
	return strings.Join(s, ", ")
}

// listenFdsStart is SD_LISTEN_FDS_START: the first socket systemd passes.
const listenFdsStart = 3
