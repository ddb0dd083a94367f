// Command plainapp is the baseline of the measurements from outside the
// process (bench/scripts/outside.sh): the same ten-route chi router as
// benchapp (bench/internal/workload) on one plain net/http server, the way a
// hand-rolled main() serves it. With -http2 it also serves HTTP/2: over TLS
// with -cert and -key, else cleartext with prior knowledge (h2c), as goangel's
// --http2 does.
//
//	plainapp -addr 127.0.0.1:8080 [-http2] [-cert cert.pem -key key.pem]
//
// BENCH_CPUPROFILE=FILE:SECONDS writes a CPU profile of the first SECONDS to
// FILE.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/goangel/angel/bench/internal/workload"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	h2 := flag.Bool("http2", false, "serve HTTP/2 too: h2 with -cert/-key, else h2c")
	cert := flag.String("cert", "", "PEM certificate: serve TLS")
	key := flag.String("key", "", "PEM private key of -cert")
	flag.Parse()
	workload.ProfileFromEnv()
	if (*cert == "") != (*key == "") {
		fmt.Fprintln(os.Stderr, "plainapp: -cert and -key go together: give both for TLS, or neither")
		os.Exit(64)
	}
	r := chi.NewRouter()
	workload.RegisterRoutes(r)
	r.Get("/life", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "plain") })
	srv := &http.Server{Addr: *addr, Handler: r, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	if *h2 {
		var p http.Protocols
		p.SetHTTP1(true)
		if *cert != "" {
			p.SetHTTP2(true)
		} else {
			p.SetUnencryptedHTTP2(true)
		}
		srv.Protocols = &p
	}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		srv.Close()
	}()
	var err error
	if *cert != "" {
		err = srv.ListenAndServeTLS(*cert, *key)
	} else {
		err = srv.ListenAndServe()
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "plainapp:", err)
		os.Exit(1)
	}
}
