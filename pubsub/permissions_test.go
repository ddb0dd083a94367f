package pubsub_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/goangel/angel/pubsub"
)

// TestSubscribePermissionProperty: a pattern may be subscribed to exactly
// when every topic it can match is matched by one of CanSubscribe, taken
// together, checked against brute force: every topic of up to five tokens
// over "a", "b" and "c" (a token no pattern names, standing for all the
// others).
func TestSubscribePermissionProperty(t *testing.T) {
	var topics []string
	var grow func(prefix []string)
	grow = func(prefix []string) {
		if len(prefix) > 0 {
			topics = append(topics, strings.Join(prefix, "."))
		}
		if len(prefix) == 5 {
			return
		}
		for _, tok := range []string{"a", "b", "c"} {
			grow(append(prefix, tok))
		}
	}
	grow(nil)
	rng := rand.New(rand.NewPCG(1, 2))
	randPattern := func() string {
		n := 1 + rng.IntN(3)
		toks := make([]string, n)
		for i := range toks {
			toks[i] = []string{"a", "b", "*", "*"}[rng.IntN(4)]
		}
		if rng.IntN(3) == 0 {
			toks[n-1] = ">"
		}
		return strings.Join(toks, ".")
	}
	b := pubsub.NewMemory()
	defer b.Close(context.Background())
	ctx := context.Background()
	for i := range 3000 {
		list := make([]string, 1+rng.IntN(3))
		for j := range list {
			list[j] = randPattern()
		}
		p := randPattern()
		want := true
		for _, topic := range topics {
			if !pubsub.Match(p, topic) {
				continue
			}
			hit := false
			for _, a := range list {
				if pubsub.Match(a, topic) {
					hit = true
					break
				}
			}
			if !hit {
				want = false
				break
			}
		}
		c, err := b.Register(ctx, pubsub.ClientInfo{ID: "c", CanSubscribe: pubsub.Allow(list...)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Subscribe(ctx, p)
		if got := err == nil; got != want || (err != nil && !errors.Is(err, pubsub.ErrPermission)) {
			t.Errorf("case %d: CanSubscribe %q, Subscribe(%q): err %v, want allowed=%v", i, list, p, err, want)
		}
		_ = c.Close()
	}
}
