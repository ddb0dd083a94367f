package pubsub

import (
	"sync"
	"testing"
)

// The gate's words hold the counts until a flush moves them into the
// totals: whatever the flushes, the counts stay exact, and the inside
// count is back to zero once everyone has left.
func TestGateCountsAcrossFlushes(t *testing.T) {
	var g gate
	const (
		publishers = 4
		each       = 100_000 // past several flushes of the publish field (2^15)
	)
	var wg sync.WaitGroup
	for i := range publishers {
		wg.Go(func() {
			for j := range each {
				p := g.enter()
				// n cycles through 0..inlineMax and one above it (counted apart).
				g.done(p, (i+j)%(inlineMax+2))
			}
		})
	}
	// A quiesce meanwhile moves publishers to the other parity.
	wg.Go(func() {
		for range 100 {
			g.quiesce()
		}
	})
	wg.Wait()
	var want uint64
	for i := range publishers {
		for j := range each {
			want += uint64((i + j) % (inlineMax + 2))
		}
	}
	pub, del := g.counts()
	if pub != publishers*each || del != want {
		t.Fatalf("counts = %d published, %d delivered; want %d, %d", pub, del, publishers*each, want)
	}
	for p := range g.words {
		if in := g.words[p].v.Load() & insideMask; in != 0 {
			t.Errorf("parity %d: %d publishers still inside", p, in)
		}
	}
	if g.published == 0 {
		t.Error("no flush happened: the test does not reach the thresholds")
	}
}

// Deliveries past the word's field (2^24, 16.8M) stay exact: 300,000
// publishes of the largest inline n make 18.9M, counted by flushes on the
// way (without them the field would wrap).
func TestGateFlushesDeliveries(t *testing.T) {
	var g gate
	const n = 300_000 // × 63 deliveries ≈ 18.9M > 2^24
	for range n {
		g.done(g.enter(), inlineMax)
	}
	pub, del := g.counts()
	if pub != n || del != n*inlineMax {
		t.Fatalf("counts = %d, %d; want %d, %d", pub, del, n, n*inlineMax)
	}
	if g.delivered == 0 {
		t.Error("no flush of deliveries happened")
	}
}
