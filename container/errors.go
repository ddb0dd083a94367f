package container

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// Sentinel errors. Every error returned by this package wraps exactly one of
// them (a build error wraps the factory's own error instead), so callers
// match with errors.Is and read the details with errors.As on the typed
// errors below.
var (
	// ErrNotFound: nothing is registered for the type (and name) in the
	// resolving scope or any of its parents. See *NotFoundError.
	ErrNotFound = errors.New("container: not found")
	// ErrDuplicate: the type (and name) is already registered in that very
	// scope. A child may shadow a parent's registration; one scope may not
	// hold two. See *DuplicateError.
	ErrDuplicate = errors.New("container: already registered")
	// ErrCycle: a factory needs, directly or through others, the value it is
	// building. See *CycleError.
	ErrCycle = errors.New("container: dependency cycle")
	// ErrClosed: the scope (or the scope holding the registration) has been
	// closed.
	ErrClosed = errors.New("container: scope closed")
	// ErrPanic: a factory panicked. See *PanicError.
	ErrPanic = errors.New("container: factory panicked")
	// ErrInvalid: a registration that can never work, such as a nil factory.
	ErrInvalid = errors.New("container: invalid registration")
)

// NotFoundError reports a resolve that found no registration. It wraps
// ErrNotFound.
type NotFoundError struct {
	Type       reflect.Type // the type asked for
	Name       string       // the name asked for; "" for an unnamed resolve
	Scopes     []string     // the scope chain searched, resolving scope first
	Registered []string     // what the chain holds (at most maxListed entries)
	More       int          // how many registrations were left out of Registered
	Hint       string       // a suggestion, when one is obvious ("" otherwise)
}

const maxListed = 12

func (e *NotFoundError) Error() string {
	var b strings.Builder
	b.WriteString("container: no value of type ")
	b.WriteString(typeName(e.Type))
	if e.Name != "" {
		fmt.Fprintf(&b, " named %q", e.Name)
	}
	b.WriteString(" in scope chain [")
	b.WriteString(strings.Join(e.Scopes, " → "))
	b.WriteString("]; registered: ")
	if len(e.Registered) == 0 {
		b.WriteString("nothing")
	} else {
		b.WriteString(strings.Join(e.Registered, ", "))
		if e.More > 0 {
			fmt.Fprintf(&b, " and %d more", e.More)
		}
	}
	if e.Hint != "" {
		b.WriteString(" (")
		b.WriteString(e.Hint)
		b.WriteString(")")
	} else if e.Name != "" {
		fmt.Fprintf(&b, " (register it with container.ProvideNamed[%s](c, %q, v) before resolving)", typeName(e.Type), e.Name)
	} else {
		fmt.Fprintf(&b, " (register it with container.Provide[%s], ProvideFactory or ProvideLazy before resolving)", typeName(e.Type))
	}
	return b.String()
}

func (e *NotFoundError) Unwrap() error { return ErrNotFound }

// DuplicateError reports a second registration of a type (and name) in one
// scope. It wraps ErrDuplicate.
type DuplicateError struct {
	Type  reflect.Type
	Name  string
	Scope string // the scope that already holds it
	Kind  string // what is already registered: "value", "factory" or "lazy"
}

func (e *DuplicateError) Error() string {
	what := typeName(e.Type)
	if e.Name != "" {
		what += fmt.Sprintf(" named %q", e.Name)
	}
	return fmt.Sprintf("container: %s is already registered (as a %s) in scope %q; register each type once per scope, or register the new one in a Child scope to shadow it", what, e.Kind, e.Scope)
}

func (e *DuplicateError) Unwrap() error { return ErrDuplicate }

// CycleError reports a dependency cycle. Path lists the registrations being
// built, outermost first, and ends with the one requested again.
type CycleError struct {
	Path []string
}

func (e *CycleError) Error() string {
	return "container: dependency cycle: " + strings.Join(e.Path, " → ") +
		" (a factory must not need, directly or through others, the value it builds)"
}

func (e *CycleError) Unwrap() error { return ErrCycle }

// BuildError reports a factory that returned an error. It wraps that error,
// so errors.Is and errors.As see through it to the factory's own error.
type BuildError struct {
	Type reflect.Type
	Name string
	Err  error
}

func (e *BuildError) Error() string {
	return "container: building " + typeName(e.Type) + ": " + e.Err.Error()
}

func (e *BuildError) Unwrap() error { return e.Err }

// PanicError reports a factory (or a close hook) that panicked. It wraps
// ErrPanic, and the panic value too when that value is an error.
type PanicError struct {
	Type  reflect.Type // the type being built; nil for a close hook
	Value any          // what was passed to panic
	Stack []byte       // the panicking goroutine's stack
}

func (e *PanicError) Error() string {
	if e.Type == nil {
		return fmt.Sprintf("container: close hook panicked: %v", e.Value)
	}
	return fmt.Sprintf("container: factory for %s panicked: %v", typeName(e.Type), e.Value)
}

func (e *PanicError) Unwrap() []error {
	if err, ok := e.Value.(error); ok {
		return []error{ErrPanic, err}
	}
	return []error{ErrPanic}
}

func typeName(t reflect.Type) string {
	if t == nil {
		return "<nil>"
	}
	return t.String()
}

func closedError(op string, t reflect.Type, scope string) error {
	return fmt.Errorf("container: %s %s: scope %q is closed: %w", op, typeName(t), scope, ErrClosed)
}
