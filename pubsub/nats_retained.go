package pubsub

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// The retained messages live in a JetStream stream. Its servers can die:
// while it has no leader (a few seconds while one is elected, or until
// enough of its servers return), loads and stores fail or time out. A
// subscription then starts with the live messages and gets the retained
// ones later; a store is retried for a while; nothing here ends a life.

const (
	// retainAttempt bounds one request to the stream: a load at
	// Subscribe, one attempt of a store, the set-up.
	retainAttempt = 2 * time.Second
	// retainStoreFor bounds the retries of a retained publish's store
	// (and ctx, when it ends first): a stream whose leader died has a new
	// one within seconds when enough of its servers live.
	retainStoreFor = 10 * time.Second
	// The reloader retries a failed load or set-up after reloadFirst,
	// doubling up to reloadMax.
	reloadFirst = 50 * time.Millisecond
	reloadMax   = 2 * time.Second
)

// The JetStream API's error codes that say a stream cannot have the
// replicas asked for.
const (
	codeNoPeers          = 10005 // no suitable peers for placement
	codeNoResources      = 10023 // insufficient resources
	codeReplicasFixed    = 10061 // replicas configuration can not be updated
	codeReplicasNoExtras = 10074 // replicas > 1 not supported in non-clustered mode
	codeNameInUse        = 10058 // stream name already in use with a different configuration
	codeStoreCreate      = 10049 // error creating store for stream
)

func apiCode(err error) int {
	var ae *jetstream.APIError
	if errors.As(err, &ae) {
		return int(ae.ErrorCode)
	}
	return 0
}

// setupRetained creates (or updates) the stream of retained messages.
// A server without JetStream leaves retained messages unavailable for
// good; a stream that does not answer (a cluster electing its leader) is
// reported, and set up again by the reloader.
func (b *NATS) setupRetained(ctx context.Context) error {
	js, err := jetstream.New(b.nc)
	if err != nil {
		return fmt.Errorf("pubsub: JetStream: %w", err)
	}
	b.js = js
	b.stream = "GOANGEL_RETAINED"
	if ns := b.cfg.conn.namespace; ns != "" {
		b.stream += "_" + strings.NewReplacer(".", "_", "*", "_", ">", "_").Replace(ns)
	}
	err = b.createStream(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) || errors.Is(err, nats.ErrNoResponders):
		b.retainErr = fmt.Errorf("%w: %w (%v)", ErrRetainUnavailable, errNoJetStream, err)
		b.cfg.emit(Event{Kind: EventError, Err: b.retainErr})
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("pubsub: set up the JetStream stream %s for retained messages: %w", b.stream, ctx.Err())
	case permanent(err):
		return err
	}
	b.retainFailed(fmt.Errorf("set up the stream %s: %w", b.stream, err))
	b.mu.Lock()
	b.startReloader()
	b.mu.Unlock()
	return nil
}

// permanent reports errors of the set-up that waiting does not cure: not
// JetStream temporarily unavailable (503), a stream offline (10118), nor a
// store the server could not create (10049: a stream of that name deleted a
// moment before still has its store going away).
func permanent(err error) bool {
	var ae *jetstream.APIError
	return errors.As(err, &ae) && ae.Code != 503 && ae.ErrorCode != 10118 && ae.ErrorCode != codeStoreCreate
}

// createStream creates the stream or updates it to the configuration
// asked for. Replicas: WithRetainReplicas's, else 3, or fewer when the
// cluster has fewer JetStream servers.
func (b *NATS) createStream(ctx context.Context) error {
	want := b.cfg.conn.retainReplicas
	auto := want == 0
	if auto {
		want = 3
	}
	scfg := jetstream.StreamConfig{
		Name:              b.stream,
		Description:       "goangel retained messages: the last message of each topic",
		Subjects:          []string{b.retainedSubject(">")},
		MaxMsgsPerSubject: 1,
		MaxMsgs:           int64(b.cfg.retainLimit),
		Discard:           jetstream.DiscardNew,
		Storage:           jetstream.FileStorage,
	}
	for {
		scfg.Replicas = want
		actx, cancel := context.WithTimeout(ctx, retainAttempt)
		st, err := b.js.CreateOrUpdateStream(actx, scfg)
		cancel()
		code := apiCode(err)
		switch {
		case err == nil:
			b.replicas.Store(int32(st.CachedInfo().Config.Replicas))
			b.streamUp.Store(true)
			return nil
		case auto && code == codeReplicasNoExtras:
			want = 1 // one server, not a cluster
			continue
		case auto && want > 1 && (code == codeNoPeers || code == codeNoResources):
			want--
			continue
		case code == codeReplicasFixed:
			// The server does not change an existing stream's replicas:
			// keep the stream as it is.
			actx, cancel := context.WithTimeout(ctx, retainAttempt)
			st, ierr := b.js.Stream(actx, b.stream)
			cancel()
			if ierr != nil {
				return err
			}
			have := st.CachedInfo().Config.Replicas
			b.cfg.emit(Event{Kind: EventError, Err: fmt.Errorf("pubsub: the stream %s of retained messages keeps %d replicas, not %d: %w", b.stream, have, want, err)})
			b.replicas.Store(int32(have))
			b.streamUp.Store(true)
			return nil
		case code == codeNoPeers || code == codeNoResources || code == codeReplicasNoExtras:
			return fmt.Errorf("pubsub: the JetStream stream %s for retained messages cannot have %d replicas (WithRetainReplicas, --pubsub-retain-replicas): %w; give at most the number of JetStream servers in the cluster, or 0 for min(3, their number)", b.stream, want, err)
		case code == codeNameInUse:
			return fmt.Errorf("pubsub: a JetStream stream named %s exists with another configuration (subjects, storage) and is not goangel's to change: %w; delete it (nats stream rm %s) or choose another --pubsub-namespace", b.stream, err, b.stream)
		case err != nil:
			return fmt.Errorf("pubsub: set up the JetStream stream %s for retained messages: %w", b.stream, err)
		}
	}
}

// RetainReplicas is the number of servers that keep the stream of
// retained messages (see WithRetainReplicas), or 0 while it is not set up
// (no JetStream, or its set-up waits for the cluster).
func (b *NATS) RetainReplicas() int { return int(b.replicas.Load()) }

// store keeps a retained publish in the stream and returns its sequence.
// A store that fails for want of a stream leader is retried for up to
// retainStoreFor (or ctx); every attempt has the same message id, so that
// a store whose acknowledgement was lost is not stored twice.
func (b *NATS) store(ctx context.Context, topic string, hdr nats.Header, data []byte) (uint64, error) {
	sm := nats.Msg{Subject: b.retainedSubject(topic), Header: hdr, Data: data}
	sctx, cancel := context.WithTimeout(ctx, retainStoreFor)
	defer cancel()
	id := nuid.Next()
	pause := reloadFirst
	for {
		actx, cancelAttempt := context.WithTimeout(sctx, retainAttempt)
		ack, err := b.js.PublishMsg(actx, &sm, jetstream.WithMsgID(id))
		cancelAttempt()
		switch {
		case err == nil:
			return ack.Sequence, nil
		case errors.Is(err, nats.ErrConnectionClosed):
			return 0, natsErr(err)
		case strings.Contains(strings.ToLower(err.Error()), "maximum messages exceeded"):
			return 0, fmt.Errorf("%w: the stream %s is full (%d topics, WithRetainLimit): %w", ErrRetainLimit, b.stream, b.cfg.retainLimit, err)
		case apiCode(err) != 0 && permanent(err):
			return 0, fmt.Errorf("%w: %w", ErrRetainUnavailable, err)
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-sctx.Done():
			t.Stop()
			if ctx.Err() != nil {
				return 0, fmt.Errorf("%w: not stored before the publish's context ended: %w (last: %v)", ErrRetainUnavailable, ctx.Err(), err)
			}
			return 0, fmt.Errorf("%w: the stream %s did not store it within %v: %w", ErrRetainUnavailable, b.stream, retainStoreFor, err)
		}
		pause = min(2*pause, 500*time.Millisecond)
	}
}

// loadRetained reads the retained messages of the topics s's pattern
// matches, oldest first, leaving out its own client's (unless IncludeSelf).
func (b *NATS) loadRetained(ctx context.Context, s *natsSub) ([]storedMsg, error) {
	st, err := b.js.Stream(ctx, b.stream)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(b.retainedSubject(s.pattern)))
	if err != nil {
		return nil, err
	}
	var all []storedMsg
	for subj := range info.State.Subjects {
		raw, err := st.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // replaced or removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		m := &nats.Msg{Subject: strings.TrimPrefix(raw.Subject, retainedPrefix+"."), Header: raw.Header, Data: raw.Data}
		if uid, _, _ := strings.Cut(m.Header.Get(headerSender), " "); uid == s.client.uid && !s.self {
			continue
		}
		all = append(all, storedMsg{raw.Sequence, m})
	}
	slices.SortFunc(all, func(a, b storedMsg) int { return cmp.Compare(a.seq, b.seq) })
	return all, nil
}

// storedMsg is a retained message read from the stream.
type storedMsg struct {
	seq uint64
	m   *nats.Msg
}

// loadLater lets s's live messages through now and leaves its retained
// messages to the reloader (err: why they could not be loaded, nil when
// the connection is away).
func (b *NATS) loadLater(s *natsSub, err error) {
	s.mu.Lock()
	s.live = map[string]struct{}{}
	s.later.Store(true) // before loaded lets live messages through
	s.mu.Unlock()
	s.loaded(nil)
	if err != nil {
		b.retainFailed(fmt.Errorf("load the retained messages of %q: %w", s.pattern, err))
	}
	b.mu.Lock()
	if !s.gone.Load() {
		b.reloads[s] = struct{}{}
		b.startReloader()
	}
	b.mu.Unlock()
}

// retainFailed reports the first failure of a run (EventError, through
// the logger too); the next are counted only.
func (b *NATS) retainFailed(err error) {
	if !b.retainFailing.Swap(true) {
		b.cfg.emit(Event{Kind: EventError, Err: fmt.Errorf("pubsub: the stream of retained messages does not answer: %w; subscriptions start without their retained messages and get them when it does (further failures are counted in Stats().RetainLoadFailed, not reported)", err)})
	}
}

// retainAnswered ends a run of failures.
func (b *NATS) retainAnswered() {
	if b.retainFailing.Swap(false) {
		b.cfg.emit(Event{Kind: EventRetainRestored})
	}
}

// reconnected makes every subscription that gets retained messages read
// them again: the live copies sent while the connection was away are
// lost (core NATS keeps nothing), the stream has them.
func (b *NATS) reconnected() {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, e := range b.entries {
		for _, s := range *e.subs.Load() {
			if s.retained {
				b.reloads[s] = struct{}{}
				n++
			}
		}
	}
	if n > 0 {
		b.startReloader()
	}
}

// startReloader starts the reloader unless it runs; with b.mu held.
func (b *NATS) startReloader() {
	if b.reloading || b.life.Err() != nil {
		return
	}
	b.reloading = true
	b.wg.Add(1)
	go b.reloader()
}

// reloader sets the stream up (when that failed at NewNATS) and loads the
// retained messages of the subscriptions whose load failed, retrying
// with backoff until it succeeds, then ends. Close stops it.
func (b *NATS) reloader() {
	defer b.wg.Done()
	pause := reloadFirst
	t := time.NewTimer(pause)
	defer t.Stop()
	for {
		select {
		case <-b.life.Done():
			return
		case <-t.C:
		}
		if b.reload() {
			b.mu.Lock()
			if len(b.reloads) == 0 {
				b.reloading = false
				b.mu.Unlock()
				b.retainAnswered()
				return
			}
			b.mu.Unlock()
			pause = reloadFirst // subscriptions added meanwhile
		} else {
			pause = min(2*pause, reloadMax)
		}
		t.Reset(pause)
	}
}

// reload makes one attempt; it reports whether every subscription
// waiting then got its retained messages.
func (b *NATS) reload() bool {
	if !b.streamUp.Load() {
		if err := b.createStream(b.life); err != nil {
			return false
		}
	}
	b.mu.Lock()
	subs := make([]*natsSub, 0, len(b.reloads))
	for s := range b.reloads {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	for _, s := range subs {
		ctx, cancel := context.WithTimeout(b.life, retainAttempt)
		ms, err := b.loadRetained(ctx, s)
		cancel()
		if err != nil {
			return false
		}
		s.resync(ms)
		b.mu.Lock()
		delete(b.reloads, s)
		b.mu.Unlock()
	}
	return true
}
