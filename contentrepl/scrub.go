package contentrepl

import (
	"context"
	"errors"
	"fmt"

	"github.com/dfs-project/dfs/content"
	"github.com/dfs-project/dfs/metastore"
)

// Scrub
//
// A scrub pass proves, at a bounded rate, that this node still holds every
// byte its namespace references, and repairs what it does not:
//
//  1. Every local object is re-hashed (content.Store.Check): a corrupt one
//     is quarantined and, if still referenced, fetched again from a peer;
//     a right one whose block sums are missing or wrong gets them
//     rewritten.
//  2. The namespace is walked: every file whose content is not here
//     (lost, deleted by hand, or quarantined and not repaired above) is
//     fetched from a peer.
//
// Repairs use the same verified, resumable fetch as catch-up, subject to
// its bandwidth cap (FetchRate). Nothing here deletes anything but corrupt
// bytes, so a scrub cannot race garbage collection into losing content:
// an object deleted meanwhile is simply skipped (ErrNotFound), and one
// fetched for content deleted meanwhile is garbage the next sweep removes.

// ScrubStats counts what one scrub pass found and did.
type ScrubStats struct {
	Objects       int64 `json:"objects"`        // local objects checked
	Bytes         int64 `json:"bytes"`          // their bytes
	Corrupt       int64 `json:"corrupt"`        // found corrupt (and quarantined)
	Missing       int64 `json:"missing"`        // referenced, but not on this node
	SumsRewritten int64 `json:"sums_rewritten"` // right objects whose block sums were missing or wrong
	Repaired      int64 `json:"repaired"`       // corrupt or missing content fetched again from a peer
	Unrepaired    int64 `json:"unrepaired"`     // corrupt or missing content no peer could provide
}

// Add adds o to s.
func (s *ScrubStats) Add(o ScrubStats) {
	s.Objects += o.Objects
	s.Bytes += o.Bytes
	s.Corrupt += o.Corrupt
	s.Missing += o.Missing
	s.SumsRewritten += o.SumsRewritten
	s.Repaired += o.Repaired
	s.Unrepaired += o.Unrepaired
}

// Scrub runs one scrub pass (see "Scrub"). throttle is called before each
// chunk of object bytes is read (nil: unthrottled); progress, if not nil,
// gets the pass's counts so far after every object and every repair. It
// returns what it did along with the error that stopped it early (ctx's
// end, a metadata store failure); corrupt or missing content is counted,
// not an error.
func (c *Content) Scrub(ctx context.Context, throttle func(ctx context.Context, n int) error, progress func(ScrubStats)) (ScrubStats, error) {
	var st ScrubStats
	report := func() {
		if progress != nil {
			progress(st)
		}
	}
	// Hashes already counted as corrupt and left unrepaired, so that the
	// namespace walk does not count them again as missing. Bounded by the
	// damage found, not by the store.
	unrepaired := map[string]bool{}
	err := c.store.Walk(ctx, func(b content.Blob) error {
		defer report()
		res, err := c.store.Check(ctx, b.Hash, throttle)
		switch {
		case err == nil:
			st.Objects++
			st.Bytes += res.Size
			if res.SumsWritten {
				st.SumsRewritten++
			}
			return nil
		case errors.Is(err, content.ErrNotFound):
			return nil // deleted since the walk listed it
		case errors.Is(err, content.ErrCorrupt):
		default:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.log.Warn().Err(err).Str("hash", b.Hash).Msg("scrub: cannot check object; skipping it")
			return nil
		}
		st.Objects++
		st.Bytes += res.Size
		st.Corrupt++
		log := c.log.Error().Err(err).Str("hash", b.Hash).Int64("size", b.Size)
		if c.cfg.Meta != nil {
			n, rerr := c.cfg.Meta.RefCount(ctx, b.Hash)
			if rerr != nil {
				return fmt.Errorf("reference count of %s: %w", b.Hash, rerr)
			}
			if n == 0 {
				log.Msg("scrub: corrupt object quarantined; nothing references it, so it is not fetched again")
				return nil
			}
		}
		if ferr := c.fetch(ctx, b.Hash, -1, false); ferr != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			st.Unrepaired++
			unrepaired[b.Hash] = true
			log.AnErr("fetch", ferr).Msg("scrub: corrupt object quarantined; no peer could provide a good copy")
			return nil
		}
		st.Repaired++
		log.Msg("scrub: corrupt object quarantined and fetched again from a peer")
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("replication: scrub objects: %w", err)
	}
	if err := c.scrubNamespace(ctx, &st, unrepaired, report); err != nil {
		return st, fmt.Errorf("replication: scrub namespace: %w", err)
	}
	return st, nil
}

// scrubNamespace walks the namespace depth first and fetches the content
// of every file that is not here.
func (c *Content) scrubNamespace(ctx context.Context, st *ScrubStats, skip map[string]bool, report func()) error {
	if c.cfg.Meta == nil {
		return nil
	}
	type dir struct {
		id   metastore.ID
		path string
	}
	stack := []dir{{metastore.RootID, ""}}
	for len(stack) > 0 {
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		ents, err := c.cfg.Meta.List(ctx, d.id)
		if err != nil {
			return fmt.Errorf("list inode %d: %w", d.id, err)
		}
		for _, e := range ents {
			p := d.path + "/" + e.Name
			if e.Inode.IsDir() {
				stack = append(stack, dir{e.Inode.ID, p})
				continue
			}
			h := e.Inode.Hash
			if !content.ValidHash(h) || skip[h] || c.store.Has(h) {
				continue
			}
			st.Missing++
			report()
			log := c.log.Error().Str("hash", h).Str("path", p).Int64("size", e.Inode.Size)
			if err := c.fetch(ctx, h, e.Inode.Size, false); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				st.Unrepaired++
				skip[h] = true
				report()
				log.AnErr("fetch", err).Msg("scrub: content missing; no peer could provide it")
				continue
			}
			st.Repaired++
			report()
			log.Msg("scrub: content missing; fetched it from a peer")
		}
	}
	return nil
}
