package logrotate_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goangel/angel/logrotate"
)

// The standing property: many writers, a tiny MaxSize, rotation by time
// and by size, forced rotations, outside deletions and renames of the
// current file, and MaxFiles/MaxAge clean-up all at once. Every line whose
// Write returned nil is found exactly once and whole, either in the files
// left in the directory or in a file that clean-up removed by policy
// (read just before its removal).
func TestPropertyEveryAcceptedLineFoundOnce(t *testing.T) {
	dir := t.TempDir()
	clock := newClock(time.Now())
	var errOut syncBuffer
	w, err := logrotate.Open(logrotate.Config{
		Path:        filepath.Join(dir, "app.log"),
		Pattern:     filepath.Join(dir, "app.%Y%m%d%H%M%S.log"),
		RotateEvery: time.Second,
		MaxSize:     2 << 10,
		MaxFiles:    12,
		MaxAge:      40 * time.Second, // of the fake clock, which runs fast
		CheckEvery:  time.Millisecond,
		Clock:       clock.Now,
		ErrorOutput: &errOut,
	})
	if err != nil {
		t.Fatal(err)
	}
	var removedMu sync.Mutex
	removed := map[string]int{} // lines in files removed by policy
	logrotate.OnRemove(w, func(path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("reading %s before its removal: %v", path, err)
			return
		}
		removedMu.Lock()
		defer removedMu.Unlock()
		for l := range strings.Lines(string(b)) {
			removed[strings.TrimSuffix(l, "\n")]++
		}
	})

	const writers, perWriter = 8, 2500
	var accepted sync.Map // line -> struct{}
	var done atomic.Bool
	var chaos sync.WaitGroup
	var deletions, renames, rotations int
	chaos.Go(func() { // the clock: a second every millisecond or so
		for !done.Load() {
			clock.Advance(time.Second)
			time.Sleep(time.Millisecond) // pacing, not a wait for an event
		}
	})
	chaos.Go(func() { // the outside world
		rng := rand.New(rand.NewPCG(1, 2))
		for i := 0; !done.Load(); i++ {
			switch rng.IntN(3) {
			case 0:
				logrotate.WhileCurrent(w, func(name string) {
					if err := os.Remove(name); err == nil {
						deletions++
					}
				})
			case 1:
				logrotate.WhileCurrent(w, func(name string) {
					if err := os.Rename(name, filepath.Join(dir, fmt.Sprintf("moved-%d.txt", i))); err == nil {
						renames++
					}
				})
			case 2:
				if err := w.Rotate(); err != nil {
					t.Error(err)
				}
				rotations++
			}
			time.Sleep(time.Duration(1+rng.IntN(3)) * time.Millisecond) // pacing
		}
	})
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range perWriter {
				line := fmt.Sprintf("g=%d i=%05d %s", g, i, strings.Repeat("x", (g*7+i)%90))
				if _, err := fmt.Fprintln(w, line); err != nil {
					t.Errorf("write %q: %v", line, err)
					continue
				}
				accepted.Store(line, struct{}{})
			}
		})
	}
	wg.Wait()
	done.Store(true)
	chaos.Wait()
	st := w.Stats()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	found := lines(t, dir) // also fails on a partial line
	n, bad := 0, 0
	accepted.Range(func(k, _ any) bool {
		n++
		line := k.(string)
		if c := found[line] + removed[line]; c != 1 {
			if bad++; bad <= 20 {
				t.Errorf("%q found %d times in the files and %d times in files removed by policy", line, found[line], removed[line])
			}
		}
		return true
	})
	if bad > 20 {
		t.Errorf("... %d lines in all not found exactly once", bad)
	}
	if n != writers*perWriter {
		t.Errorf("%d lines accepted, want %d", n, writers*perWriter)
	}
	for line, c := range found {
		if _, ok := accepted.Load(line); !ok {
			t.Errorf("%q (%d times) was never written", line, c)
		}
	}
	if st.WriteErrors != 0 {
		t.Errorf("stats %+v: writes failed", st)
	}
	t.Logf("stats %+v; %d deletions, %d renames, %d forced rotations; %d lines in files removed by policy",
		st, deletions, renames, rotations, len(removed))
	// (Re-creation by the check is not required: rotations often come
	// first and salvage the deleted file themselves.)
	if st.Removed == 0 || st.Salvaged == 0 || st.Rotations == 0 || deletions == 0 || renames == 0 {
		t.Errorf("the run did not exercise clean-up, deletion, salvage, renames and rotation: %+v", st)
	}
}
