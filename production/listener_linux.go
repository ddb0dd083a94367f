package production

import (
	"errors"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// acceptQueued takes one connection waiting in the kernel's accept queue of
// ln without waiting (accept4 on the non-blocking socket); it reports false
// when the queue is empty or the socket cannot be reached.
func acceptQueued(ln net.Listener) (net.Conn, bool) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, false
	}
	nfd := -1
	var aerr error
	cerr := rc.Control(func(fd uintptr) {
		for {
			nfd, _, aerr = unix.Accept4(int(fd), unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
			// A connection reset while queued is gone: try the next one.
			if !errors.Is(aerr, unix.EINTR) && !errors.Is(aerr, unix.ECONNABORTED) {
				return
			}
		}
	})
	if cerr != nil || aerr != nil {
		return nil, false
	}
	f := os.NewFile(uintptr(nfd), "accepted")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, false
	}
	return c, true
}

// queueLen returns how many connections wait in the kernel's accept queue of
// ln (TCP_INFO of a listening socket: tcpi_unacked is the queue's length,
// what ss shows as Recv-Q); false when ln is not a TCP socket.
func queueLen(ln net.Listener) (int, bool) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var info *unix.TCPInfo
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || gerr != nil || info.State != tcpListen {
		return 0, false
	}
	return int(info.Unacked), true
}

// tcpListen is the kernel's TCP_LISTEN state (include/net/tcp_states.h).
const tcpListen = 10
