package pubsub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
)

// ErrInvalidOptions reports options that cannot work together.
var ErrInvalidOptions = errors.New("pubsub: invalid options")

// natsOptions maps the NATS-only options onto nats.go's (both connections
// take them; see mainOptions and peerOptions for the callbacks).
func (o *natsConfig) natsOptions(ctx context.Context) ([]nats.Option, error) {
	auth := 0
	for _, set := range []bool{o.token != "", o.user != "" || o.password != "", o.credsFile != "", o.nkeyFile != ""} {
		if set {
			auth++
		}
	}
	if auth > 1 {
		return nil, fmt.Errorf("%w: give at most one of WithToken, WithUserInfo, WithCredsFile, WithNKeyFile", ErrInvalidOptions)
	}
	if (o.certFile == "") != (o.keyFile == "") {
		return nil, fmt.Errorf("%w: WithClientCert needs both a cert file and a key file", ErrInvalidOptions)
	}
	if o.retainReplicas < 0 || o.retainReplicas > 5 {
		return nil, fmt.Errorf("%w: WithRetainReplicas(%d): JetStream keeps a stream on 1 to 5 servers; give 0 for min(3, the cluster's size)", ErrInvalidOptions, o.retainReplicas)
	}
	if o.namespace != "" {
		if err := ValidateTopic(o.namespace); err != nil {
			return nil, fmt.Errorf("%w: WithNamespace: %w", ErrInvalidOptions, err)
		}
	}
	name := o.name
	if name == "" {
		name = "goangel"
	}
	timeout := o.connectTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	if d, ok := ctx.Deadline(); ok {
		if left := time.Until(d); left < timeout {
			timeout = left
		}
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("pubsub: connect to NATS: %w", context.DeadlineExceeded)
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.Timeout(timeout),
		nats.NoCallbacksAfterClientClose(),
	}
	switch {
	case o.maxReconnects == 0:
		opts = append(opts, nats.MaxReconnects(-1))
	case o.maxReconnects < 0:
		opts = append(opts, nats.NoReconnect())
	default:
		opts = append(opts, nats.MaxReconnects(o.maxReconnects))
	}
	if o.reconnectWait > 0 {
		opts = append(opts, nats.ReconnectWait(o.reconnectWait))
	}
	switch {
	case o.token != "":
		opts = append(opts, nats.Token(o.token))
	case o.user != "" || o.password != "":
		opts = append(opts, nats.UserInfo(o.user, o.password))
	case o.credsFile != "":
		opts = append(opts, nats.UserCredentials(o.credsFile))
	case o.nkeyFile != "":
		opt, err := nats.NkeyOptionFromSeed(o.nkeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: nkey file %q: %w", ErrInvalidOptions, o.nkeyFile, err)
		}
		opts = append(opts, opt)
	}
	if o.tlsConfig != nil {
		opts = append(opts, nats.Secure(o.tlsConfig.Clone()))
	}
	if o.caFile != "" {
		opts = append(opts, nats.RootCAs(o.caFile))
	}
	if o.certFile != "" {
		opts = append(opts, nats.ClientCert(o.certFile, o.keyFile))
	}
	return append(opts, o.options...), nil
}

// mainOptions are the options of the main connection: base (from
// natsOptions) with the callbacks that report its state and errors.
func (b *NATS) mainOptions(base []nats.Option) []nats.Option {
	return append([]nats.Option{
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			b.cfg.emit(Event{Kind: EventDisconnected, Err: err})
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			b.cfg.emit(Event{Kind: EventReconnected})
			b.reconnected()
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			if !b.closing.Load() {
				b.cfg.emit(Event{Kind: EventConnectionClosed})
			}
		}),
		nats.ErrorHandler(b.asyncError),
	}, base...)
}

// peerOptions are the options of the peer connection (see peers in
// nats_request.go): base, without echo, named after the main one. Its
// state is not reported (the main connection's is); its errors are.
func (b *NATS) peerOptions(base []nats.Option) []nats.Option {
	return append(slices.Clip(base),
		nats.NoEcho(),
		func(o *nats.Options) error { o.Name += " peers"; return nil },
		nats.DisconnectErrHandler(nil),
		nats.ReconnectHandler(nil),
		nats.ClosedHandler(nil),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			b.cfg.emit(Event{Kind: EventError, Err: fmt.Errorf("pubsub: NATS peer connection: %w", err)})
		}),
	)
}
