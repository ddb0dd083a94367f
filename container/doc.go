// Package container is goangel's typed dependency-injection container, the
// Go port of angel_container.
//
// One mechanism serves three levels. The runner's scope holds the shared
// singletons; each instance gets a Child of it (with its pubsub.Client and
// InstanceInfo); with --use-zone each request gets a Child of its instance's
// scope, reachable from the request's context.Context through WithContext
// and FromContext.
//
//	runner := container.NewNamed("runner")
//	instance := runner.ChildNamed("instance")
//	err := container.Provide[pubsub.Client](instance, client) // registered as the interface
//	// ... and where the instance's code needs it:
//	c := container.MustMake[pubsub.Client](instance) // resolve, or panic with the error
//
// # Registrations
//
// A scope maps a type T (and optionally a name) to one registration:
//
//   - Provide / ProvideNamed: a value, returned as is.
//   - ProvideFactory: a function called on every resolve. It receives the
//     resolving scope, so a factory registered for the whole instance can
//     use what a request scope holds.
//   - ProvideLazy: a function called once, on the first resolve, for the
//     scope that declared it. Concurrent first resolves build it exactly
//     once; a failed build is not cached.
//
// Registering the same type (and name) twice in one scope is an error
// (ErrDuplicate); a Child may shadow its parent's registration.
//
// Make, MakeNamed, Has and HasNamed look in the scope, then in its parents.
// A child keeps a pointer to its parent, never the other way round, so a
// finished request scope is garbage as soon as the request lets go of it.
//
// # Errors
//
// Every error wraps a sentinel matchable with errors.Is (ErrNotFound,
// ErrDuplicate, ErrCycle, ErrClosed, ErrPanic, ErrInvalid) and has a typed
// form for errors.As (*NotFoundError, *DuplicateError, *CycleError,
// *PanicError, *BuildError). A not-found error names the type, the scope
// chain searched and what is registered, with a hint when a registration
// nearly matches. A factory that needs itself, directly or through others,
// gets a *CycleError naming the path, never a stack overflow or a deadlock,
// including lazy singletons built from several goroutines at once. A
// factory's panic becomes a *PanicError.
//
// Factories must resolve through the *Container they receive, not one they
// captured: that scope carries the resolution path used to find cycles.
//
// # Lifetimes
//
// Close runs, in reverse order of creation, Close on every io.Closer the
// scope built (lazy singletons it declared, factory values resolved in it)
// and every OnClose hook, and joins their errors. Values given to Provide
// belong to the caller and are not closed. Closing a child never touches
// its parent; a closed scope refuses registrations and resolves with
// ErrClosed.
//
// # Speed
//
// Each scope's name, state and registrations form an immutable table read
// through an atomic pointer; registering or closing publishes a modified
// copy with compare-and-swap. Resolving therefore takes no lock and
// allocates nothing for values and built lazy singletons, and scales with
// cores. Child is one 32-byte allocation, and closing a scope that
// registered nothing allocates nothing. Factories and first builds of lazy
// singletons allocate a small frame that carries the resolution path.
// See BENCHMARKS.md for figures beside samber/do and dig.
package container
