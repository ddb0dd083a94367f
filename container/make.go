package container

import (
	"fmt"
	"io"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
)

// Provide registers v as the singleton for type T in c. T may be an
// interface: Provide[pubsub.Client](c, broker) makes the value resolvable
// as pubsub.Client (and only as that). Values registered with Provide
// belong to the caller: Close does not close them (use OnClose for that).
//
// It returns a *DuplicateError (ErrDuplicate) when c already holds a
// registration for T, and ErrClosed when c is closed.
func Provide[T any](c *Container, v T) error {
	return c.register(typeKey[T](), "", &valueEntry[T]{info: entryInfo{typ: reflect.TypeFor[T](), kind: kindValue}, v: v})
}

// ProvideNamed registers v as the singleton for type T under name in c.
// Named and unnamed registrations are separate: MakeNamed[T](c, "a") never
// finds Provide[T], nor the other way round.
func ProvideNamed[T any](c *Container, name string, v T) error {
	if name == "" {
		return fmt.Errorf("container: ProvideNamed[%s] with an empty name (use Provide): %w", typeName(reflect.TypeFor[T]()), ErrInvalid)
	}
	return c.register(typeKey[T](), name, &valueEntry[T]{info: entryInfo{typ: reflect.TypeFor[T](), name: name, kind: kindValue}, v: v})
}

// ProvideFactory registers f to build a new T on every resolve. f receives
// the resolving scope (a request scope, say, even when f was registered in
// the runner's scope), so it can use values registered there; resolve
// through that *Container, not a captured one, or cycles go undetected. A
// built value that implements io.Closer is closed when the resolving scope
// closes.
func ProvideFactory[T any](c *Container, f func(*Container) (T, error)) error {
	if f == nil {
		return fmt.Errorf("container: ProvideFactory[%s] with a nil function: %w", typeName(reflect.TypeFor[T]()), ErrInvalid)
	}
	return c.register(typeKey[T](), "", &factoryEntry[T]{info: entryInfo{typ: reflect.TypeFor[T](), kind: kindFactory}, f: f})
}

// ProvideLazy registers f to build the singleton for T once, on its first
// resolve, for the scope c that declares it (f receives c, whichever child
// resolved). Concurrent first resolves build it exactly once; the others
// wait for it. An error or a panic from f is returned and not cached: the
// next resolve calls f again. A built value that implements io.Closer is
// closed when c closes.
func ProvideLazy[T any](c *Container, f func(*Container) (T, error)) error {
	if f == nil {
		return fmt.Errorf("container: ProvideLazy[%s] with a nil function: %w", typeName(reflect.TypeFor[T]()), ErrInvalid)
	}
	return c.register(typeKey[T](), "", &lazyEntry[T]{info: entryInfo{typ: reflect.TypeFor[T](), kind: kindLazy}, f: f})
}

// Make resolves a T from c: it looks in c, then in c's parents, and returns
// the first registration's value, building it when that registration is a
// factory or a lazy singleton.
//
// Errors: *NotFoundError (ErrNotFound), ErrClosed, *CycleError (ErrCycle),
// *PanicError (ErrPanic), or a *BuildError wrapping a factory's own error.
// Resolving a registered singleton takes no lock and allocates nothing.
func Make[T any](c *Container) (T, error) {
	if c != nil {
		s, t := c, c.load()
		if t.view { // resolve in the scope the view stands for
			s = t.fr.real
			t = s.load()
		}
		closed := t.closed
		k := typeKey[T]()
		for sc := s; ; {
			if e := t.types[k]; e != nil {
				if v, ok := e.(*valueEntry[T]); ok && !closed && !t.closed {
					return v.v, nil
				}
				return resolve[T](c, s, sc, e)
			}
			if sc = sc.parent; sc == nil {
				break
			}
			t = sc.load()
		}
	}
	var zero T
	return zero, notFound(c, reflect.TypeFor[T](), "")
}

// MustMake is Make for values that must be there: it panics with Make's
// error. Use it where a missing registration is a programming error, such
// as an instance's configure function.
func MustMake[T any](c *Container) T {
	v, err := Make[T](c)
	if err != nil {
		panic(err)
	}
	return v
}

// MakeNamed resolves the T registered under name with ProvideNamed, looking
// in c and then in its parents.
func MakeNamed[T any](c *Container, name string) (T, error) {
	var zero T
	if c != nil {
		s := c.scope()
		k := typeKey[T]()
		for sc := s; sc != nil; sc = sc.parent {
			if e := sc.load().lookupNamed(k, name); e != nil {
				v := e.(*valueEntry[T])
				if s.load().closed || sc.load().closed {
					return zero, closedScope[T](s, sc)
				}
				return v.v, nil
			}
		}
	}
	return zero, notFound(c, reflect.TypeFor[T](), name)
}

// MustMakeNamed is MakeNamed that panics with MakeNamed's error.
func MustMakeNamed[T any](c *Container, name string) T {
	v, err := MakeNamed[T](c, name)
	if err != nil {
		panic(err)
	}
	return v
}

// Has reports whether a T is registered in c or its parents (as a value, a
// factory or a lazy singleton). It builds nothing. It reports false on a
// closed scope.
func Has[T any](c *Container) bool { return has(c, typeKey[T](), "") }

// HasNamed reports whether a T is registered under name in c or its
// parents. It reports false on a closed scope.
func HasNamed[T any](c *Container, name string) bool {
	return name != "" && has(c, typeKey[T](), name)
}

// has is Has (name "") and HasNamed.
func has(c *Container, k key, name string) bool {
	if c == nil {
		return false
	}
	s := c.scope()
	if s.load().closed {
		return false
	}
	for ; s != nil; s = s.parent {
		if s.load().lookup(k, name) != nil {
			return true
		}
	}
	return false
}

func closedScope[T any](s, sc *Container) error {
	t := s.load()
	if !t.closed {
		t = sc.load()
	}
	return closedError("resolving", reflect.TypeFor[T](), t.name)
}

// resolve is the slow path of Make: e is T's registration, found in sc while
// resolving from c, whose real scope is s.
func resolve[T any](c, s, sc *Container, e entry) (T, error) {
	var zero T
	if s.load().closed || sc.load().closed {
		return zero, closedScope[T](s, sc)
	}
	switch e := e.(type) {
	case *valueEntry[T]:
		return e.v, nil
	case *lazyEntry[T]:
		if e.ready.Load() {
			return e.v, nil
		}
		return buildLazy(c, sc, e)
	case *factoryEntry[T]:
		return callFactory(c, s, e)
	}
	panic(fmt.Sprintf("container: internal error: registration %T for %s", e, typeName(reflect.TypeFor[T]())))
}

// newFrame returns the frame of a factory call building info: its view
// resolves in real and continues the resolution path from prev.
func newFrame(real *Container, prev *frame, info *entryInfo) *frame {
	f := &frame{real: real, prev: prev, info: info}
	f.vt = table{name: "view", view: true, fr: f}
	f.view.tab.Store(&f.vt)
	return f
}

// findCycle returns a *CycleError when info is being built on the path
// ending at frame p.
func findCycle(p *frame, info *entryInfo) error {
	for f := p; f != nil; f = f.prev {
		if f.info == info && !f.done.Load() {
			return cycleError(p, info)
		}
	}
	return nil
}

func cycleError(p *frame, last *entryInfo) error {
	var path []string
	for f := p; f != nil; f = f.prev {
		if !f.done.Load() {
			path = append(path, f.info.String())
		}
	}
	slices.Reverse(path)
	// Start the path at the first occurrence of last, so it reads as the cycle.
	name := last.String()
	if i := slices.Index(path, name); i >= 0 {
		path = path[i:]
	}
	return &CycleError{Path: append(path, name)}
}

// call runs f on the view of frame v, turning a panic into a *PanicError
// and an error into a *BuildError.
func call[T any](f func(*Container) (T, error), v *frame) (val T, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero T
			val, err = zero, &PanicError{Type: v.info.typ, Value: r, Stack: debug.Stack()}
		}
	}()
	val, err = f(&v.view)
	if err != nil {
		var zero T
		if _, ok := err.(*CycleError); ok {
			return zero, err // already names the whole path
		}
		return zero, &BuildError{Type: v.info.typ, Name: v.info.name, Err: err}
	}
	return val, nil
}

func callFactory[T any](c, s *Container, e *factoryEntry[T]) (T, error) {
	var zero T
	p := c.frame()
	if err := findCycle(p, &e.info); err != nil {
		return zero, err
	}
	v := newFrame(s, p, &e.info)
	val, err := call(e.f, v)
	v.done.Store(true)
	if err != nil {
		return zero, err
	}
	if err := track(s, any(val), &e.info); err != nil {
		return zero, err
	}
	return val, nil
}

// track registers x for closing with s when it is an io.Closer. When s has
// closed meanwhile, x is closed at once and ErrClosed returned.
func track(s *Container, x any, info *entryInfo) error {
	cl, ok := x.(io.Closer)
	if !ok {
		return nil
	}
	if s.addCloser(closer{what: info.String(), fn: cl.Close}) {
		return nil
	}
	_ = runCloser(closer{fn: cl.Close})
	return closedError("resolving", info.typ, s.load().name)
}

// waitTable is what a tree of scopes (a root and its descendants) knows
// about lazy singletons being built, to find a deadlock among goroutines
// building them before it happens. Its mu guards every lazyCore.owner of the
// tree's registrations and the waits map. It is taken only while a lazy
// singleton is being built, never on the resolve fast path.
type waitTable struct {
	mu    sync.Mutex
	waits map[*frame]*lazyCore // frame → the lazy registration it waits for
}

// buildLazy builds e, declared in sc, for a resolve made from c.
func buildLazy[T any](c, sc *Container, e *lazyEntry[T]) (T, error) {
	var zero T
	p := c.frame()
	if err := findCycle(p, &e.info); err != nil {
		return zero, err
	}
	v := newFrame(sc, p, &e.info)
	defer v.done.Store(true)
	wt := sc.waits()
	if !e.mu.TryLock() {
		wt.mu.Lock()
		if wt.deadlocks(v, &e.lazyCore) {
			wt.mu.Unlock()
			return zero, cycleError(p, &e.info)
		}
		if wt.waits == nil {
			wt.waits = map[*frame]*lazyCore{}
		}
		wt.waits[v] = &e.lazyCore
		wt.mu.Unlock()
		e.mu.Lock()
		wt.mu.Lock()
		delete(wt.waits, v)
		wt.mu.Unlock()
	}
	// We hold e.mu: release it however f ends, even by runtime.Goexit.
	defer e.mu.Unlock()
	if e.ready.Load() {
		return e.v, nil // built while we waited
	}
	wt.setOwner(&e.lazyCore, v)
	defer wt.setOwner(&e.lazyCore, nil) // runs before the unlock

	val, err := call(e.f, v)
	if err == nil {
		err = track(sc, any(val), &e.info)
	}
	if err != nil {
		return zero, err // not cached: the next resolve tries again
	}
	e.v = val
	e.ready.Store(true)
	return val, nil
}

func (wt *waitTable) setOwner(l *lazyCore, f *frame) {
	wt.mu.Lock()
	l.owner = f
	wt.mu.Unlock()
}

// deadlocks reports whether frame w waiting for l would close a cycle of
// waits: l's builder waits (in its own frame or one it started) for a lazy
// whose builder waits ... for one that w's own path is building. Called with
// wt.mu held.
func (wt *waitTable) deadlocks(w *frame, l *lazyCore) bool {
	seen := map[*lazyCore]bool{}
	var visit func(l *lazyCore) bool
	visit = func(l *lazyCore) bool {
		if seen[l] {
			return false
		}
		seen[l] = true
		b := l.owner
		if b == nil {
			return false // not being built (or about to be): it will finish
		}
		if isOnPath(b, w) {
			return true
		}
		for wf, next := range wt.waits {
			if isOnPath(b, wf) && visit(next) {
				return true
			}
		}
		return false
	}
	return visit(l)
}

// isOnPath reports whether frame b is f or one of f's callers.
func isOnPath(b, f *frame) bool {
	for ; f != nil; f = f.prev {
		if f == b {
			return true
		}
	}
	return false
}

// notFound builds the *NotFoundError for a failed resolve of t (named name)
// from c.
func notFound(c *Container, t reflect.Type, name string) error {
	if c == nil {
		return &NotFoundError{Type: t, Name: name, Scopes: []string{"<nil *Container>"}}
	}
	s := c.scope()
	if tb := s.load(); tb.closed {
		return closedError("resolving", t, tb.name)
	}
	e := &NotFoundError{Type: t, Name: name, Scopes: s.chain()}
	seen := map[string]bool{}
	var all []*entryInfo
	for sc := s; sc != nil; sc = sc.parent {
		// Nearest scope first; within a scope, by name.
		var infos []*entryInfo
		tb := sc.load()
		for _, en := range tb.types {
			infos = append(infos, en.entryInfo())
		}
		for _, n := range tb.named {
			for ; n != nil; n = n.next {
				infos = append(infos, n.e.entryInfo())
			}
		}
		slices.SortFunc(infos, func(a, b *entryInfo) int { return strings.Compare(a.String(), b.String()) })
		for _, info := range infos {
			if n := info.String(); !seen[n] {
				seen[n] = true
				all = append(all, info)
			}
		}
	}
	for _, info := range all {
		if len(e.Registered) == maxListed {
			e.More++
			continue
		}
		e.Registered = append(e.Registered, info.String())
	}
	e.Hint = hint(t, name, all)
	return e
}

// hint suggests the likely fix when a registration almost matches.
func hint(t reflect.Type, name string, all []*entryInfo) string {
	for _, info := range all {
		switch {
		case info.typ == t && name != "" && info.name == "":
			return fmt.Sprintf("%s is registered without a name: use Make[%s]", typeName(t), typeName(t))
		case info.typ == t && name == "" && info.name != "":
			return fmt.Sprintf("%s is registered under the name %q: use MakeNamed[%s](c, %q)", typeName(t), info.name, typeName(t), info.name)
		case info.typ == t && name != "":
			return fmt.Sprintf("%s is registered under the name %q, not %q", typeName(t), info.name, name)
		}
	}
	for _, info := range all {
		switch {
		case t.Kind() == reflect.Interface && info.typ != nil && info.typ.Implements(t):
			return fmt.Sprintf("%s implements %s but is registered as itself: register it with container.Provide[%s](c, v)", typeName(info.typ), typeName(t), typeName(t))
		case info.typ != nil && info.typ.Kind() == reflect.Pointer && info.typ.Elem() == t,
			t.Kind() == reflect.Pointer && t.Elem() == info.typ:
			return fmt.Sprintf("%s is registered: did you mean Make[%s]?", typeName(info.typ), typeName(info.typ))
		}
	}
	return ""
}
