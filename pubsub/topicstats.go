package pubsub

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// TopicStats are the counters of one pattern given to WithTopicStats,
// summed over every topic it matches. A topic matched by several of the
// patterns counts in each.
type TopicStats struct {
	// Pattern is the pattern given to WithTopicStats.
	Pattern string
	// Published counts Publish and Request calls (from this process) to
	// a matching topic.
	Published uint64
	// Delivered counts live messages of a matching topic handed to
	// subscription queues of this process (retained messages handed to a
	// new subscription are not counted here).
	Delivered uint64
	// Dropped counts messages of a matching topic dropped by overflow
	// policies of this process's subscriptions (with DropOldest: the
	// message dropped to make room, counted under its own topic).
	Dropped uint64
	// SlowConsumer counts slow-consumer episodes (EventSlowConsumer)
	// begun by a message of a matching topic.
	SlowConsumer uint64
}

// WithTopicStats keeps per-topic counters (see TopicStats) for each of
// patterns (subscription patterns: exact topics or with wildcards), read
// with TopicStats(). Only these patterns are counted, so the number of
// series stays bounded; without the option nothing is counted per topic
// and publishing costs nothing more. An invalid pattern makes NewMemory
// panic and NewNATS fail, naming it.
func WithTopicStats(patterns ...string) Option {
	return func(c *config) { c.topicStats = append(c.topicStats, patterns...) }
}

// topicCounter is one pattern's counters.
type topicCounter struct {
	pattern                             string
	published, delivered, dropped, slow atomic.Uint64
}

// topicSet is the counters of the patterns one topic matches; nil when
// it matches none.
type topicSet []*topicCounter

func (s topicSet) published() {
	for _, c := range s {
		c.published.Add(1)
	}
}

func (s topicSet) delivered(n uint64) {
	for _, c := range s {
		c.delivered.Add(n)
	}
}

// topicStats is a broker's opted-in patterns, with a bounded cache of the
// set of each topic seen (for the paths that have no route of their own:
// drops, slow episodes, NATS). nil when the option is not given.
type topicStats struct {
	counters []*topicCounter
	mu       sync.Mutex                          // serialises cache writers
	cache    atomic.Pointer[map[string]topicSet] // copy-on-write
}

// newTopicStats validates patterns; nil, nil when there are none.
func newTopicStats(patterns []string) (*topicStats, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	ts := &topicStats{}
	seen := map[string]bool{}
	for _, p := range patterns {
		if err := ValidatePattern(p); err != nil {
			return nil, fmt.Errorf("pubsub: WithTopicStats: pattern %q: %w; give patterns like \"orders\", \"orders.*\" or \"orders.>\"", p, err)
		}
		if !seen[p] {
			seen[p] = true
			ts.counters = append(ts.counters, &topicCounter{pattern: p})
		}
	}
	ts.cache.Store(&map[string]topicSet{})
	return ts, nil
}

// of returns the set of a valid topic (nil when ts is nil or no pattern
// matches it).
func (ts *topicStats) of(topic string) topicSet {
	if ts == nil {
		return nil
	}
	if s, ok := (*ts.cache.Load())[topic]; ok {
		return s
	}
	var s topicSet
	for _, c := range ts.counters {
		if match(c.pattern, topic) {
			s = append(s, c)
		}
	}
	ts.mu.Lock()
	old := *ts.cache.Load()
	if _, ok := old[topic]; !ok && len(old) < maxRoutes {
		m := make(map[string]topicSet, len(old)+1)
		maps.Copy(m, old)
		m[topic] = s
		ts.cache.Store(&m)
	}
	ts.mu.Unlock()
	return s
}

func (ts *topicStats) dropped(topic string) {
	for _, c := range ts.of(topic) {
		c.dropped.Add(1)
	}
}

func (ts *topicStats) slow(topic string) {
	for _, c := range ts.of(topic) {
		c.slow.Add(1)
	}
}

// snapshot returns the counters, in the order the patterns were given
// (nil when ts is nil).
func (ts *topicStats) snapshot() []TopicStats {
	if ts == nil {
		return nil
	}
	out := make([]TopicStats, 0, len(ts.counters))
	for _, c := range ts.counters {
		out = append(out, TopicStats{
			Pattern:      c.pattern,
			Published:    c.published.Load(),
			Delivered:    c.delivered.Load(),
			Dropped:      c.dropped.Load(),
			SlowConsumer: c.slow.Load(),
		})
	}
	return slices.Clip(out)
}
