package pubsub_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/goangel/angel/pubsub"
)

// refValid and refMatch are the obvious implementations, by splitting.
func refValid(s string, wild bool) bool {
	if s == "" || strings.ContainsAny(s, " \t\r\n\f\v") {
		return false
	}
	toks := strings.Split(s, ".")
	for i, tok := range toks {
		if tok == "" {
			return false
		}
		if !wild && (tok == "*" || tok == ">") {
			return false
		}
		if tok == ">" && i != len(toks)-1 {
			return false
		}
	}
	return true
}

func refMatch(pattern, topic string) bool {
	if !refValid(pattern, true) || !refValid(topic, false) {
		return false
	}
	p, tt := strings.Split(pattern, "."), strings.Split(topic, ".")
	for i, tok := range p {
		if tok == ">" {
			return len(tt) > i
		}
		if i >= len(tt) || (tok != "*" && tok != tt[i]) {
			return false
		}
	}
	return len(p) == len(tt)
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, topic string
		want           bool
	}{
		{"a", "a", true},
		{"a", "b", false},
		{"a.b", "a.b", true},
		{"a.b", "a", false},
		{"a", "a.b", false},
		{"*", "a", true},
		{"*", "a.b", false},
		{">", "a", true},
		{">", "a.b.c", true},
		{"a.>", "a", false},
		{"a.*.c", "a.b.c", true},
		{"a.*.c", "a.b.d", false},
		{"*.*", "a.b", true},
		{"a*", "a*", true},
		{"a*", "ab", false},
		{"a.>.b", "a.x.b", false}, // invalid pattern
		{"a", "a.*", false},       // invalid topic
		{"", "", false},
		{"a..b", "a..b", false},
	} {
		if got := pubsub.Match(tc.pattern, tc.topic); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.topic, got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		s            string
		topic, patte bool
	}{
		{"a", true, true},
		{"a.b.c", true, true},
		{"*", false, true},
		{">", false, true},
		{"a.>", false, true},
		{"a.>.b", false, false},
		{"", false, false},
		{"a.", false, false},
		{".a", false, false},
		{"a b", false, false},
		{"a*b", true, true},
	} {
		if err := pubsub.ValidateTopic(tc.s); (err == nil) != tc.topic || (err != nil && !errors.Is(err, pubsub.ErrInvalidTopic)) {
			t.Errorf("ValidateTopic(%q) = %v", tc.s, err)
		}
		if err := pubsub.ValidatePattern(tc.s); (err == nil) != tc.patte || (err != nil && !errors.Is(err, pubsub.ErrInvalidTopic)) {
			t.Errorf("ValidatePattern(%q) = %v", tc.s, err)
		}
	}
}

// FuzzMatch checks Match and the validators against the reference
// implementations, and that a matched topic is matched by ">" .
func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"a", "a"}, {"a.*", "a.b"}, {"a.>", "a.b.c"}, {">", "x"}, {"*.b", "a.b"},
		{"a.*.c", "a.b.c"}, {"a..b", "a..b"}, {"a.>.c", "a.b.c"}, {"", ""}, {"a b", "a b"},
		{"user.*", "user"}, {"*", "*"}, {">", ">"}, {"a*", "a*"}, {"a.", "a."},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, topic string) {
		got, want := pubsub.Match(pattern, topic), refMatch(pattern, topic)
		if got != want {
			t.Fatalf("Match(%q, %q) = %v, reference says %v", pattern, topic, got, want)
		}
		if (pubsub.ValidateTopic(topic) == nil) != refValid(topic, false) {
			t.Fatalf("ValidateTopic(%q) disagrees with the reference", topic)
		}
		if (pubsub.ValidatePattern(pattern) == nil) != refValid(pattern, true) {
			t.Fatalf("ValidatePattern(%q) disagrees with the reference", pattern)
		}
		if got && !pubsub.Match(">", topic) {
			t.Fatalf("%q matched %q but not >", pattern, topic)
		}
		// A valid topic, used as a pattern, matches itself exactly.
		if refValid(topic, false) && !pubsub.Match(topic, topic) {
			t.Fatalf("%q does not match itself", topic)
		}
	})
}
