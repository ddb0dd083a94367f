package production

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
)

// listen binds the shared listener on -a/--address and -p/--port. An IPv4
// address (0.0.0.0 included) binds IPv4 only and an IPv6 address IPv6 only,
// as users expect, and the listener's address is then the one they asked
// for ("0.0.0.0:3000", not Go's dual-stack "[::]:3000"); a host name binds
// whatever it resolves to. A port already taken says how to pick another.
func (r *Runner) listen(ctx context.Context, cfg *Config) (net.Listener, error) {
	address := net.JoinHostPort(cfg.Address, strconv.Itoa(cfg.Port))
	network := "tcp"
	if ip, err := netip.ParseAddr(cfg.Address); err == nil {
		network = "tcp6"
		if ip.Unmap().Is4() {
			network = "tcp4"
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, network, address)
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		port := "PORT"
		if r.envPrefix != "" {
			port = r.envPrefix + "_PORT"
		}
		return nil, fmt.Errorf("cannot listen on %s: %w (another process has it: pick another port with -p/--port or $%s, or -p 0 for any free one)", address, err, port)
	case err != nil:
		return nil, fmt.Errorf("cannot listen on %s: %w", address, err)
	}
	return ln, nil
}
