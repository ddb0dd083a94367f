package logging

import (
	"context"
	"log/slog"

	"github.com/sirupsen/logrus"
)

// Slog returns a *slog.Logger whose records go through e's logrus logger
// (its outputs, formatter and level) with e's fields, so that libraries
// logging with log/slog land in the same console and files. slog's Debug,
// Info, Warn and Error map to logrus' debug, info, warning and error
// (below Debug: trace); groups become dotted field names ("db.query");
// attribute values keep their type (an error stays an error, a duration a
// duration).
func Slog(e *logrus.Entry) *slog.Logger { return slog.New(&slogHandler{entry: e}) }

type slogHandler struct {
	entry  *logrus.Entry
	attrs  logrus.Fields // from WithAttrs, keys already prefixed
	prefix string        // from WithGroup: "a.b."
}

func slogLevel(l slog.Level) logrus.Level {
	switch {
	case l >= slog.LevelError:
		return logrus.ErrorLevel
	case l >= slog.LevelWarn:
		return logrus.WarnLevel
	case l >= slog.LevelInfo:
		return logrus.InfoLevel
	case l >= slog.LevelDebug:
		return logrus.DebugLevel
	default:
		return logrus.TraceLevel
	}
}

func (h *slogHandler) Enabled(_ context.Context, l slog.Level) bool {
	return h.entry.Logger.IsLevelEnabled(slogLevel(l))
}

func (h *slogHandler) Handle(ctx context.Context, r slog.Record) error {
	fields := make(logrus.Fields, len(h.entry.Data)+len(h.attrs)+r.NumAttrs())
	for k, v := range h.entry.Data {
		fields[k] = v
	}
	for k, v := range h.attrs {
		fields[k] = v
	}
	r.Attrs(func(a slog.Attr) bool {
		addAttr(fields, h.prefix, a)
		return true
	})
	e := &logrus.Entry{Logger: h.entry.Logger, Data: fields, Time: r.Time, Context: ctx}
	e.Log(slogLevel(r.Level), r.Message)
	return nil
}

func addAttr(fields logrus.Fields, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			addAttr(fields, p, g)
		}
		return
	}
	fields[prefix+a.Key] = a.Value.Any()
}

func (h *slogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := &slogHandler{entry: h.entry, prefix: h.prefix, attrs: make(logrus.Fields, len(h.attrs)+len(attrs))}
	for k, v := range h.attrs {
		n.attrs[k] = v
	}
	for _, a := range attrs {
		addAttr(n.attrs, h.prefix, a)
	}
	return n
}

func (h *slogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &slogHandler{entry: h.entry, attrs: h.attrs, prefix: h.prefix + name + "."}
}
