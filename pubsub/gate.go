package pubsub

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// gate is the in-memory broker's publish fence and its publish counters,
// in one word per epoch parity, so that a publish costs two atomic adds
// (enter and done) with its counting included, not four (a fence's two and
// one for each counter): beside four channel sends, each locked add is a
// visible share of a publish.
//
// The fence: a publisher enters (counts itself inside under the current
// epoch's parity and checks the epoch did not move), checks the closed
// flags of the queues it sends to, sends, and leaves. quiesce flips the
// epoch and waits until no publisher is inside under the old parity, one
// quiesce at a time. Atomics are sequentially consistent, so for every
// publisher either it entered after the flip of an earlier quiesce and sees
// a flag set before that quiesce, or its count is waited for by the first
// flip after it entered, which a later quiesce (serialised by quiesceMu)
// follows or is. New publishers count under the other parity, so a steady
// stream of them cannot starve the wait. Publishers never block or call
// user code while inside (Block waits and event hooks happen outside), so
// the wait is short.
//
// The word of a parity holds three counts:
//
//	bits  0–23  publishers inside (2^24 at once would take 32 GiB of stacks)
//	bits 24–39  publishes counted and not yet flushed
//	bits 40–63  deliveries counted and not yet flushed
//
// done adds -1 inside, +1 publish and its n deliveries in one add (n above
// inlineMax goes to the totals directly). A count past half its field is
// flushed into the 64-bit totals by whoever sees it (TryLock: one flusher
// at a time, the others go on), about once every 32k publishes; past three
// quarters, the publisher that sees it waits for flushMu, which is only
// taken outside the fence. The quarter left is headroom for the adds of
// publishers between their add and its check (two instructions): 2^14 of
// them at once, or 2^22 / inlineMax = 2^16 with the largest inline n.
type gate struct {
	quiesceMu sync.Mutex
	epoch     atomic.Uint64
	words     [2]paddedWord

	flushMu              sync.Mutex
	published, delivered uint64 // flushed totals, guarded by flushMu
}

type paddedWord struct {
	_ [64]byte
	v atomic.Uint64
	_ [56]byte
}

const (
	insideBits = 24
	pubShift   = insideBits
	pubBits    = 16
	delShift   = pubShift + pubBits
	delBits    = 64 - delShift

	insideMask = 1<<insideBits - 1
	pubMask    = 1<<pubBits - 1
	delMask    = 1<<delBits - 1

	// inlineMax is the largest delivery count done adds into the word.
	inlineMax = 63
)

// enter announces a publisher; the parity it returns goes to leave or done.
// The count is valid only if the epoch did not move meanwhile: then every
// later flip (the first of which waits for this parity) sees it.
func (g *gate) enter() uint64 {
	for {
		e := g.epoch.Load()
		w := &g.words[e&1].v
		w.Add(1)
		if g.epoch.Load() == e {
			return e & 1
		}
		w.Add(^uint64(0)) // -1: not inside after all
	}
}

// leave ends a stay inside without counting a publish (the slow path
// leaves to wait, then enters again).
func (g *gate) leave(p uint64) { g.words[p].v.Add(^uint64(0)) }

// done leaves, counting one publish delivered n times.
func (g *gate) done(p uint64, n int) {
	d := uint64(n)
	if d > inlineMax {
		g.addDelivered(d)
		d = 0
	}
	v := g.words[p].v.Add(1<<pubShift + d<<delShift - 1)
	if pub, del := v>>pubShift&pubMask, v>>delShift; pub > pubMask/2 || del > delMask/2 {
		g.flush(p, pub > pubMask/4*3 || del > delMask/4*3)
	}
}

// flush moves the counts of parity p's word into the totals. Without wait
// it gives way to a flush already running.
func (g *gate) flush(p uint64, wait bool) {
	if wait {
		g.flushMu.Lock()
	} else if !g.flushMu.TryLock() {
		return
	}
	w := &g.words[p].v
	v := w.Load()
	pub, del := v>>pubShift&pubMask, v>>delShift
	g.published += pub
	g.delivered += del
	// Only flushers take counts out, one at a time, so the fields hold at
	// least what v showed: subtracting it borrows nothing.
	w.Add(-(pub<<pubShift | del<<delShift))
	g.flushMu.Unlock()
}

// addDelivered counts deliveries made outside a publish's done.
func (g *gate) addDelivered(n uint64) {
	g.flushMu.Lock()
	g.delivered += n
	g.flushMu.Unlock()
}

// counts returns the publishes and deliveries counted so far. Flushes
// (which move counts from the words to the totals) are excluded meanwhile,
// so each figure is one that was true.
func (g *gate) counts() (published, delivered uint64) {
	g.flushMu.Lock()
	defer g.flushMu.Unlock()
	published, delivered = g.published, g.delivered
	for i := range g.words {
		v := g.words[i].v.Load()
		published += v >> pubShift & pubMask
		delivered += v >> delShift
	}
	return published, delivered
}

// quiesce returns once no publisher can still send to a queue whose closed
// flag was set before the call.
func (g *gate) quiesce() {
	g.quiesceMu.Lock()
	old := g.epoch.Add(1) - 1
	for g.words[old&1].v.Load()&insideMask != 0 {
		runtime.Gosched()
	}
	g.quiesceMu.Unlock()
}
