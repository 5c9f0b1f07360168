package testredis

import (
	"net/url"
	"strings"
	"testing"
)

func TestStart(t *testing.T) {
	u := Start(t)
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatalf("Start returned unparsable URL %q: %v", u, err)
	}
	if parsed.Scheme != "unix" || !strings.HasSuffix(parsed.Path, "redis.sock") {
		t.Fatalf("Start returned %q, want unix://…/redis.sock", u)
	}
	if err := ping(parsed.Path); err != nil {
		t.Fatalf("PING: %v", err)
	}
}

// Two servers in one test must not share anything.
func TestStartTwice(t *testing.T) {
	a, b := Start(t), Start(t)
	if a == b {
		t.Fatalf("both servers at %q", a)
	}
}

func TestLongTestNameGetsUsableSocket(t *testing.T) {
	t.Run(strings.Repeat("very_long_subtest_name_", 8), func(t *testing.T) {
		u, err := url.Parse(Start(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := ping(u.Path); err != nil {
			t.Fatalf("PING: %v", err)
		}
	})
}
