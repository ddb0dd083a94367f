// Command benchapp is goangel's side of the measurements from outside the
// process (bench/scripts/outside.sh): the ten-route chi app of the in-process
// benchmarks (bench/internal/workload) under a Runner with its default CLI
// policy, plus two routes for the respawn measurement: "/life" answers which
// life of which instance answered ("0.3": instance 0, life 3) and "/crash"
// answers the same, then ends that life (App.Crash). Flags are the Runner's:
// -p, -j, --http2, --ssl, ….
package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/goangel/angel/bench/internal/workload"
	"github.com/goangel/angel/production"
)

func main() {
	production.New("benchapp", configure).Main()
}

func configure(app *production.App) error {
	info := app.Info()
	id := fmt.Sprintf("%d.%d", info.Number, info.Life)
	workload.RegisterRoutes(app.Router)
	app.Router.Get("/life", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, id) })
	app.Router.Get("/crash", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, id)
		app.Crash(errors.New("benchapp: /crash"))
	})
	return nil
}
