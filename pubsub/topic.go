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
	for rest, more := s, true; more; {
		var tok string
		tok, rest, more = strings.Cut(rest, ".")
		switch {
		case tok == "":
			return fmt.Errorf("%w: %s %q has an empty token", ErrInvalidTopic, kind, s)
		case (tok == "*" || tok == ">") && !wild:
			return fmt.Errorf("%w: topic %q has a wildcard (only subscriptions may)", ErrInvalidTopic, s)
		case tok == ">" && more:
			return fmt.Errorf("%w: pattern %q has \">\" before its last token", ErrInvalidTopic, s)
		}
	}
	return nil
}

// Match reports whether topic matches pattern. It is false when either is
// invalid (see ValidateTopic and ValidatePattern).
func Match(pattern, topic string) bool {
	if validate(pattern, true) != nil || validate(topic, false) != nil {
		return false
	}
	return match(pattern, topic)
}

// match is Match for a valid pattern and topic; it does not allocate. A
// topic is a pattern that matches only itself, so topic matches pattern
// exactly when pattern covers it.
func match(pattern, topic string) bool { return covers(pattern, topic) }

// covers reports whether every topic matched by pattern is matched by
// allow (both valid patterns).
func covers(allow, pattern string) bool {
	for {
		atok, arest, amore := strings.Cut(allow, ".")
		if atok == ">" {
			return pattern != ""
		}
		ptok, prest, pmore := strings.Cut(pattern, ".")
		if ptok == ">" || (atok != "*" && atok != ptok) {
			return false
		}
		if !amore || !pmore {
			return amore == pmore
		}
		allow, pattern = arest, prest
	}
}

func isWild(pattern string) bool {
	for rest, more := pattern, true; more; {
		var tok string
		tok, rest, more = strings.Cut(rest, ".")
		if tok == "*" || tok == ">" {
			return true
		}
	}
	return false
}
