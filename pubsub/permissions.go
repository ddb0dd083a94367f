package pubsub

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// AllowList is an immutable list of topic patterns that says what a client
// may publish to or subscribe to. Build one with AllowAll, DenyAll or
// Allow; its patterns cannot be changed afterwards (Allow copies them).
//
// The zero AllowList allows everything, as Dart's pub_sub does when
// canPublish and canSubscribe are not given: a ClientInfo with only an ID
// may do anything.
type AllowList struct {
	set      bool     // false: the zero value, everything
	patterns []string // never shared with a caller
}

// AllowAll returns the allow-list that permits every topic.
func AllowAll() AllowList { return AllowList{} }

// DenyAll returns the allow-list that permits no topic.
func DenyAll() AllowList { return AllowList{set: true} }

// Allow returns the allow-list of these patterns (see Match). Allow() with
// no pattern permits nothing. The patterns are checked by Register, which
// fails with ErrInvalidTopic for a malformed one.
func Allow(patterns ...string) AllowList {
	return AllowList{set: true, patterns: slices.Clone(patterns)}
}

// Patterns returns a copy of the list's patterns; nil when it allows
// everything.
func (a AllowList) Patterns() []string {
	if !a.set {
		return nil
	}
	return append([]string{}, a.patterns...)
}

// All reports whether the list allows every topic.
func (a AllowList) All() bool {
	if !a.set {
		return true
	}
	for _, p := range a.patterns {
		if p == ">" {
			return true
		}
	}
	return false
}

func (a AllowList) String() string {
	if a.All() {
		return "all"
	}
	if len(a.patterns) == 0 {
		return "none"
	}
	return strings.Join(a.patterns, ",")
}

// ClientInfo names a client and what it may do, after Dart's pub_sub
// ClientInfo (canPublish / canSubscribe), generalised to topic patterns.
//
// A topic may be published to when it matches one of CanPublish. A
// pattern may be subscribed to when every topic it can match is matched by
// one of CanSubscribe, taken together: "user.*" is allowed by "user.>" but
// not by "user.1", and "user.>" is allowed by "user.*" and "user.*.>" at
// once. The zero AllowList allows everything.
type ClientInfo struct {
	ID           string
	CanPublish   AllowList
	CanSubscribe AllowList
}

// perms holds the allow-lists that apply to a client: the ones given to
// Register and, when the broker knows its clients, the broker's. Every list
// must allow; a list that allows everything is left out.
type perms struct {
	pub [][]string
	sub [][]string
}

func (p *perms) canPublish(topic string) bool {
	for _, l := range p.pub {
		if !anyCovers(l, topic) {
			return false
		}
	}
	return true
}

func (p *perms) canSubscribe(pattern string) bool {
	if len(p.sub) == 0 {
		return true
	}
	toks := strings.Split(pattern, ".")
	for _, l := range p.sub {
		if anyCovers(l, pattern) {
			continue // the common case: one pattern of the list covers it
		}
		entries := make([][]string, len(l))
		for i, a := range l {
			entries[i] = strings.Split(a, ".")
		}
		if !coveredBy(entries, toks) {
			return false
		}
	}
	return true
}

func anyCovers(list []string, s string) bool {
	for _, a := range list {
		if covers(a, s) {
			return true
		}
	}
	return false
}

// coveredBy reports whether every topic matched by the pattern p (as
// tokens) is matched by at least one of the patterns in list (as tokens),
// together. Topics are sequences of tokens drawn from an infinite set, so a
// "*" of p can always take a token that no literal of the list names: only
// the list's "*" (and ">") tokens cover it. A ">" of p is "*" followed by
// nothing or by ">" again; each step consumes a token of every list
// pattern, so the recursion ends.
func coveredBy(list [][]string, p []string) bool {
	if len(p) == 0 {
		for _, e := range list {
			if len(e) == 0 {
				return true
			}
		}
		return false
	}
	for _, e := range list {
		if len(e) > 0 && e[0] == ">" {
			return true
		}
	}
	if p[0] == ">" {
		return coveredBy(list, []string{"*"}) && coveredBy(list, []string{"*", ">"})
	}
	var next [][]string
	for _, e := range list {
		if len(e) > 0 && (e[0] == "*" || (p[0] != "*" && e[0] == p[0])) {
			next = append(next, e[1:])
		}
	}
	if len(next) == 0 {
		return false
	}
	return coveredBy(next, p[1:])
}

// admitRegister is what every broker checks before it registers a client:
// the context, the id and the permission lists.
func (c *config) admitRegister(ctx context.Context, info ClientInfo) (perms, error) {
	if err := ctx.Err(); err != nil {
		return perms{}, fmt.Errorf("pubsub: register %q: %w", info.ID, err)
	}
	var p perms
	if err := validateID(info.ID); err != nil {
		return p, err
	}
	lists := []ClientInfo{info}
	if c.known != nil {
		k, ok := c.known[info.ID]
		if !ok {
			return p, fmt.Errorf("%w: %q (the broker was given a list of known clients without it)", ErrUnknownClient, info.ID)
		}
		lists = append(lists, k)
	}
	for _, l := range lists {
		for _, t := range l.CanPublish.patterns {
			if err := ValidatePattern(t); err != nil {
				return p, fmt.Errorf("pubsub: client %q CanPublish: %w", info.ID, err)
			}
		}
		for _, t := range l.CanSubscribe.patterns {
			if err := ValidatePattern(t); err != nil {
				return p, fmt.Errorf("pubsub: client %q CanSubscribe: %w", info.ID, err)
			}
		}
		if !l.CanPublish.All() {
			p.pub = append(p.pub, l.CanPublish.patterns)
		}
		if !l.CanSubscribe.All() {
			p.sub = append(p.sub, l.CanSubscribe.patterns)
		}
	}
	return p, nil
}

// admitSubscribe is what every client checks before it subscribes.
func (p *perms) admitSubscribe(ctx context.Context, id, pattern string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pubsub: subscribe %q: %w", pattern, err)
	}
	if err := ValidatePattern(pattern); err != nil {
		return err
	}
	if !p.canSubscribe(pattern) {
		return fmt.Errorf("%w: client %q may not subscribe to %q", ErrPermission, id, pattern)
	}
	return nil
}

// admitPublish is what every client checks before it publishes (after
// checkPublish): a valid topic it may publish to.
func (p *perms) admitPublish(id, topic string) error {
	if err := ValidateTopic(topic); err != nil {
		return err
	}
	if !p.canPublish(topic) {
		return fmt.Errorf("%w: client %q may not publish to %q", ErrPermission, id, topic)
	}
	return nil
}

func validateID(id string) error {
	if id == "" || strings.TrimSpace(id) != id || strings.ContainsAny(id, "\r\n") {
		return fmt.Errorf("%w: %q (an id is non-empty, with no leading or trailing space and no line break)", ErrInvalidID, id)
	}
	return nil
}

func knownMap(infos []ClientInfo) map[string]ClientInfo {
	if infos == nil {
		return nil
	}
	m := make(map[string]ClientInfo, len(infos))
	for _, i := range infos {
		m[i.ID] = i
	}
	return m
}
