package bench

import (
	"testing"

	"github.com/goangel/angel/bench/internal/workload"
	"github.com/goangel/angel/container"
)

// BenchmarkContainer measures goangel's container on the resolve hot path:
// case=singleton, case=named, case=child (a new request scope plus a lookup
// found in the parent), case=factory, case=parallel (8 goroutines) and
// case=request (a whole request scope, reporting B-retained/scope). The same
// workloads run through samber/do v2, dig and a plain map in bench/peers.
func BenchmarkContainer(b *testing.B) {
	workload.RunContainer(b, workload.GoangelContainer())
}

// BenchmarkContainerDirect calls Make without going through the workload's
// function values, to show what that indirection costs.
func BenchmarkContainerDirect(b *testing.B) {
	r := workload.GoangelContainer().New()
	b.Run("case=singleton", func(b *testing.B) {
		b.ReportAllocs()
		var s *workload.ContainerService
		for b.Loop() {
			s, _ = container.Make[*workload.ContainerService](r)
		}
		_ = s
	})
	b.Run("case=named", func(b *testing.B) {
		b.ReportAllocs()
		var s string
		for b.Loop() {
			s, _ = container.MakeNamed[string](r, "greeting")
		}
		_ = s
	})
	b.Run("case=child", func(b *testing.B) {
		b.ReportAllocs()
		var s *workload.ContainerService
		for b.Loop() {
			s, _ = container.Make[*workload.ContainerService](r.Child())
		}
		_ = s
	})
}
