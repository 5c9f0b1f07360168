package verify

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"time"

	"github.com/dfs-project/dfs/cluster"
)

// apiError is a failure with the HTTP status to answer it with.
type apiError struct {
	status int
	msg    string
	err    error
}

func (e *apiError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *apiError) Unwrap() error { return e.err }

// writeError answers err with its status and a JSON body {"error": ...},
// as the cluster API answers its failures; 503s carry Retry-After.
func (dg *Digester) writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		status = ae.status
	case errors.Is(err, context.DeadlineExceeded):
		status = http.StatusServiceUnavailable
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if status >= 500 {
		dg.log.Warn().Err(err).Int("status", status).Msg("cluster request failed")
	}
	cluster.WriteJSON(w, status, map[string]string{"error": err.Error()})
}

// DigestWait bounds how long GET /cluster/digest?min-index=N waits for the
// node to apply N.
const DigestWait = 10 * time.Second

// waitIndex waits, at most DigestWait, until this node has applied index.
func (dg *Digester) waitIndex(ctx context.Context, index uint64) error {
	if index == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, DigestWait)
	defer cancel()
	if err := dg.cfg.Raft.WaitApplied(ctx, index); err != nil {
		applied, _ := dg.cfg.Raft.AppliedIndex(context.WithoutCancel(ctx))
		return &apiError{status: http.StatusServiceUnavailable,
			msg: fmt.Sprintf("this node has applied %d, not %d, after waiting %s", applied, index, DigestWait), err: err}
	}
	return nil
}

// queryUint parses an optional unsigned query parameter.
func queryUint(r *http.Request, name string) (uint64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf("query parameter %s=%q: want a log index (a non-negative integer)", name, s)}
	}
	return n, nil
}

// queryBool parses an optional boolean query parameter (1, true, 0, false).
func queryBool(r *http.Request, name string) (bool, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf("query parameter %s=%q: want 1 or 0", name, s)}
	}
	return b, nil
}

// HandleDigest answers GET /cluster/digest[?deep=1][&min-index=N]. It
// needs the cluster secret: mount it behind clusterauth.Require (the
// node's route table, in package server, does).
func (dg *Digester) HandleDigest(w http.ResponseWriter, r *http.Request) {
	deep, err := queryBool(r, "deep")
	if err != nil {
		dg.writeError(w, err)
		return
	}
	minIndex, err := queryUint(r, "min-index")
	if err != nil {
		dg.writeError(w, err)
		return
	}
	if err := dg.waitIndex(r.Context(), minIndex); err != nil {
		dg.writeError(w, err)
		return
	}
	start := time.Now()
	d, err := dg.Digest(r.Context(), deep)
	if err != nil {
		if r.Context().Err() != nil {
			return // the caller went away
		}
		if errors.Is(err, errUnsettled) {
			err = &apiError{status: http.StatusServiceUnavailable, msg: "no stable state to digest (writes are going on); retry", err: err}
		}
		dg.writeError(w, err)
		return
	}
	ev := dg.log.Debug()
	if d.MissingCount+d.CorruptCount > 0 {
		ev = dg.log.Warn() // an operator should see what verify found
	} else if deep {
		ev = dg.log.Info()
	}
	ev.Uint64("applied_index", d.AppliedIndex).Bool("deep", deep).Int64("entries", d.Entries).
		Int64("content_objects", d.ContentObjects).Int64("missing", d.MissingCount).Int64("corrupt", d.CorruptCount).
		Strs("missing_hashes", d.Missing).Strs("corrupt_hashes", d.Corrupt).
		Dur("took", time.Since(start)).Msg("state digested for verification")
	cluster.WriteJSON(w, http.StatusOK, d)
}

// HandleDigestEntries answers GET /cluster/digest/entries[?index=N]: the
// entries the namespace digest hashes, one JSON line each, then a trailer
// line {"kind":"end","end":{...}}. With index, the node first waits (at
// most DigestWait) until it has applied N, and answers 409 if it is
// already past N: the caller wants the state at N, which is gone. It needs
// the cluster secret, like HandleDigest.
func (dg *Digester) HandleDigestEntries(w http.ResponseWriter, r *http.Request) {
	index, err := queryUint(r, "index")
	if err != nil {
		dg.writeError(w, err)
		return
	}
	if err := dg.waitIndex(r.Context(), index); err != nil {
		dg.writeError(w, err)
		return
	}
	ctx := r.Context()
	before, err := dg.cfg.Raft.AppliedIndex(ctx)
	if err != nil {
		dg.writeError(w, fmt.Errorf("cluster: digest entries: %w", err))
		return
	}
	if index != 0 && before != index {
		dg.writeError(w, &apiError{status: http.StatusConflict,
			msg: fmt.Sprintf("this node has applied %d, past the requested state at %d; ask for a new digest", before, index)})
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	h := sha256.New()
	end := StreamEnd{AppliedIndex: before}
	var line []byte
	werr := walkState(ctx, dg.cfg.Meta, func(e *DigestEntry) error {
		var err error
		line, err = appendEntry(line[:0], e)
		if err != nil {
			return err
		}
		h.Write(line)
		end.Entries++
		if _, err := bw.Write(line); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		return nil
	})
	end.NamespaceDigest = hashHex(h)
	if werr != nil {
		if ctx.Err() != nil {
			return
		}
		dg.log.Warn().Err(werr).Msg("digest entries stream failed")
		end.Error = werr.Error()
	} else if after, err := dg.cfg.Raft.AppliedIndex(ctx); err != nil {
		end.Error = err.Error()
	} else {
		end.Settled = after == before
	}
	line, _ = appendEntry(line[:0], &DigestEntry{Kind: entryEnd, End: &end})
	_, _ = bw.Write(line)
	_ = bw.Flush()
}

func hashHex(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }
