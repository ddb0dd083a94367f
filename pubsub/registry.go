package pubsub

import (
	"fmt"
	"maps"
	"slices"
	"sync"
)

// registry is the table of live clients that both brokers share: an id is
// held by at most one live client, nothing registers after shut, and shut
// hands every client over exactly once.
type registry[C comparable] struct {
	mu      sync.Mutex
	closed  bool
	clients map[string]C
}

// register adds the client that newClient makes for id, unless the
// registry is shut or the id is taken.
func (r *registry[C]) register(id string, newClient func() C) (C, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var zero C
	if r.closed {
		return zero, fmt.Errorf("pubsub: register %q: %w", id, ErrClosed)
	}
	if _, dup := r.clients[id]; dup {
		return zero, fmt.Errorf("%w: %q (a live client has it; ids are free again once their client is closed)", ErrDuplicateID, id)
	}
	if r.clients == nil {
		r.clients = make(map[string]C)
	}
	c := newClient()
	r.clients[id] = c
	return c, nil
}

// release frees id if c still holds it.
func (r *registry[C]) release(id string, c C) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.clients[id] == c {
		delete(r.clients, id)
	}
}

// shut closes the registry and returns the live clients; first is false
// when it was already shut (the caller then has nothing to do).
func (r *registry[C]) shut() (clients []C, first bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, false
	}
	r.closed = true
	return slices.Collect(maps.Values(r.clients)), true
}
