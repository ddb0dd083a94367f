package pubsub

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// InstanceID is the client id goangel's runner gives one life of one
// instance: "APP/INSTANCE#LIFE@HOST:PID", e.g. "example/2#3@web1:4242".
// The host and process id make it unique across the processes that share
// a NATS server (two copies of an app both have an instance 2 in its first
// life), and keep it readable in logs. Except-sender never relies on ids:
// each client also has a unique token (see headerSender).
func InstanceID(app string, instance, life int) string {
	return fmt.Sprintf("%s/%d#%d@%s", app, instance, life, processTag())
}

// processTag is "HOST:PID" with the host's first label (whitespace
// removed), computed once: it does not change while the process runs.
var processTag = sync.OnceValue(func() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	host, _, _ = strings.Cut(host, ".")
	host = strings.Join(strings.Fields(host), "")
	return host + ":" + strconv.Itoa(os.Getpid())
})
