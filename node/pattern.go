package node

import (
	"fmt"
	"strings"

	"github.com/hearsay-io/hearsay/gossip"
)

// Pattern selects topics: dot-separated tokens where "*" matches exactly one
// token and a final ">" matches one or more remaining tokens. "orders.*"
// matches "orders.created" but not "orders.eu.created"; "orders.>" matches
// both; ">" matches every topic.
type Pattern struct {
	tokens []string
}

// ParsePattern parses a subscription pattern. The empty string means ">".
func ParsePattern(s string) (Pattern, error) {
	if s == "" {
		s = ">"
	}
	if len(s) > gossip.MaxTopicLen {
		return Pattern{}, fmt.Errorf("pattern %q: longer than %d bytes", s, gossip.MaxTopicLen)
	}
	tokens := strings.Split(s, ".")
	for i, tok := range tokens {
		switch {
		case tok == "*":
		case tok == ">":
			if i != len(tokens)-1 {
				return Pattern{}, fmt.Errorf("pattern %q: '>' must be the last token", s)
			}
		default:
			// A literal token must be a valid one-token topic.
			if err := gossip.ValidateTopic(tok); err != nil {
				return Pattern{}, fmt.Errorf("pattern %q: token %d: %w", s, i+1, err)
			}
		}
	}
	return Pattern{tokens: tokens}, nil
}

// MustParsePattern is ParsePattern for patterns known to be valid; it panics
// otherwise. Use it only with constants.
func MustParsePattern(s string) Pattern {
	p, err := ParsePattern(s)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the pattern as written.
func (p Pattern) String() string { return strings.Join(p.tokens, ".") }

// Match reports whether topic matches the pattern.
func (p Pattern) Match(topic string) bool {
	for i, tok := range p.tokens {
		if tok == ">" {
			return topic != ""
		}
		if topic == "" {
			return false
		}
		var head string
		if j := strings.IndexByte(topic, '.'); j >= 0 {
			head, topic = topic[:j], topic[j+1:]
		} else {
			head, topic = topic, ""
			if i != len(p.tokens)-1 {
				return false
			}
		}
		if tok != "*" && tok != head {
			return false
		}
	}
	return topic == ""
}
