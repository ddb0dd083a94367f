// Package goroutines is the runner's one goroutine-label scheme and the one
// reader of the goroutine profile filtered by it.
//
// Every goroutine of a life (each request's, set once per request, and each
// app.Go function's, inherited by the goroutines they start) carries the
// pprof labels of [Labels]. The hang and abandon reports keep the stacks of
// one life (by [LifeID]); the admin listener's
// /debug/pprof/goroutine?instance=N&life=L those of an instance or a life
// (by [Instance] and [Life]). Both read the profile with [Stacks].
package goroutines

import (
	"bytes"
	"context"
	"fmt"
	"runtime/pprof"
	"strconv"
	"strings"
)

// The label keys.
const (
	LifeID   = "goangel_life" // the life's id (production.InstanceInfo.ID)
	Instance = "instance"     // the instance's number
	Life     = "life"         // the life's number
)

// Labels returns a context holding the labels of a life, for
// pprof.SetGoroutineLabels.
func Labels(id string, instance, life int) context.Context {
	return pprof.WithLabels(context.Background(), pprof.Labels(
		LifeID, id, Instance, strconv.Itoa(instance), Life, strconv.Itoa(life)))
}

// Stacks reads the goroutine profile and returns its header line
// ("goroutine profile: total N") and, in pprof's text form (debug=1), the
// stacks of the goroutines labelled with every pair of want (key, value,
// key, value...). With no pair it keeps every stack.
func Stacks(want ...string) (header, stacks string, err error) {
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
		return "", "", fmt.Errorf("goroutine profile: %w", err)
	}
	header, stacks = Filter(buf.String(), want...)
	return header, stacks, nil
}

// Filter is Stacks on a profile already read (text form, debug=1): stanzas
// separated by blank lines, the first led by the header line, each with a
// "# labels: {...}" line when its goroutines have labels.
func Filter(profile string, want ...string) (header, stacks string) {
	if len(want)%2 != 0 {
		panic("goroutines: Filter wants key, value pairs")
	}
	pairs := make([]string, 0, len(want)/2)
	for i := 0; i < len(want); i += 2 {
		// pprof prints each label as %q:%q.
		pairs = append(pairs, strconv.Quote(want[i])+":"+strconv.Quote(want[i+1]))
	}
	var out strings.Builder
	for i, st := range strings.Split(profile, "\n\n") {
		if i == 0 && strings.HasPrefix(st, "goroutine profile:") {
			// The header line is followed directly by the first stack.
			header, st, _ = strings.Cut(st, "\n")
		}
		st = strings.Trim(st, "\n")
		if st == "" || !hasLabels(st, pairs) {
			continue
		}
		out.WriteString(st)
		out.WriteString("\n\n")
	}
	return header, out.String()
}

// hasLabels reports whether the labels line of stanza holds every pair.
func hasLabels(stanza string, pairs []string) bool {
	if len(pairs) == 0 {
		return true
	}
	for line := range strings.SplitSeq(stanza, "\n") {
		labels, ok := strings.CutPrefix(line, "# labels: ")
		if !ok {
			continue
		}
		for _, kv := range pairs {
			if !strings.Contains(labels, kv) {
				return false
			}
		}
		return true
	}
	return false
}
