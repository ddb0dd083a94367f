package production

import (
	"net/http"

	"github.com/sirupsen/logrus"

	"github.com/goangel/angel/container"
)

// zone gives each request a child container of parent (--use-zone),
// reachable with container.FromContext(r.Context()) and closed when the
// request ends, a panic included (the recover boundary is recoverer, which
// wraps every request). A failed close is logged.
func zone(parent *container.Container, log *logrus.Entry) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c := parent.ChildNamed("request")
			defer func() {
				if err := c.Close(); err != nil {
					log.WithError(err).Warn("Closing a request container failed")
				}
			}()
			next.ServeHTTP(w, r.WithContext(container.WithContext(r.Context(), c)))
		})
	}
}
