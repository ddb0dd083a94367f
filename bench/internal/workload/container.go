package workload

import (
	"runtime"
	"testing"

	"github.com/goangel/angel/container"
)

// ContainerService is the singleton every container workload resolves.
type ContainerService struct{ N int }

// ContainerConn is what the factory workload builds, a new one per resolve.
type ContainerConn struct{ ID int }

// ContainerImpl is one dependency-injection container driven through the
// container workloads (RunContainer). R is its root scope type. New must
// register, in a fresh root: a singleton *ContainerService, a string named
// "greeting", and (unless Factory is nil) a factory building a new
// *ContainerConn on every resolve.
type ContainerImpl[R any] struct {
	New       func() R
	Singleton func(R) (*ContainerService, error)
	Named     func(R) (string, error)
	Factory   func(R) (*ContainerConn, error) // nil: the library has no per-resolve factory
	// Child opens a child scope of the root and resolves the singleton
	// through it (found in the parent): the per-request scope cost.
	Child func(R) (*ContainerService, error)
	// Request runs one whole request scope: Child, then whatever the library
	// asks for when a scope ends (close, shutdown). The case=request
	// benchmark reports how much of it stays reachable from the root.
	Request func(R) error
}

// ContainerParallelism is the number of goroutines of case=parallel.
const ContainerParallelism = 8

// RunContainer runs the container workloads on impl as sub-benchmarks
// case=singleton, case=named, case=child, case=factory, case=parallel and
// case=request.
func RunContainer[R any](b *testing.B, impl ContainerImpl[R]) {
	b.Run("case=singleton", func(b *testing.B) {
		r := impl.New()
		b.ReportAllocs()
		var s *ContainerService
		for b.Loop() {
			v, err := impl.Singleton(r)
			if err != nil {
				b.Fatal(err)
			}
			s = v
		}
		runtime.KeepAlive(s)
	})
	b.Run("case=named", func(b *testing.B) {
		r := impl.New()
		b.ReportAllocs()
		var s string
		for b.Loop() {
			v, err := impl.Named(r)
			if err != nil {
				b.Fatal(err)
			}
			s = v
		}
		runtime.KeepAlive(s)
	})
	b.Run("case=child", func(b *testing.B) {
		r := impl.New()
		b.ReportAllocs()
		var s *ContainerService
		for b.Loop() {
			v, err := impl.Child(r)
			if err != nil {
				b.Fatal(err)
			}
			s = v
		}
		runtime.KeepAlive(s)
	})
	if impl.Factory != nil {
		b.Run("case=factory", func(b *testing.B) {
			r := impl.New()
			b.ReportAllocs()
			var s *ContainerConn
			for b.Loop() {
				v, err := impl.Factory(r)
				if err != nil {
					b.Fatal(err)
				}
				s = v
			}
			runtime.KeepAlive(s)
		})
	}
	b.Run("case=parallel", func(b *testing.B) {
		r := impl.New()
		if _, err := impl.Singleton(r); err != nil { // built before the race starts
			b.Fatal(err)
		}
		b.ReportAllocs()
		procs := runtime.GOMAXPROCS(0)
		b.SetParallelism((ContainerParallelism + procs - 1) / procs)
		b.RunParallel(func(pb *testing.PB) {
			var s *ContainerService
			for pb.Next() {
				v, err := impl.Singleton(r)
				if err != nil {
					b.Error(err)
					return
				}
				s = v
			}
			runtime.KeepAlive(s)
		})
	})
	b.Run("case=request", func(b *testing.B) {
		r := impl.New()
		b.ReportAllocs()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := impl.Request(r); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		kept := max(0, int64(after.HeapAlloc)-int64(before.HeapAlloc))
		b.ReportMetric(float64(kept)/float64(b.N), "B-retained/scope")
		runtime.KeepAlive(r)
	})
}

// GoangelContainer is goangel's container under the container workloads.
func GoangelContainer() ContainerImpl[*container.Container] {
	return ContainerImpl[*container.Container]{
		New: func() *container.Container {
			r := container.NewNamed("runner")
			if err := container.Provide(r, &ContainerService{N: 1}); err != nil {
				panic(err)
			}
			if err := container.ProvideNamed(r, "greeting", "Hello, production world!"); err != nil {
				panic(err)
			}
			n := 0
			if err := container.ProvideFactory(r, func(*container.Container) (*ContainerConn, error) {
				n++
				return &ContainerConn{ID: n}, nil
			}); err != nil {
				panic(err)
			}
			return r
		},
		Singleton: container.Make[*ContainerService],
		Named: func(r *container.Container) (string, error) {
			return container.MakeNamed[string](r, "greeting")
		},
		Factory: container.Make[*ContainerConn],
		Child: func(r *container.Container) (*ContainerService, error) {
			return container.Make[*ContainerService](r.Child())
		},
		Request: func(r *container.Container) error {
			c := r.ChildNamed("request")
			_, err := container.Make[*ContainerService](c)
			if cerr := c.Close(); err == nil {
				err = cerr
			}
			return err
		},
	}
}
