// Package peers runs goangel's benchmark workloads through the peer libraries
// (watermill's gochannel, cskr/pubsub, NATS, samber/do v2, go.uber.org/dig,
// file-rotatelogs, lumberjack, a plain chi http.Server) beside goangel itself,
// so that ratios come from one `go test -bench` run.
//
// It is a separate module so the goangel library never depends on the peers.
package peers
