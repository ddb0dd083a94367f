package production_test

import (
	"testing"
)

// TestAdminTopicMetrics: with --pubsub-metrics-topics, /metrics has one
// series per pattern of each per-topic pub/sub counter, with exact values
// after known publishes and drops; without it, none.
func TestAdminTopicMetrics(t *testing.T) {
	names := []string{
		"goangel_pubsub_topic_published_total",
		"goangel_pubsub_topic_delivered_total",
		"goangel_pubsub_topic_dropped_total",
		"goangel_pubsub_topic_slow_consumer_episodes_total",
	}
	t.Run("on", func(t *testing.T) {
		h := startAdmin(t, observed, []string{"-j", "2", "--pubsub-metrics-topics", "t,u.>"})
		// 3 messages to "t": the other instance's queue of 1 takes one and
		// drops two (one slow episode); the sender's own is skipped.
		if code, _, _, err := h.get("/publish?n=3"); err != nil || code != 200 {
			t.Fatalf("GET /publish = %d %v", code, err)
		}
		m := h.scrape(t)
		expect(t, m, map[string]float64{
			"goangel_pubsub_topic_published_total pattern t":              3,
			"goangel_pubsub_topic_delivered_total pattern t":              1,
			"goangel_pubsub_topic_dropped_total pattern t":                2,
			"goangel_pubsub_topic_slow_consumer_episodes_total pattern t": 1,
			"goangel_pubsub_topic_published_total pattern u.>":            0,
			"goangel_pubsub_topic_dropped_total pattern u.>":              0,
			"goangel_pubsub_published_total":                              3,
		})
		for _, name := range names {
			f := m[name]
			if f == nil || len(f.Metric) != 2 {
				t.Errorf("%s: %v, want one series per pattern (t, u.>)", name, f)
			}
		}
	})
	t.Run("off", func(t *testing.T) {
		h := startAdmin(t, observed, []string{"-j", "2"})
		if code, _, _, err := h.get("/publish?n=3"); err != nil || code != 200 {
			t.Fatalf("GET /publish = %d %v", code, err)
		}
		m := h.scrape(t)
		expect(t, m, map[string]float64{"goangel_pubsub_dropped_total": 2})
		for _, name := range names {
			if f := m[name]; f != nil {
				t.Errorf("%s exposed without --pubsub-metrics-topics: %v", name, f)
			}
		}
	})
}
