package production_test

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/goangel/angel/production"
)

// -a 0.0.0.0 binds IPv4 only and logs the address asked for; -a ::1 binds
// IPv6 only.
func TestListenFamilyFollowsTheAddress(t *testing.T) {
	h := startRunner(t, hello, []string{"-j", "1", "-a", "0.0.0.0", "-p", "0"})
	addr := h.run.Addr().(*net.TCPAddr)
	if !addr.IP.Equal(net.IPv4zero) || addr.IP.To4() == nil {
		t.Fatalf("bound %v, want 0.0.0.0", addr)
	}
	if want := "listening at http://0.0.0.0:"; !strings.Contains(h.run.Log(), want) {
		t.Errorf("log lacks %q:\n%s", want, h.run.Log())
	}
	if c, err := net.Dial("tcp6", net.JoinHostPort("::1", strconv.Itoa(addr.Port))); err == nil {
		c.Close()
		t.Errorf("-a 0.0.0.0 also accepts IPv6 connections")
	}
	if code, _, _, err := getWith(h.client, "http://"+net.JoinHostPort("127.0.0.1", strconv.Itoa(addr.Port))+"/"); err != nil || code != 200 {
		t.Errorf("GET over IPv4 = %d %v", code, err)
	}

	if l, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skip("no IPv6 loopback:", err)
	} else {
		l.Close()
	}
	h6 := startRunner(t, hello, []string{"-j", "1", "-a", "::1", "-p", "0"})
	addr6 := h6.run.Addr().(*net.TCPAddr)
	if c, err := net.Dial("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(addr6.Port))); err == nil {
		c.Close()
		t.Errorf("-a ::1 also accepts IPv4 connections")
	}
	if want := "listening at http://[::1]:"; !strings.Contains(h6.run.Log(), want) {
		t.Errorf("log lacks %q:\n%s", want, h6.run.Log())
	}
}

// A port in use says how to pick another one.
func TestAddressInUseSaysHowToPickAnotherPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	_, err = runToEnd(t, hello, []string{"-p", port})
	if production.ExitCode(err) != production.ExitStartup {
		t.Fatalf("Run = %v, want a start-up error", err)
	}
	for _, want := range []string{"address already in use", "-p/--port", "$TEST_PORT", "-p 0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
