package contentrepl

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/dfs-project/dfs/content"
	"github.com/dfs-project/dfs/internal/clusterauth"
	"github.com/dfs-project/dfs/quota"
)

// Handler serves the content routes every node exposes to its peers, all
// behind the cluster secret (401 without it, 403 with a wrong one, and
// nothing is read or stored):
//
//	POST /cluster/content         receive a pushed upload (chunked body);
//	                              answers {"hash": ..., "size": ...} once
//	                              the content is fsynced
//	GET  /cluster/content/{hash}  serve an object, with Range support so
//	HEAD /cluster/content/{hash}  an interrupted fetch resumes; 404 when
//	                              this node lacks it (or found it corrupt)
//
// Mount it for the path /cluster/content and everything below it.
func (c *Content) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pushPath, c.handlePush)
	mux.HandleFunc("GET "+fetchPath+"{hash}", c.handleFetch)
	return clusterauth.Require(c.cfg.Secret, mux)
}

// handlePush stores a pushed upload. The content stays pinned for PinTTL:
// the leader proposes the entry referencing it only after enough replies,
// and until that entry applies here nothing else protects it from garbage
// collection. If the entry never comes (the write failed), the pin simply
// expires and the content is collected like any unreferenced object.
func (c *Content) handlePush(w http.ResponseWriter, r *http.Request) {
	// net/http resets the connection's deadlines for the next request.
	var body io.Reader = &idleReader{r: r.Body, rc: http.NewResponseController(w), idle: c.cfg.IdleTimeout}
	if c.cfg.Space != nil {
		// Refused before the body is read when the volume is at its
		// low-water mark already, stopped while streaming when it gets
		// there; the partial temp file is discarded either way.
		g, err := c.cfg.Space.AdmitReplica()
		if err != nil {
			c.log.Warn().Err(err).Msg("content push refused")
			http.Error(w, err.Error(), http.StatusInsufficientStorage)
			return
		}
		body = g.Reader(r.Context(), body)
	}
	b, err := c.store.Put(r.Context(), body)
	if err != nil {
		status := http.StatusBadRequest // the body broke off: the leader aborted
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, quota.ErrNoSpace) {
			status = http.StatusInsufficientStorage
		} else if r.Context().Err() == nil && !isBodyReadError(err) {
			status = http.StatusInternalServerError
		}
		c.log.Debug().Err(err).Int("status", status).Msg("content push not stored")
		http.Error(w, err.Error(), status)
		return
	}
	time.AfterFunc(c.cfg.PinTTL, func() { _ = c.store.Unpin(b.Hash) })
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(pushReply{Hash: b.Hash, Size: b.Size})
}

// isBodyReadError tells a broken request body (the leader aborted or went
// away) from a local storage failure, which involves a file.
func isBodyReadError(err error) bool {
	var pe *os.PathError
	return !errors.As(err, &pe)
}

// handleFetch serves an object to a peer. Every block is checked before
// it is sent (content.File): a corrupt object ends the response short,
// which the fetching peer sees as a broken transfer, and is quarantined,
// so the retry gets 404 and goes elsewhere. The fetching peer verifies the
// whole object's SHA-256 before it keeps it in any case.
func (c *Content) handleFetch(w http.ResponseWriter, r *http.Request) {
	h := r.PathValue("hash")
	if !content.ValidHash(h) {
		http.Error(w, "invalid content hash", http.StatusBadRequest)
		return
	}
	f, err := c.store.Open(h)
	switch {
	case errors.Is(err, content.ErrNotFound), errors.Is(err, content.ErrCorrupt):
		http.Error(w, "content not on this node", http.StatusNotFound)
		return
	case err != nil:
		c.log.Error().Err(err).Str("hash", h).Msg("cannot open content for a peer")
		http.Error(w, "cannot open content", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream") // no sniffing
	w.Header().Set("ETag", `"`+h+`"`)
	w.Header().Set("X-Dfs-Content-Size", strconv.FormatInt(f.Size(), 10))
	// net/http clears the write deadline once the response is flushed.
	http.ServeContent(idleWriter{ResponseWriter: w, rc: http.NewResponseController(w), idle: c.cfg.IdleTimeout}, r, "", time.Time{}, f)
}

// idleReader reads a request body with a deadline that each read extends:
// a leader that vanishes without closing the connection (a partition)
// frees the handler after IdleTimeout rather than after TCP gives up.
type idleReader struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
}

func (b *idleReader) Read(p []byte) (int, error) {
	_ = b.rc.SetReadDeadline(time.Now().Add(b.idle)) // unsupported: no deadline
	n, err := b.r.Read(p)
	if err == io.EOF {
		// Past the body net/http watches the connection for the client
		// going away; a deadline expiring during the commit's fsync must
		// not look like that.
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// idleWriter is idleReader's counterpart for a response to a peer that
// stopped reading.
type idleWriter struct {
	http.ResponseWriter
	rc   *http.ResponseController
	idle time.Duration
}

func (w idleWriter) Write(p []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.idle))
	return w.ResponseWriter.Write(p)
}

func (w idleWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
