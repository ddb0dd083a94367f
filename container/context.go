package container

import "context"

// ctxKey is the context key for the scope; a pointer-free unexported type so
// no other package can collide with it.
type ctxKey struct{}

// WithContext returns a copy of ctx that carries c, so that code below a
// request's handler can reach the request scope with FromContext.
func WithContext(ctx context.Context, c *Container) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// FromContext returns the scope stored in ctx by WithContext, and whether
// there was one.
func FromContext(ctx context.Context) (*Container, bool) {
	c, ok := ctx.Value(ctxKey{}).(*Container)
	return c, ok && c != nil
}
