package verify

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/dfs-project/dfs/content"
)

// ContentChecker is what a digest needs of the node's content store.
type ContentChecker interface {
	// Size returns the size of the local object h, or an error wrapping
	// content.ErrNotFound when the node does not hold it (content.ErrCorrupt
	// when what it holds cannot be an object).
	Size(h string) (int64, error)
	// Verify re-hashes the whole object h (size bytes, as the metadata
	// says): nil when its bytes match its name, an error wrapping
	// content.ErrCorrupt or content.ErrNotFound otherwise.
	Verify(ctx context.Context, h string, size int64) error
	// Fetching reports whether the node is still getting the missing
	// object h from a peer (as opposed to no peer having it).
	Fetching(h string) bool
}

// contentStatus is what a node holds for one referenced hash.
type contentStatus uint8

const (
	contentOK contentStatus = iota
	contentMissing
	contentCorrupt
)

func (s contentStatus) String() string {
	return [...]string{"ok", "missing", "corrupt"}[s]
}

// checkContent says whether the node holds hash h with the given size and,
// with deep, whether its bytes still hash to h.
func checkContent(ctx context.Context, cc ContentChecker, h string, size int64, deep bool) (contentStatus, error) {
	got, err := cc.Size(h)
	switch {
	case errors.Is(err, content.ErrNotFound):
		return contentMissing, nil
	case errors.Is(err, content.ErrCorrupt):
		return contentCorrupt, nil
	case err != nil:
		return 0, fmt.Errorf("content %s: %w", h, err)
	case got != size:
		return contentCorrupt, nil
	case !deep:
		return contentOK, nil
	}
	err = cc.Verify(ctx, h, size)
	switch {
	case err == nil:
		return contentOK, nil
	case errors.Is(err, content.ErrCorrupt):
		return contentCorrupt, nil
	case errors.Is(err, content.ErrNotFound):
		return contentMissing, nil
	}
	return 0, fmt.Errorf("verify content %s: %w", h, err)
}

func hashKey(h string) ([32]byte, bool) {
	var k [32]byte
	if !content.ValidHash(h) {
		return k, false
	}
	_, err := hex.Decode(k[:], []byte(h))
	return k, err == nil
}
