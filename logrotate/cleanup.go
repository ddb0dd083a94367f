package logrotate

// Clean-up: the background goroutine, and the removal of old files by
// age and count, among the names this log produces only.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"
)

// background runs the periodic Check and the clean-up of old files. It is
// owned by the log: Close of the last Writer stops it (stop) and waits for
// it (wg).
func (l *sharedLog) background() {
	defer l.wg.Done()
	var tick <-chan time.Time
	if l.s.CheckEvery > 0 {
		t := time.NewTicker(l.s.CheckEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-l.stop:
			return
		case <-tick:
			l.recovered(func() { _ = l.check() })
		case <-l.kick:
			l.recovered(l.cleanup)
		}
	}
}

// recovered runs one round of background work. A panic in it (a bug here,
// or a panicking ErrorOutput) would kill the process from a goroutine the
// application cannot guard: it is reported on ErrorOutput with its stack
// instead, and the next round runs as usual.
func (l *sharedLog) recovered(round func()) {
	defer func() {
		if p := recover(); p != nil {
			defer func() { _ = recover() }() // ErrorOutput panicking again
			l.report(fmt.Errorf("background check panicked: %v\n%s", p, debug.Stack()))
		}
	}()
	round()
}

// cleanup removes old files of this log by age and count. It only
// considers names this log produces (pattern + optional ".N"), never the
// current file nor the symlink.
func (l *sharedLog) cleanup() {
	if l.s.MaxAge <= 0 && l.s.MaxFiles <= 0 {
		return
	}
	// The read lock keeps rotations out (not writes) from reading the
	// current name to the last removal: a rotation in between would make
	// the new current file look like an old one.
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return
	}
	cur := l.name
	dir := l.s.dir
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type file struct {
		path string
		mod  time.Time
		stem string // path without its ".N"
		gen  int    // N; 0 without
	}
	var files []file
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		m := l.match.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if p == cur || p == l.salvageTo {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		f := file{path: p, mod: fi.ModTime(), stem: strings.TrimSuffix(p, m[1])}
		if m[1] != "" {
			f.gen, _ = strconv.Atoi(m[1][1:])
		}
		files = append(files, f)
	}
	// Newest first: by modification time, then by name order within a
	// period (".10" is newer than ".9", which plain sorting gets wrong).
	sort.Slice(files, func(i, j int) bool {
		if !files[i].mod.Equal(files[j].mod) {
			return files[i].mod.After(files[j].mod)
		}
		if files[i].stem != files[j].stem {
			return files[i].stem > files[j].stem
		}
		return files[i].gen > files[j].gen
	})
	cutoff := l.s.now().Add(-l.s.MaxAge)
	for i, f := range files {
		old := l.s.MaxAge > 0 && f.mod.Before(cutoff)
		extra := l.s.MaxFiles > 0 && i+1 >= l.s.MaxFiles // +1: the current file counts
		if !old && !extra {
			continue
		}
		if l.onRemove != nil {
			l.onRemove(f.path)
		}
		if os.Remove(f.path) == nil {
			l.removed.Add(1)
		}
	}
}

// ownNames compiles a regexp matching exactly the base names a pattern
// produces, with file-rotatelogs' optional ".N" generation suffix as
// group 1.
func ownNames(base string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(base); i++ {
		c := base[i]
		if c != '%' || i+1 == len(base) {
			b.WriteString(regexp.QuoteMeta(string(c)))
			continue
		}
		i++
		switch base[i] {
		case 'Y', 'G':
			b.WriteString(`[0-9]{4}`)
		case 'C', 'y', 'm', 'd', 'H', 'I', 'M', 'S', 'U', 'V', 'W', 'g':
			b.WriteString(`[0-9]{2}`)
		case 'e', 'k', 'l':
			b.WriteString(`[ 0-9][0-9]`)
		case 'j':
			b.WriteString(`[0-9]{3}`)
		case 'u', 'w':
			b.WriteString(`[0-9]`)
		case 'F':
			b.WriteString(`[0-9]{4}-[0-9]{2}-[0-9]{2}`)
		case 'T':
			b.WriteString(`[0-9]{2}:[0-9]{2}:[0-9]{2}`)
		case 'R':
			b.WriteString(`[0-9]{2}:[0-9]{2}`)
		case 'a', 'A', 'b', 'B', 'h', 'p', 'Z':
			b.WriteString(`[A-Za-z]+`)
		case '%':
			b.WriteString(`%`)
		default:
			b.WriteString(`[^/]+?`)
		}
	}
	b.WriteString(`(\.[0-9]+)?$`)
	return regexp.MustCompile(b.String())
}
