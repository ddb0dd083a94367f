// Command peerapp is goangel's side of the peer comparison
// (bench/scripts/peers.sh): the same tiny app that the script writes for
// PM2, gunicorn and Puma. "/" answers "hello", "/id" answers which life of
// which instance answered ("0.3": instance 0, life 3; the peers answer their
// worker's process id), and "/crash" ends the instance that answers it (the
// peers end their worker process). Flags are the Runner's: -p, -j, ….
package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/goangel/angel/production"
)

func main() {
	production.New("peerapp", configure).Main()
}

func configure(app *production.App) error {
	info := app.Info()
	id := fmt.Sprintf("%d.%d", info.Number, info.Life)
	app.Router.Get("/", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") })
	app.Router.Get("/id", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, id) })
	app.Router.Get("/crash", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "crashing")
		app.Crash(errors.New("peerapp: /crash"))
	})
	return nil
}
