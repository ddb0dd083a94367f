// Package faults is goangel's standing fault suite: its tests run the fault
// app (internal/faultapp) in a production.Runner, or as a real process, and
// attack it the way an unlucky deployment or a hostile client would: crash
// storms under load (HTTP/1.1 and HTTP/2), hostile bytes on the raw socket,
// descriptor exhaustion, a console pipe that closes, a log directory that
// goes away, fills up or turns read-only, hooks, configure calls and
// handlers that hang at shutdown, and the operating verbs (reload, stop,
// binary upgrade, scale) against hijacked connections, long requests,
// queued and silent connections and very large numbers. Failures are counted by internal/loadclient,
// which never retries. docs/RELIABILITY.md lists every fault, what goangel
// does, and the test here that proves it.
//
// The package has no code of its own; `go test ./internal/faults` runs the
// suite (well under five minutes on two cores, -race included).
package faults
