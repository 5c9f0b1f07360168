package webdav

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/internal/unavailable"
)

// statusError is a failed request: the status, an optional RFC 4918
// precondition element for the error body, and a message for people.
type statusError struct {
	status int
	cond   string // e.g. "lock-token-submitted"; "" for a plain-text body
	href   string // href inside the condition element, if any
	path   string // a resource msg names, and the condition element's href (writeError maps it to the client's namespace)
	msg    string
	err    error // cause, for the log
}

func (e *statusError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("%d %s: %v", e.status, e.msg, e.err)
	}
	return fmt.Sprintf("%d %s", e.status, e.msg)
}

func (e *statusError) Unwrap() error { return e.err }

func fail(status int, format string, args ...any) *statusError {
	return &statusError{status: status, msg: fmt.Sprintf(format, args...)}
}

func (h *Handler) writeError(w *statusWriter, r *http.Request, err error) {
	if de := (*deniedError)(nil); errors.As(err, &de) && w.status == 0 {
		writeDenied(w, r, de)
		return
	}
	var se *statusError
	if !errors.As(err, &se) {
		se = h.classify(err)
	}
	se = h.confirmAbsence(r, err, se)
	if se.path != "" {
		if h.hidden(r.Context(), se.path) {
			// The answer would name a resource the user may not see.
			se = &statusError{status: se.status, cond: se.cond, err: se.err,
				msg: "the request conflicts with a resource you cannot access (" + http.StatusText(se.status) + ")"}
		} else if se.cond != "" {
			se.href = hrefOf(r.Context(), se.path)
		}
	}
	if root := rootOf(r.Context()); root != "" {
		// Messages name resources as the drive knows them; the client
		// knows them inside its folder.
		se.msg = strings.ReplaceAll(strings.ReplaceAll(se.msg, root+"/", "/"), root, "/")
	}
	if w.status != 0 {
		// Headers are out (a streaming response failed midway); all that is
		// left is to make sure the client cannot take a short body as whole.
		panic(http.ErrAbortHandler)
	}
	if se.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if se.cond != "" {
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
		w.WriteHeader(se.status)
		var inner string
		if se.href != "" {
			inner = "<D:href>" + xmlEscape(se.href) + "</D:href>"
		}
		fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?>`+"\n"+
			`<D:error xmlns:D="DAV:"><D:%s>%s</D:%s><D:responsedescription>%s</D:responsedescription></D:error>`+"\n",
			se.cond, inner, se.cond, xmlEscape(se.msg))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(se.status)
	if r.Method != http.MethodHead {
		fmt.Fprintln(w, se.msg)
	}
}

// classify maps an error that is not already a statusError.
// confirmAbsence turns an answer that says something is missing (404,
// 409, 412), read from the local store, into a 503 when the store turns
// out to have lost its data: the read may have come after the loss. A
// state machine's outcome (*fsm.Error) needs no confirmation: the entry
// was applied to a store at the right index.
func (h *Handler) confirmAbsence(r *http.Request, err error, se *statusError) *statusError {
	var fe *fsm.Error
	if errors.As(err, &fe) {
		return se
	}
	switch se.status {
	case http.StatusNotFound, http.StatusConflict, http.StatusPreconditionFailed:
	default:
		return se
	}
	if cerr := confirmRead(r.Context()); cerr != nil {
		return h.classify(fmt.Errorf("cannot confirm the answer %d (%s): %w", se.status, se.msg, cerr))
	}
	return se
}

func (h *Handler) classify(err error) *statusError {
	var fe *fsm.Error
	switch {
	case errors.As(err, &fe):
		return fsmStatus(fe)
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this.
		return &statusError{status: 499, msg: "request cancelled", err: err}
	case errors.Is(err, syscall.ENOSPC):
		return &statusError{status: http.StatusInsufficientStorage, cond: "sufficient-disk-space", msg: "no space left on the node's data volume", err: err}
	case errors.Is(err, ErrUnavailable):
		return &statusError{status: http.StatusServiceUnavailable, msg: "the cluster cannot commit writes right now; retry", err: err}
	case storeDown(err):
		return &statusError{status: http.StatusServiceUnavailable, msg: "this node's metadata store or data volume is not answering; retry", err: err}
	}
	return &statusError{status: http.StatusInternalServerError, msg: "internal error", err: err}
}

// ErrUnavailable marks failures of the cluster rather than of the request:
// an entry that could not commit, content that no node can serve right now,
// an upload that did not reach a majority. Handlers answer 503 with
// Retry-After. Blobs implementations wrap their errors with it, or with a
// sentinel of unavailable.New: it is unavailable.Err, the one definition.
var ErrUnavailable = unavailable.Err

func fsmStatus(fe *fsm.Error) *statusError {
	se := &statusError{msg: fe.Error(), err: fe}
	switch fe.Code {
	case fsm.NotFound:
		se.status = http.StatusNotFound
	case fsm.Conflict:
		se.status = http.StatusConflict
	case fsm.Exists, fsm.PreconditionFailed:
		se.status = http.StatusPreconditionFailed
	case fsm.Locked:
		se.status, se.cond = http.StatusLocked, "lock-token-submitted"
		se.path = fe.Path // the href, in the client's namespace, is written by writeError
	case fsm.Forbidden:
		se.status = http.StatusForbidden
	case fsm.NotAllowed:
		se.status = http.StatusMethodNotAllowed
	case fsm.Invalid:
		se.status = http.StatusBadRequest
	case fsm.InsufficientStorage:
		se.status, se.cond = http.StatusInsufficientStorage, "quota-not-exceeded"
	default:
		se.status = http.StatusInternalServerError
	}
	return se
}

func xmlEscape(s string) string {
	var b strings.Builder
	// Writing to a strings.Builder cannot fail.
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// storeDown reports whether err is a node's own store failing rather than
// a fault of the request: its Redis unreachable or too slow (the read and
// write timeouts of --redis-url bound how long a request waits), a
// deadline, or the data volume's device failing. The client can retry,
// here or on another node, so it gets 503 with Retry-After, not 500.
func storeDown(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, syscall.EIO) || errors.Is(err, fsm.ErrRebuilding) || errors.Is(err, fsm.ErrStoreLost)
}
