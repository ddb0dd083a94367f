package container_test

import (
	"errors"
	"testing"

	"github.com/goangel/angel/container"
)

type (
	fa struct{ n int }
	fb struct{ n int }
	fc struct{ n int }
)

// FuzzContainer runs random sequences of registrations, resolves, children
// and closes. Nothing may panic (outside MustMake), hang, or return an error
// that matches none of the package's sentinels. The seeds run as a normal
// test; explore with: go test -run '^$' -fuzz FuzzContainer ./container/
func FuzzContainer(f *testing.F) {
	f.Add([]byte{0, 1, 2, 10, 11, 12})
	f.Add([]byte{3, 4, 5, 10, 11, 12, 20, 10})   // factories and lazies
	f.Add([]byte{3, 13, 4, 23, 5, 33, 10})       // dependencies between them
	f.Add([]byte{6, 0, 10, 7, 10, 8, 10, 9, 10}) // children, close
	f.Add([]byte{14, 14, 15, 16, 17, 18, 19})
	f.Add([]byte{0, 0, 0, 8, 0, 9, 9, 10, 11, 12})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 256 {
			ops = ops[:256]
		}
		root := container.NewNamed("runner")
		scopes := []*container.Container{root}
		cur := root
		check := func(err error) {
			if err == nil {
				return
			}
			for _, s := range []error{container.ErrNotFound, container.ErrDuplicate, container.ErrCycle,
				container.ErrClosed, container.ErrPanic, container.ErrInvalid, errFuzz} {
				if errors.Is(err, s) {
					_ = err.Error()
					return
				}
			}
			t.Fatalf("unexpected error %v", err)
		}
		for i, op := range ops {
			// The high bits pick what a factory depends on.
			dep := op >> 4
			need := func(c *container.Container) error {
				switch dep % 4 {
				case 1:
					_, err := container.Make[*fa](c)
					return err
				case 2:
					_, err := container.Make[*fb](c)
					return err
				case 3:
					_, err := container.Make[*fc](c)
					return err
				}
				return nil
			}
			switch op % 20 {
			case 0:
				check(container.Provide(cur, &fa{i}))
			case 1:
				check(container.Provide(cur, &fb{i}))
			case 2:
				check(container.Provide(cur, &fc{i}))
			case 3:
				check(container.ProvideFactory(cur, func(c *container.Container) (*fa, error) { return &fa{i}, need(c) }))
			case 4:
				check(container.ProvideLazy(cur, func(c *container.Container) (*fb, error) { return &fb{i}, need(c) }))
			case 5:
				check(container.ProvideFactory(cur, func(c *container.Container) (*fc, error) {
					if dep == 15 {
						panic("fuzz panic")
					}
					return &fc{i}, need(c)
				}))
			case 6:
				cur = cur.Child()
				scopes = append(scopes, cur)
			case 7:
				cur = scopes[int(dep)%len(scopes)]
			case 8:
				check(cur.Close())
			case 9:
				cur.OnClose(func() error {
					if dep%2 == 1 {
						return errFuzz
					}
					return nil
				})
			case 10:
				_, err := container.Make[*fa](cur)
				check(err)
			case 11:
				_, err := container.Make[*fb](cur)
				check(err)
			case 12:
				_, err := container.Make[*fc](cur)
				check(err)
			case 13:
				check(container.ProvideNamed(cur, string(rune('a'+dep)), i))
			case 14:
				_, err := container.MakeNamed[int](cur, string(rune('a'+dep)))
				check(err)
			case 15:
				_ = container.Has[*fa](cur) || container.HasNamed[int](cur, "a")
			case 16:
				check(container.ProvideLazy(cur, func(c *container.Container) (*fa, error) { return &fa{i}, need(c) }))
			case 17:
				check(container.ProvideNamed(cur, "", i))
			case 18:
				cur = cur.ChildNamed(string(rune('a' + dep)))
				scopes = append(scopes, cur)
			case 19:
				func() {
					defer func() {
						if r := recover(); r != nil {
							err, ok := r.(error)
							if !ok {
								t.Fatalf("MustMake panicked with %v", r)
							}
							check(err)
						}
					}()
					container.MustMake[*fa](cur)
				}()
			}
		}
		for i := len(scopes) - 1; i >= 0; i-- {
			check(scopes[i].Close())
		}
	})
}

var errFuzz = errors.New("fuzz hook error")
