package pubsub

import (
	"fmt"
	"strings"
)

// Topics are tokens separated by dots, as in NATS: "greeting",
// "user.42.login". A token is never empty and nothing contains whitespace.
// Patterns may also use the NATS wildcards: a "*" token matches exactly one
// token, and a final ">" token matches one or more tokens ("user.>" matches
// "user.1" and "user.1.login" but not "user"). A "*" or ">" inside a longer
// token ("a*b") is an ordinary character.

// ValidateTopic reports whether topic can be published to: a valid topic
// with no wildcard tokens. The error wraps ErrInvalidTopic.
func ValidateTopic(topic string) error {
	return validate(topic, false)
}

// ValidatePattern reports whether pattern can be subscribed to. The error
// wraps ErrInvalidTopic.
func ValidatePattern(pattern string) error {
	return validate(pattern, true)
}

func validate(s string, wild bool) error {
	kind := "topic"
	if wild {
		kind = "pattern"
	}
	if s == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalidTopic, kind)
	}
	if strings.ContainsAny(s, " \t\r\n\f\v") {
		return fmt.Errorf("%w: %s %q contains whitespace", ErrInvalidTopic, kind, s)
	}
	rest := s
	for {
		i := strings.IndexByte(rest, '.')
		tok := rest
		if i >= 0 {
			tok = rest[:i]
		}
		switch {
		case tok == "":
			return fmt.Errorf("%w: %s %q has an empty token", ErrInvalidTopic, kind, s)
		case (tok == "*" || tok == ">") && !wild:
			return fmt.Errorf("%w: topic %q has a wildcard (only subscriptions may)", ErrInvalidTopic, s)
		case tok == ">" && i >= 0:
			return fmt.Errorf("%w: pattern %q has \">\" before its last token", ErrInvalidTopic, s)
		}
		if i < 0 {
			return nil
		}
		rest = rest[i+1:]
	}
}

// Match reports whether topic matches pattern. It is false when either is
// invalid (see ValidateTopic and ValidatePattern).
func Match(pattern, topic string) bool {
	if validate(pattern, true) != nil || validate(topic, false) != nil {
		return false
	}
	return match(pattern, topic)
}

// match is Match for a valid pattern and topic; it does not allocate.
func match(pattern, topic string) bool {
	for {
		pi := strings.IndexByte(pattern, '.')
		ptok := pattern
		if pi >= 0 {
			ptok = pattern[:pi]
		}
		if ptok == ">" {
			return topic != ""
		}
		ti := strings.IndexByte(topic, '.')
		ttok := topic
		if ti >= 0 {
			ttok = topic[:ti]
		}
		if ptok != "*" && ptok != ttok {
			return false
		}
		if pi < 0 || ti < 0 {
			return pi < 0 && ti < 0
		}
		pattern, topic = pattern[pi+1:], topic[ti+1:]
	}
}

// covers reports whether every topic matched by pattern is matched by
// allow (both valid patterns).
func covers(allow, pattern string) bool {
	for {
		ai := strings.IndexByte(allow, '.')
		atok := allow
		if ai >= 0 {
			atok = allow[:ai]
		}
		if atok == ">" {
			return pattern != ""
		}
		pi := strings.IndexByte(pattern, '.')
		ptok := pattern
		if pi >= 0 {
			ptok = pattern[:pi]
		}
		if ptok == ">" || (atok != "*" && atok != ptok) {
			return false
		}
		if ai < 0 || pi < 0 {
			return ai < 0 && pi < 0
		}
		allow, pattern = allow[ai+1:], pattern[pi+1:]
	}
}

func isWild(pattern string) bool {
	rest := pattern
	for {
		i := strings.IndexByte(rest, '.')
		tok := rest
		if i >= 0 {
			tok = rest[:i]
		}
		if tok == "*" || tok == ">" {
			return true
		}
		if i < 0 {
			return false
		}
		rest = rest[i+1:]
	}
}
