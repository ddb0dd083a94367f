package production_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/goangel/angel/production"
)

// App.Slog logs through the runner's logger with the instance's fields,
// from configure and from a handler.
func TestAppSlog(t *testing.T) {
	configure := func(app *production.App) error {
		app.Slog().Info("configured", "k", "v")
		app.Router.Get("/", func(w http.ResponseWriter, r *http.Request) {
			app.Slog().WarnContext(r.Context(), "handled", "path", r.URL.Path)
		})
		return nil
	}
	h := startRunner(t, configure, []string{"-j", "1"})
	if code, _, _, err := h.get("/"); err != nil || code != 200 {
		t.Fatalf("GET / = %d %v", code, err)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"INFO  configured app=test instance=0 k=v life=1\n",
		"WARN  handled app=test instance=0 life=1 path=/\n",
	} {
		if !strings.Contains(h.run.Log(), want) {
			t.Errorf("log lacks %q:\n%s", want, h.run.Log())
		}
	}
}
