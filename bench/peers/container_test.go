package peers

import (
	"errors"
	"reflect"
	"strconv"
	"sync/atomic"
	"testing"

	bench "github.com/goangel/angel/bench/internal/workload"
	"github.com/samber/do/v2"
	"go.uber.org/dig"
)

// BenchmarkContainer runs the container workloads of bench.RunContainer
// through goangel, samber/do v2, dig and a hand-written lock-free map, in
// one run, named impl=X/case=Y so benchstat lines them up.
func BenchmarkContainer(b *testing.B) {
	b.Run("impl=goangel", func(b *testing.B) { bench.RunContainer(b, bench.GoangelContainer()) })
	b.Run("impl=samberdo", func(b *testing.B) { bench.RunContainer(b, samberDo()) })
	b.Run("impl=dig", func(b *testing.B) { bench.RunContainer(b, digContainer()) })
	b.Run("impl=map", func(b *testing.B) { bench.RunContainer(b, mapContainer()) })
}

// ---- samber/do v2 ----

func samberDo() bench.ContainerImpl[*do.RootScope] {
	var scopes atomic.Int64 // samber/do wants a unique name per child scope
	return bench.ContainerImpl[*do.RootScope]{
		New: func() *do.RootScope {
			r := do.New()
			do.ProvideValue(r, &bench.ContainerService{N: 1})
			do.ProvideNamedValue(r, "greeting", "Hello, production world!")
			n := 0
			do.ProvideTransient(r, func(do.Injector) (*bench.ContainerConn, error) {
				n++
				return &bench.ContainerConn{ID: n}, nil
			})
			return r
		},
		Singleton: func(r *do.RootScope) (*bench.ContainerService, error) {
			return do.Invoke[*bench.ContainerService](r)
		},
		Named: func(r *do.RootScope) (string, error) {
			return do.InvokeNamed[string](r, "greeting")
		},
		Factory: func(r *do.RootScope) (*bench.ContainerConn, error) {
			return do.Invoke[*bench.ContainerConn](r)
		},
		Child: func(r *do.RootScope) (*bench.ContainerService, error) {
			c := r.Scope(strconv.FormatInt(scopes.Add(1), 10))
			return do.Invoke[*bench.ContainerService](c)
		},
		Request: func(r *do.RootScope) error {
			c := r.Scope(strconv.FormatInt(scopes.Add(1), 10))
			_, err := do.Invoke[*bench.ContainerService](c)
			if rep := c.Shutdown(); err == nil && rep != nil && !rep.Succeed {
				err = rep
			}
			return err
		},
	}
}

// ---- go.uber.org/dig ----

// dig has no per-resolve factory (every constructor's result is cached in
// its scope), so case=factory is not run for it. Invoke takes a function;
// the result is passed out through a package variable so that no closure is
// allocated per call.
var (
	digService  *bench.ContainerService
	digGreeting string
)

type digNamed struct {
	dig.In
	Greeting string `name:"greeting"`
}

func digSetService(s *bench.ContainerService) { digService = s }
func digSetGreeting(p digNamed)               { digGreeting = p.Greeting }

func digContainer() bench.ContainerImpl[*dig.Container] {
	return bench.ContainerImpl[*dig.Container]{
		New: func() *dig.Container {
			c := dig.New()
			svc := &bench.ContainerService{N: 1}
			ctMust(c.Provide(func() *bench.ContainerService { return svc }))
			ctMust(c.Provide(func() string { return "Hello, production world!" }, dig.Name("greeting")))
			ctMust(c.Invoke(digSetService)) // build the singletons before measuring
			ctMust(c.Invoke(digSetGreeting))
			return c
		},
		Singleton: func(c *dig.Container) (*bench.ContainerService, error) {
			err := c.Invoke(digSetService)
			return digService, err
		},
		Named: func(c *dig.Container) (string, error) {
			err := c.Invoke(digSetGreeting)
			return digGreeting, err
		},
		Child: func(c *dig.Container) (*bench.ContainerService, error) {
			err := c.Scope("request").Invoke(digSetService)
			return digService, err
		},
		Request: func(c *dig.Container) error {
			return c.Scope("request").Invoke(digSetService) // dig scopes have no close
		},
	}
}

// ---- a hand-written lock-free map keyed by reflect.Type ----

// ctMapScope is the baseline: what a minimal container costs. Registrations
// are copied on write into immutable maps behind atomic pointers; resolves
// walk the scope chain with one map lookup per scope. No errors worth the
// name, no cycle detection, no close.
type ctMapScope struct {
	parent *ctMapScope
	types  atomic.Pointer[map[reflect.Type]any]
	named  atomic.Pointer[map[string]any]
}

type ctMapFactory func(*ctMapScope) (any, error)

func ctSet[K comparable](p *atomic.Pointer[map[K]any], k K, v any) {
	m := map[K]any{}
	if old := p.Load(); old != nil {
		for k2, v2 := range *old {
			m[k2] = v2
		}
	}
	m[k] = v
	p.Store(&m)
}

func ctMapMake[T any](s *ctMapScope) (T, error) {
	k := reflect.TypeFor[T]()
	for ; s != nil; s = s.parent {
		if m := s.types.Load(); m != nil {
			if v, ok := (*m)[k]; ok {
				if f, ok := v.(ctMapFactory); ok {
					x, err := f(s)
					if err != nil {
						var zero T
						return zero, err
					}
					return x.(T), nil
				}
				return v.(T), nil
			}
		}
	}
	var zero T
	return zero, errCtNotFound
}

func ctMapMakeNamed[T any](s *ctMapScope, name string) (T, error) {
	for ; s != nil; s = s.parent {
		if m := s.named.Load(); m != nil {
			if v, ok := (*m)[name]; ok {
				if t, ok := v.(T); ok {
					return t, nil
				}
			}
		}
	}
	var zero T
	return zero, errCtNotFound
}

var errCtNotFound = errors.New("not found")

func mapContainer() bench.ContainerImpl[*ctMapScope] {
	return bench.ContainerImpl[*ctMapScope]{
		New: func() *ctMapScope {
			r := &ctMapScope{}
			ctSet(&r.types, reflect.TypeFor[*bench.ContainerService](), any(&bench.ContainerService{N: 1}))
			ctSet(&r.named, "greeting", any("Hello, production world!"))
			n := 0
			ctSet(&r.types, reflect.TypeFor[*bench.ContainerConn](), any(ctMapFactory(func(*ctMapScope) (any, error) {
				n++
				return &bench.ContainerConn{ID: n}, nil
			})))
			return r
		},
		Singleton: ctMapMake[*bench.ContainerService],
		Named: func(r *ctMapScope) (string, error) {
			return ctMapMakeNamed[string](r, "greeting")
		},
		Factory: ctMapMake[*bench.ContainerConn],
		Child: func(r *ctMapScope) (*bench.ContainerService, error) {
			return ctMapMake[*bench.ContainerService](&ctMapScope{parent: r})
		},
		Request: func(r *ctMapScope) error {
			_, err := ctMapMake[*bench.ContainerService](&ctMapScope{parent: r})
			return err
		},
	}
}

func ctMust(err error) {
	if err != nil {
		panic(err)
	}
}
