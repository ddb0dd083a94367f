package container_test

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goangel/angel/container"
)

// Many goroutines resolve a lazy singleton for the first time at once: it is
// built exactly once and all of them get the same value. Its factory needs
// another lazy singleton, built exactly once too.
func TestConcurrentLazyFirstResolve(t *testing.T) {
	for round := range 20 {
		r := container.New()
		var builtA, builtB atomic.Int32
		release := make(chan struct{})
		must(t, container.ProvideLazy(r, func(c *container.Container) (*dbConn, error) {
			builtA.Add(1)
			<-release // hold every other resolver at the door
			info, err := container.Make[*Info](c)
			if err != nil {
				return nil, err
			}
			return &dbConn{id: info.N}, nil
		}))
		must(t, container.ProvideLazy(r, func(*container.Container) (*Info, error) {
			builtB.Add(1)
			return &Info{N: 5}, nil
		}))
		const n = 32
		got := make([]*dbConn, n)
		errs := make([]error, n)
		var started, wg sync.WaitGroup
		started.Add(n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := r.Child()
				started.Done()
				got[i], errs[i] = container.Make[*dbConn](req)
			}()
		}
		started.Wait()
		close(release)
		within(t, 10*time.Second, wg.Wait)
		for i := range n {
			if errs[i] != nil || got[i] != got[0] || got[i].id != 5 {
				t.Fatalf("round %d: goroutine %d got %v, %v", round, i, got[i], errs[i])
			}
		}
		if builtA.Load() != 1 || builtB.Load() != 1 {
			t.Fatalf("round %d: built A %d times and B %d times", round, builtA.Load(), builtB.Load())
		}
	}
}

// Two goroutines start building lazy A and lazy B at the same moment; A
// needs B and B needs A. Each holds what the other waits for: that must be
// reported as ErrCycle, not deadlock.
func TestConcurrentLazyCycle(t *testing.T) {
	type A struct{}
	type B struct{}
	for round := range 20 {
		r := container.New()
		aIn, bIn := make(chan struct{}), make(chan struct{})
		var aOnce, bOnce sync.Once
		must(t, container.ProvideLazy(r, func(c *container.Container) (*A, error) {
			aOnce.Do(func() { close(aIn) })
			<-bIn
			_, err := container.Make[*B](c)
			return &A{}, err
		}))
		must(t, container.ProvideLazy(r, func(c *container.Container) (*B, error) {
			bOnce.Do(func() { close(bIn) })
			<-aIn
			_, err := container.Make[*A](c)
			return &B{}, err
		}))
		var errA, errB error
		var wg sync.WaitGroup
		wg.Go(func() { _, errA = container.Make[*A](r) })
		wg.Go(func() { _, errB = container.Make[*B](r.Child()) })
		within(t, 10*time.Second, wg.Wait)
		if !errors.Is(errA, container.ErrCycle) || !errors.Is(errB, container.ErrCycle) {
			t.Fatalf("round %d: got %v and %v, want two cycles", round, errA, errB)
		}
	}
}

// A lazy factory that resolves its dependencies from several goroutines
// (errgroup style) is not a cycle, even when they contend for a shared one:
// E's build waits until both B and D have started, so the other of the two
// usually finds E being built and waits for it.
func TestParallelResolveInsideFactory(t *testing.T) {
	type A struct{}
	type B struct{}
	type D struct{}
	type E struct{}
	for range 50 {
		r := container.New()
		var builtE atomic.Int32
		var entered sync.WaitGroup // B's and D's factories have started
		entered.Add(2)
		must(t, container.ProvideLazy(r, func(c *container.Container) (*E, error) {
			builtE.Add(1)
			entered.Wait()
			return &E{}, nil
		}))
		must(t, container.ProvideLazy(r, func(c *container.Container) (*B, error) {
			entered.Done()
			_, err := container.Make[*E](c)
			return &B{}, err
		}))
		must(t, container.ProvideLazy(r, func(c *container.Container) (*D, error) {
			entered.Done()
			_, err := container.Make[*E](c)
			return &D{}, err
		}))
		must(t, container.ProvideLazy(r, func(c *container.Container) (*A, error) {
			var wg sync.WaitGroup
			var errB, errD error
			wg.Go(func() { _, errB = container.Make[*B](c) })
			wg.Go(func() { _, errD = container.Make[*D](c) })
			wg.Wait()
			return &A{}, errors.Join(errB, errD)
		}))
		within(t, 10*time.Second, func() {
			if _, err := container.Make[*A](r); err != nil {
				t.Error(err)
			}
		})
		if builtE.Load() != 1 {
			t.Fatalf("E built %d times", builtE.Load())
		}
	}
}

// Resolving, registering in children, closing children and making children
// all at once, under -race.
func TestConcurrentUse(t *testing.T) {
	r := container.NewNamed("runner")
	must(t, container.Provide[Greeter](r, &english{"x"}))
	must(t, container.ProvideNamed(r, "port", 3000))
	must(t, container.ProvideFactory(r, func(c *container.Container) (*dbConn, error) {
		info, err := container.Make[Info](c)
		return &dbConn{id: info.N}, err
	}))
	inst := r.ChildNamed("instance")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				req := inst.ChildNamed("request")
				if err := container.Provide(req, Info{N: i}); err != nil {
					t.Error(err)
					return
				}
				if container.MustMake[Greeter](req).Greet() != "hello x" ||
					container.MustMakeNamed[int](req, "port") != 3000 ||
					container.MustMake[*dbConn](req).id != i {
					t.Error("wrong value")
					return
				}
				if err := req.Close(); err != nil {
					t.Error(err)
					return
				}
				if g == 0 && i%50 == 0 {
					// Registrations in a shared scope while others read it.
					if err := container.ProvideNamed(inst, string(rune('a'+i/50)), i); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	within(t, 30*time.Second, wg.Wait)
}

// A lazy factory that never returns (runtime.Goexit, as t.FailNow does)
// must not leave the registration locked for everyone else.
func TestLazyGoexit(t *testing.T) {
	r := container.New()
	first := true
	must(t, container.ProvideLazy(r, func(*container.Container) (*dbConn, error) {
		if first {
			first = false
			runtime.Goexit()
		}
		return &dbConn{id: 2}, nil
	}))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = container.Make[*dbConn](r)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the Goexit resolve did not end")
	}
	within(t, 10*time.Second, func() {
		if v, err := container.Make[*dbConn](r); err != nil || v.id != 2 {
			t.Errorf("got %v, %v", v, err)
		}
	})
}

// Registrations race on one scope: every distinct one lands, and of many
// registrations of the same type exactly one wins.
func TestConcurrentRegister(t *testing.T) {
	r := container.New()
	const n = 64
	var wg sync.WaitGroup
	var won atomic.Int32
	for i := range n {
		wg.Go(func() {
			if err := container.ProvideNamed(r, fmt.Sprint("k", i), i); err != nil {
				t.Error(err)
			}
			switch err := container.Provide(r, &dbConn{id: i}); {
			case err == nil:
				won.Add(1)
			case !errors.Is(err, container.ErrDuplicate):
				t.Error(err)
			}
		})
	}
	within(t, 10*time.Second, wg.Wait)
	for i := range n {
		if v, err := container.MakeNamed[int](r, fmt.Sprint("k", i)); err != nil || v != i {
			t.Fatalf("k%d: %v, %v", i, v, err)
		}
	}
	if won.Load() != 1 {
		t.Fatalf("%d registrations of one type won", won.Load())
	}
}

// Closes race with registrations and close hooks: every hook that was
// accepted runs exactly once, and the others run at once.
func TestConcurrentCloseAndOnClose(t *testing.T) {
	for range 50 {
		c := container.New().ChildNamed("request")
		var ran atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() { c.OnClose(func() error { ran.Add(1); return nil }) })
		}
		wg.Go(func() { _ = c.Close() })
		wg.Go(func() { _ = c.Close() })
		within(t, 10*time.Second, wg.Wait)
		if ran.Load() != 8 {
			t.Fatalf("%d of 8 hooks ran", ran.Load())
		}
	}
}
