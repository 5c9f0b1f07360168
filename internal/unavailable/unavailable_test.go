package unavailable_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/dfs-project/dfs/internal/unavailable"
)

// TestNew: a sentinel of New keeps its text and identity and counts as Err
// however deeply it is wrapped; two sentinels are not each other.
func TestNew(t *testing.T) {
	a := unavailable.New("a is unavailable")
	b := unavailable.New("b is unavailable")
	if a.Error() != "a is unavailable" {
		t.Errorf("text %q", a.Error())
	}
	wrapped := fmt.Errorf("outer: %w", fmt.Errorf("inner %s: %w", "x", a))
	if !errors.Is(wrapped, a) || !errors.Is(wrapped, unavailable.Err) {
		t.Errorf("%v: not a and Err", wrapped)
	}
	if errors.Is(wrapped, b) {
		t.Errorf("%v is b", wrapped)
	}
	if errors.Is(errors.New("cluster unavailable"), unavailable.Err) {
		t.Error("an equal text is Err")
	}
}
