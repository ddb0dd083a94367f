package production

import "fmt"

// The runner's bookkeeping of what outlives its turn: what each life not yet
// released is doing (track, untrack; named when the stop deadline passes),
// and what was left running past a life's drain deadline (goroutines and
// hooks: leave; handlers: abandon), reported by the stop only if it still
// runs then.

// track records what l is doing now, for stillRunning; the first call adds
// l to the lives not yet released (one map store per life, not per step).
func (rs *runState) track(l *life, what string) {
	if l.doing.Swap(&what) == nil {
		rs.active.Store(l, struct{}{})
	}
}

func (rs *runState) untrack(l *life) { rs.active.Delete(l) }

// stillRunning lists the lives not yet released and what they are doing.
func (rs *runState) stillRunning() []string {
	var out []string
	rs.active.Range(func(k, _ any) bool {
		l := k.(*life)
		out = append(out, fmt.Sprintf("instance #%d life %d: %s", l.info.Number, l.info.Life, *l.doing.Load()))
		return true
	})
	return out
}

// leave records what, left running past a life's deadline until done is
// closed: the stop reports it (exit 124) only if it still runs then.
func (rs *runState) leave(what string, done <-chan struct{}) {
	rs.leftMu.Lock()
	rs.left = append(rs.left, leftRunning{what, done})
	rs.leftMu.Unlock()
}

// leftRunning is one hook or set of goroutines left past a life's deadline.
type leftRunning struct {
	what string
	done <-chan struct{}
}

// stillLeft names what was left running past a life's deadline and runs
// still (a goroutine that returned in the meantime is not left).
func (rs *runState) stillLeft() []string {
	rs.leftMu.Lock()
	defer rs.leftMu.Unlock()
	var out []string
	for _, x := range rs.left {
		if !isClosed(x.done) {
			out = append(out, x.what)
		}
	}
	return out
}

// abandon counts n handlers left running by l: they count as abandoned while
// they run (a slow request that returns after the deadline stops counting).
// Past --max-abandoned still running the runner exits with ExitAbandoned.
func (rs *runState) abandon(l *life, n int) {
	stack := l.goroutines()
	rs.abandonedLives.Store(l, struct{}{})
	total := rs.abandonedNow()
	l.log.WithField("stack", stack).Errorf("Instance #%d life %d: %d handler(s) still running at the drain deadline were abandoned (%d in all; Go cannot stop a goroutine)", l.info.Number, l.info.Life, n, total)
	rs.emit(Event{Kind: EventAbandoned, Instance: l.info.Number, Life: l.info.Life, Count: n, Stack: stack})
	// Those still running when the stop ends are named by Run's error
	// (124): stillAbandoned.
	if total > int64(rs.cfg.MaxAbandoned) {
		select {
		case rs.fatal <- exitError(ExitAbandoned, fmt.Errorf("%w: %d handlers left running, more than --max-abandoned %d", ErrAbandoned, total, rs.cfg.MaxAbandoned)):
		default:
		}
	}
}

// abandonedNow is the number of abandoned handlers still running: those of
// the lives that abandoned some, counted afresh (a life whose handlers have
// all returned is forgotten).
func (rs *runState) abandonedNow() int64 {
	var n int64
	rs.abandonedLives.Range(func(k, _ any) bool {
		h := k.(*life).handlers.Load()
		if h <= 0 {
			rs.abandonedLives.Delete(k)
		}
		n += max(h, 0)
		return true
	})
	return n
}

// stillAbandoned names the abandoned handlers still running, per life.
func (rs *runState) stillAbandoned() []string {
	var out []string
	rs.abandonedLives.Range(func(k, _ any) bool {
		l := k.(*life)
		if h := l.handlers.Load(); h > 0 {
			out = append(out, fmt.Sprintf("instance #%d life %d: %d handler(s)", l.info.Number, l.info.Life, h))
		}
		return true
	})
	return out
}
