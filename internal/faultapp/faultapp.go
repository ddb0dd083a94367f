// Package faultapp is the app of goangel's fault suite: routes that fail in
// every way the production runner supports (and a few it has to survive),
// for tests that run it in a Runner or as a real process (cmd/faultapp).
//
// Routes:
//
//	/ok                 200 "ok"
//	/count              200 "ok", counted in Served (requests processed)
//	/panic              a handler panic before the answer: 500
//	/panic-mid-body     writes half a JSON answer, flushes, panics: aborted
//	/crash/error        App.Crash(error): the life ends, the instance respawns
//	/crash/clean        App.Crash(nil)
//	/crash/go-panic     a panic on an App.Go goroutine
//	/crash/go-error     an App.Go function returns an error
//	/crash/timer-panic  a panic in an App.AfterFunc timer
//	/block              logs "faultapp: /block in flight", blocks until its request context ends
//	/hang               logs "faultapp: /hang in flight", blocks until Release (ignores its context)
//	/sleep?d=100ms      sleeps d, then 200
//	/stream?n=10        n lines, flushed one by one
//	/trickle?n=20&every=50ms
//	                    n chunks of 64 KiB, one every d, flushed: a steady
//	                    download that takes n*d
//	/hijack             takes the connection over, answers by hand, closes it
//	/hijack-echo        takes the connection over, answers 101 by hand, then
//	                    echoes what the client sends until it closes (a
//	                    WebSocket-style handler blocked reading its client)
//	/upload             reads the whole body, answers its length (400 on a bad body)
//	/log?n=10           logs n lines at error level, then 200
//
// A crash route answers 200 "crashing" before its life ends.
package faultapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/goangel/angel/production"
)

// TrickleChunk is the size of one chunk of /trickle.
const TrickleChunk = 64 << 10

// CrashKinds are the crash routes, one per way a life can end.
var CrashKinds = []string{"error", "clean", "go-panic", "go-error", "timer-panic"}

// App holds the fault app's shared state across every instance and life.
type App struct {
	// Served counts the requests /count processed.
	Served atomic.Int64
	// HangConfigure makes configure block forever on every life after the
	// first (a respawn whose configure hangs).
	HangConfigure bool
	// HangHook registers an OnShutdown hook that ignores its context.
	HangHook bool

	release     chan struct{}
	releaseOnce sync.Once
}

// New returns a fault app.
func New() *App { return &App{release: make(chan struct{})} }

// Release lets every /hang handler return.
func (a *App) Release() { a.releaseOnce.Do(func() { close(a.release) }) }

// Configure is the production.Runner configure function.
func (a *App) Configure(app *production.App) error {
	if a.HangConfigure && app.Info().Life > 1 {
		app.Logger.Warn("faultapp: this configure hangs (HangConfigure)")
		select {} // a configure that never returns
	}
	if a.HangHook {
		app.OnShutdown(func(context.Context) error {
			select {} // a hook that ignores its context
		})
	}
	r := app.Router
	r.Get("/ok", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	r.Get("/count", func(w http.ResponseWriter, _ *http.Request) {
		a.Served.Add(1)
		io.WriteString(w, "ok")
	})
	r.Get("/panic", func(http.ResponseWriter, *http.Request) { panic("faultapp: handler panic") })
	r.Get("/panic-mid-body", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"items":[1,2,3,`)
		w.(http.Flusher).Flush()
		panic("faultapp: panic mid-body")
	})
	r.Get("/crash/{kind}", func(w http.ResponseWriter, req *http.Request) {
		kind := chi.URLParam(req, "kind")
		crash := map[string]func(){
			"error": func() { app.Crash(errors.New("faultapp: crash requested")) },
			"clean": func() { app.Crash(nil) },
			"go-panic": func() {
				app.Go(func(context.Context) error { panic("faultapp: panic in app.Go") })
			},
			"go-error": func() {
				app.Go(func(context.Context) error { return errors.New("faultapp: app.Go failed") })
			},
			"timer-panic": func() { app.AfterFunc(0, func() { panic("faultapp: panic in a timer") }) },
		}[kind]
		if crash == nil {
			http.Error(w, "unknown crash kind "+kind, http.StatusNotFound)
			return
		}
		io.WriteString(w, "crashing")
		crash()
	})
	r.Get("/block", func(w http.ResponseWriter, req *http.Request) {
		app.Logger.Info("faultapp: /block in flight")
		<-req.Context().Done()
	})
	r.Get("/hang", func(w http.ResponseWriter, _ *http.Request) {
		app.Logger.Info("faultapp: /hang in flight")
		<-a.release
		io.WriteString(w, "released")
	})
	r.Get("/sleep", func(w http.ResponseWriter, req *http.Request) {
		d, err := time.ParseDuration(req.URL.Query().Get("d"))
		if err != nil {
			http.Error(w, "d: "+err.Error(), http.StatusBadRequest)
			return
		}
		time.Sleep(d)
		io.WriteString(w, "slept")
	})
	r.Get("/stream", func(w http.ResponseWriter, req *http.Request) {
		n, _ := strconv.Atoi(req.URL.Query().Get("n"))
		for i := range n {
			fmt.Fprintf(w, "line %d\n", i)
			w.(http.Flusher).Flush()
		}
	})
	r.Get("/trickle", func(w http.ResponseWriter, req *http.Request) {
		n, _ := strconv.Atoi(req.URL.Query().Get("n"))
		every, err := time.ParseDuration(req.URL.Query().Get("every"))
		if err != nil {
			http.Error(w, "every: "+err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(n*TrickleChunk))
		chunk := make([]byte, TrickleChunk)
		t := time.NewTicker(every)
		defer t.Stop()
		for range n {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-t.C:
			case <-req.Context().Done():
				return
			}
		}
	})
	r.Get("/hijack", func(w http.ResponseWriter, _ *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhijacked")
		brw.Flush()
	})
	r.Get("/hijack-echo", func(w http.ResponseWriter, _ *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		io.Copy(c, brw) // until the client closes, or the connection is closed under it
	})
	r.Post("/upload", func(w http.ResponseWriter, req *http.Request) {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d", len(b))
	})
	r.Get("/log", func(w http.ResponseWriter, req *http.Request) {
		n, _ := strconv.Atoi(req.URL.Query().Get("n"))
		for i := range n {
			app.Logger.Errorf("faultapp: log line %d", i)
		}
		io.WriteString(w, "logged")
	})
	return nil
}
