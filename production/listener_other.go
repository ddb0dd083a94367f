//go:build !linux

package production

import "net"

// acceptQueued reports an empty queue: where accept4 is not at hand, an
// Accept that found no connection within queueQuiet is taken as the end of
// the queue.
func acceptQueued(net.Listener) (net.Conn, bool) { return nil, false }

// queueLen does not know the accept queue's length here: the stop takes the
// queue until an Accept finds it empty.
func queueLen(net.Listener) (int, bool) { return 0, false }
