package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dfs-project/dfs/internal/clusterauth"
)

// Mutating reports whether a WebDAV method changes the namespace, and so
// must be served by the leader.
func Mutating(method string) bool {
	switch method {
	case http.MethodPut, http.MethodDelete, "MKCOL", "COPY", "MOVE", "PROPPATCH", "LOCK", "UNLOCK":
		return true
	}
	return false
}

type targetKey struct{}

// serveAsLeader serves a write on the leader once it has applied every
// entry of earlier terms: the handler checks writes against local state
// (the parent exists, the ETag matches, no lock conflicts) before it
// proposes them, and a leader elected a moment ago may not have applied
// its predecessor's last writes yet.
func (c *Cluster) serveAsLeader(w http.ResponseWriter, r *http.Request, next http.Handler) {
	ctx, cancel := context.WithTimeout(r.Context(), c.cfg.LeaderWait)
	err := c.raft.LeaderReady(ctx)
	cancel()
	if err != nil {
		if r.Context().Err() == nil {
			c.log.Warn().Err(err).Str("method", r.Method).Str("path", r.URL.Path).
				Msg("write not served: this leader has not applied its predecessor's entries")
		}
		unavailable(w, "the leader was just elected and is still applying earlier writes")
		return
	}
	next.ServeHTTP(w, r)
}

// Forward wraps the WebDAV handler: on a follower, mutating requests (see
// Mutating) are proxied to the leader, bodies streaming both ways without
// buffering, every header and the status and body of the answer passed
// through as they are. Everything else, and everything on the leader, goes
// to next.
//
// Nothing in the request is rewritten for the leader, and nothing needs to
// be: the leader reads only the path of a Destination header and of the
// resource tags in an If header and ignores their host (behind an ingress
// they carry the ingress's host anyway), and the forwarded request keeps
// the client's Host header. X-Forwarded-For, -Host and -Proto are set (or
// extended, when an ingress already set them).
//
// A request forwarded to a node that no longer leads gets 503 there, not
// forwarded again. With no leader known within LeaderWait, or a leader that
// does not answer, the client gets 503 with Retry-After: 1; so does a
// request whose leader is replaced before it answered (see watchLeader).
//
// needsLeader, if set, names further requests only the leader can serve:
// those that would have to write before they can answer, such as the
// first request of a user whose folder does not exist yet.
func (c *Cluster) Forward(next http.Handler, needsLeader func(*http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !Mutating(r.Method) && (needsLeader == nil || c.raft.IsLeader() || !needsLeader(r)) {
			next.ServeHTTP(w, r)
			return
		}
		if c.raft.IsLeader() {
			c.serveAsLeader(w, r, next)
			return
		}
		if c.isForwarded(r) {
			c.log.Warn().Str("from", r.Header.Get(ForwardedByHeader)).Str("method", r.Method).
				Msg("a forwarded write reached this node, which does not lead; not forwarding it again")
			unavailable(w, "this node was forwarded the request as leader but does not lead")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), c.cfg.LeaderWait)
		id, leader, err := c.LeaderURL(ctx)
		cancel()
		if err != nil {
			if r.Context().Err() == nil {
				c.log.Warn().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Msg("write not forwarded")
			}
			unavailable(w, "no leader is known right now")
			return
		}
		if id == c.cfg.ID {
			// Elected while waiting: serve it here.
			c.serveAsLeader(w, r, next)
			return
		}
		target, err := url.Parse(leader)
		if err != nil {
			c.log.Error().Err(err).Str("leader", id).Str("url", leader).Msg("the leader's URL in the member table is invalid")
			unavailable(w, "the leader's URL is invalid")
			return
		}
		// Full duplex: the answer may have to go out while the body is still
		// arriving (the leader answered early, or watchLeader gave up on
		// it). Otherwise net/http writes the answer only after taking the
		// body's lock, which the proxy's read of the body holds while it
		// waits for the client. Not available on HTTP/2, which needs none.
		_ = http.NewResponseController(w).EnableFullDuplex()
		fwd := &forwarded{target: target}
		fctx, fcancel := context.WithCancelCause(context.WithValue(r.Context(), targetKey{}, fwd))
		defer fcancel(nil)
		go c.watchLeader(fctx, id, fwd, fcancel)
		out := r.WithContext(fctx)
		var body *interruptibleBody
		if r.ContentLength != 0 {
			body = interruptible(fctx, r.Body)
			out.Body = body
		}
		c.proxy.ServeHTTP(w, out)
		if body != nil {
			body.finish(w, r)
		}
	})
}

// forwarded is a request on its way to the leader.
type forwarded struct {
	target   *url.URL
	answered atomic.Bool // the leader's response headers arrived
}

// errLeaderChanged is the cause a forwarded request is cancelled with when
// the node it was forwarded to stops being the leader before answering.
var errLeaderChanged = errors.New("the leader changed while the request was forwarded")

// leaderPoll is how often a forwarded request checks that its target still
// leads.
const leaderPoll = 100 * time.Millisecond

// watchLeader cancels a forwarded request whose target (leader) is
// replaced by another leader before it has answered. Without it, a request
// forwarded to a leader that is cut off from the network (a partition, a
// frozen or vanished host: nothing resets the connection) waits for
// ProxyHeaderTimeout, minutes, although the rest of the cluster elected a
// new leader within seconds and takes writes again. The request gets 503:
// the old leader may have appended the entry, which the new one may still
// commit, so its outcome is unknown, exactly what 503 tells the client.
func (c *Cluster) watchLeader(ctx context.Context, target string, fwd *forwarded, cancel context.CancelCauseFunc) {
	t := time.NewTicker(leaderPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if fwd.answered.Load() {
			return // cancelling now would cut the answer short
		}
		if id, _ := c.raft.Leader(); id != "" && id != target {
			cancel(fmt.Errorf("%w (from %s to %s)", errLeaderChanged, target, id))
			return
		}
	}
}

// interruptible passes body through a pipe whose reading end closes when
// ctx ends. The proxy's transport cannot return from a cancelled round
// trip while its body writer is blocked reading the client's body (it
// waits for the writer), and a client that stalls mid-upload would keep
// the request, and the client, waiting for minutes. Closing the pipe ends
// that read at once; the copy from the client's body ends at its next
// read. A pipe holds no data: the upload still streams. The copy starts
// with the first read, so an Expect: 100-continue still waits for the
// leader's go-ahead.
func interruptible(ctx context.Context, body io.ReadCloser) *interruptibleBody {
	pr, pw := io.Pipe()
	context.AfterFunc(ctx, func() { pr.CloseWithError(context.Cause(ctx)) })
	return &interruptibleBody{src: body, pr: pr, pw: pw, copied: make(chan struct{})}
}

type interruptibleBody struct {
	src io.ReadCloser
	pr  *io.PipeReader
	pw  *io.PipeWriter

	mu       sync.Mutex
	started  bool          // the copy from src runs
	finished bool          // the proxy is done: no copy starts any more
	copied   chan struct{} // closed when the copy from src has returned
}

func (b *interruptibleBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if !b.started && !b.finished {
		b.started = true
		go func() {
			defer close(b.copied)
			_, err := io.Copy(b.pw, b.src)
			b.pw.CloseWithError(err)
		}()
	}
	b.mu.Unlock()
	return b.pr.Read(p)
}

func (b *interruptibleBody) Close() error { return b.pr.Close() }

// finish is called once the proxy is done with the request, whose answer
// has been written to w. It returns only when nothing reads the client's
// body any more: net/http finishes a body the handler left unread after
// the handler returns, and in full duplex a read of it still running then
// (or the server's own read to its end) races with the server's read of
// the connection's next request: "invalid concurrent Body.Read call", a
// panic that drops the client's kept-alive connection (golang/go#68560).
//
// A copy that runs (the leader answered before it had the whole body: a
// 507, 412 or 413 refusal) is stopped: the pipe is closed, so its next
// write fails, and finish waits for its read of the client's body in
// progress to return; that read has the I/O timeout's deadline, so a
// stalled client cannot hold the handler past it. A body nobody started
// reading (the leader could not be reached) is closed without a copy.
// Either way the answer is flushed first, so a client slow to send its body
// has it at once; Close then discards a small rest, and the connection
// stays usable. A body whose client waits for 100 Continue and never got it
// is left alone: the client never sends it, net/http closes that
// connection itself, and Close would wait for bytes that never come.
func (b *interruptibleBody) finish(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.finished = true
	started := b.started
	b.mu.Unlock()
	b.pw.CloseWithError(io.ErrUnexpectedEOF)
	if r.Context().Err() == nil {
		// Nothing is written for a client that went away; a flush
		// would make that a 200.
		_ = http.NewResponseController(w).Flush()
	}
	if started {
		b.pr.CloseWithError(errProxyDone)
		<-b.copied
	} else if strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		return
	}
	_ = b.src.Close()
}

// errProxyDone ends the copy of a body the leader no longer reads.
var errProxyDone = errors.New("the forwarded request is answered")

func (c *Cluster) newProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(pr.In.Context().Value(targetKey{}).(*forwarded).target)
			// The client's Host, as the leader would have seen it.
			pr.Out.Host = pr.In.Host
			// Rewrite gets the request with X-Forwarded-* removed: keep
			// what an ingress set, and add this hop.
			if v := pr.In.Header.Values("X-Forwarded-For"); len(v) > 0 {
				pr.Out.Header["X-Forwarded-For"] = v
			}
			pr.SetXForwarded()
			for _, h := range []string{"X-Forwarded-Host", "X-Forwarded-Proto"} {
				if v := pr.In.Header.Get(h); v != "" {
					pr.Out.Header.Set(h, v)
				}
			}
			pr.Out.Header.Del(clusterauth.Header)
			if c.cfg.Secret != "" {
				clusterauth.Set(pr.Out, c.cfg.Secret)
			}
			pr.Out.Header.Set(ForwardedByHeader, c.cfg.ID)
		},
		Transport: c.tr,
		// Flush every write at once: a streamed download (or a slow
		// multistatus) reaches the client as the leader sends it.
		FlushInterval: -1,
		ErrorLog:      log.New(logWriter{c}, "", 0),
		ModifyResponse: func(resp *http.Response) error {
			if fwd, ok := resp.Request.Context().Value(targetKey{}).(*forwarded); ok {
				fwd.answered.Store(true)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if cause := context.Cause(r.Context()); errors.Is(cause, errLeaderChanged) {
				c.log.Warn().Err(cause).Str("method", r.Method).Str("path", r.URL.Path).Msg("forwarded write abandoned: its outcome is unknown to the client")
				unavailable(w, "the leader changed while the request was forwarded; it may or may not have been applied")
				return
			}
			if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
				return // the client went away
			}
			c.log.Warn().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Msg("forwarding to the leader failed")
			unavailable(w, "the leader could not be reached")
		},
	}
}

// unavailable answers 503 with Retry-After. The answer states its length:
// it may be flushed while the client still sends its body (see finish),
// and a client that waits for the answer's end before it goes on must
// not have to wait for the handler to return.
func unavailable(w http.ResponseWriter, why string) {
	msg := "dfs: " + why + "; retry\n"
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Retry-After", "1")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(msg)))
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = io.WriteString(w, msg)
}

// logWriter routes the proxy's own messages into the node's log.
type logWriter struct{ c *Cluster }

func (l logWriter) Write(p []byte) (int, error) {
	l.c.log.Warn().Str("component", "proxy").Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
