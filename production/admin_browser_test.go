package production_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goangel/angel/internal/testutil"
	"github.com/goangel/angel/production"
)

// chromium returns the path of a headless-capable Chromium. CI (CI=true)
// installs Debian's chromium (.ci/run), so there a missing browser fails the
// test; elsewhere the test is skipped with a message saying what to install.
func chromium(t *testing.T) string {
	t.Helper()
	return testutil.NeedTool(t, "chromium", "chromium", "chromium-browser", "google-chrome")
}

// browse runs headless chromium with args and the URL; it returns stdout.
func browse(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir()}
	cmd := browserCmd(ctx, bin, append(base, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if cmd.Process != nil {
		endGroup(t, cmd.Process.Pid)
	}
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errOut.String())
	}
	return out.Bytes()
}

// browserCmd runs chromium in a process group of its own, killed as a
// whole when ctx ends: its renderer, network and storage processes outlive
// a killed browser process and keep writing to the profile directory, whose
// removal at the test's end then fails ("directory not empty").
func browserCmd(ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}

// endGroup kills what is left of chromium's process group pgid and waits
// until none of its processes runs (zombies left to be reaped write
// nothing).
func endGroup(t testing.TB, pgid int) {
	t.Helper()
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	waitFor(t, 30*time.Second, "chromium's processes to end", func() bool { return !groupRuns(pgid) })
}

// groupRuns reports whether a process of group pgid runs (Linux: from
// /proc; elsewhere it reports false).
func groupRuns(pgid int) bool {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parens.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}

// startBrowser starts headless chromium with args and the URL in the
// background, its profile in dir; stop ends it (and is also run at the end
// of the test, before dir is removed). Chromium runs in a process group of
// its own, so that stop ends its helper processes too (they would go on
// writing to dir).
func startBrowser(t *testing.T, bin string, args ...string) (stop func(), dir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	dir = t.TempDir()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=" + dir}
	cmd := browserCmd(ctx, bin, append(base, args...)...)
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("chromium %v: %v", args, err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			_ = cmd.Wait()
			endGroup(t, cmd.Process.Pid)
		})
	}
	t.Cleanup(stop)
	return stop, dir
}

// TestAdminStatusPageInBrowser renders the status page in headless
// chromium and checks the instance table of the DOM it built; and takes a
// screenshot. With GOANGEL_UPDATE_SCREENSHOT=1 it first runs some load and a
// few crashes for a while (so that the chart has points) and writes the
// screenshot to docs/admin-status.png.
func TestAdminStatusPageInBrowser(t *testing.T) {
	bin := chromium(t)
	update := os.Getenv("GOANGEL_UPDATE_SCREENSHOT") == "1"
	crash := make(chan struct{}, 8)
	configure := func(app *production.App) error { return crashOnSignal(app, crash) }
	h := startAdmin(t, configure, []string{"-j", "3"})
	for range 20 {
		if code, _, _, err := h.get("/"); err != nil || code != 200 {
			t.Fatalf("GET / = %d %v", code, err)
		}
	}
	crash <- struct{}{}
	waitFor(t, 10*time.Second, "the crash to be counted", func() bool {
		return h.scrape(t).sum("goangel_lives_started_total") == 4
	})
	if update {
		stop := startBrowserLoad(h, crash)
		defer stop()
		<-time.After(45 * time.Second) // the history the screenshot shows
	}

	dom := string(browse(t, bin, "--dump-dom", h.admin+"/"))
	for _, want := range []string{`<table id="instances">`, `data-instance="0"`, `data-instance="1"`, `data-instance="2"`, "<svg", "serving", "triggered crash",
		`id="version"`, `id="uptime"`, `id="last-reload"`, `class="p50"`, `class="p99"`, `class="errors"`, `id="y-axis"`, "time (a point every"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the DOM chromium built lacks %q:\n%s", want, dom)
		}
	}
	if n := strings.Count(dom, "<tr data-instance="); n != 3 {
		t.Errorf("the DOM has %d instance rows, want 3", n)
	}
	if !strings.Contains(dom, `data-by="page"`) {
		t.Errorf("the first render is not the page's own:\n%s", dom)
	}
	// Refreshed in place: with virtual time the page's timer fires, and
	// its live part is replaced by the fragment the server rendered.
	dom = string(browse(t, bin, "--virtual-time-budget=10000", "--dump-dom", h.admin+"/"))
	if !strings.Contains(dom, `data-by="refresh"`) || !strings.Contains(dom, `<table id="instances">`) || strings.Count(dom, "<tr data-instance=") != 3 {
		t.Errorf("the page did not refresh its live part in place:\n%s", dom)
	}

	png := filepath.Join(t.TempDir(), "status.png")
	browse(t, bin, "--screenshot="+png, "--window-size=1280,640", h.admin+"/")
	img, err := os.ReadFile(png)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(img, []byte("\x89PNG\r\n\x1a\n")) || len(img) < 5000 {
		t.Fatalf("screenshot: %d bytes, not a PNG of the page", len(img))
	}
	if update {
		if err := os.WriteFile(filepath.Join("..", "docs", "admin-status.png"), img, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAdminStatusPageRefreshesWithCredentials: the status page opened the
// documented way, with the token as the Basic password in the URL
// (http://:TOKEN@host/), keeps refreshing its live part in Chromium (which
// refuses a fetch of a URL with credentials), and shows no refresh error.
func TestAdminStatusPageRefreshesWithCredentials(t *testing.T) {
	bin := chromium(t)
	const token = "status-page-t0ken"
	h := startAdmin(t, hello, []string{"-j", "2", "--admin-token", token})
	url := "http://ops:" + token + "@" + strings.TrimPrefix(h.admin, "http://") + "/"
	dom := string(browse(t, bin, "--virtual-time-budget=10000", "--dump-dom", url))
	if !strings.Contains(dom, `data-by="refresh"`) || strings.Count(dom, "<tr data-instance=") != 2 {
		t.Errorf("the page opened with credentials did not refresh its live part:\n%s", dom)
	}
	if !strings.Contains(dom, `id="refresh-error" class="bad" hidden=""`) {
		t.Errorf("the page shows a refresh error:\n%s", dom)
	}
}

// startBrowserLoad sends paced requests (a few hundred per second) from 3 clients,
// with a crash every 10s, until the returned stop is called, so that the
// status page's history has something to show (screenshot mode only).
func startBrowserLoad(h *adminHarness, crash chan<- struct{}) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			c := fresh()
			tick := time.NewTicker(time.Duration(3+2*i) * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					getWith(c, h.run.URL+"/")
				}
			}
		})
	}
	wg.Go(func() {
		crashes := time.NewTicker(10 * time.Second)
		defer crashes.Stop()
		for {
			select {
			case <-done:
				return
			case <-crashes.C:
				crash <- struct{}{}
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// crashOnSignal is hello, and a supervised goroutine that crashes the life
// when it takes a value from crash (any instance may take it).
func crashOnSignal(app *production.App, crash <-chan struct{}) error {
	goCrashOn(app, crash)
	return hello(app)
}

// goCrashOn starts a supervised goroutine that crashes the life when it
// takes a value from crash (or crash is closed).
func goCrashOn(app *production.App, crash <-chan struct{}) {
	app.Go(func(ctx context.Context) error {
		select {
		case <-crash:
			return errors.New("triggered crash")
		case <-ctx.Done():
			return nil
		}
	})
}
