// Package unavailable is dfs's one definition of "unavailable": a failure
// of the cluster rather than of the request. An entry that could not
// commit, content that neither this node nor any peer can serve right now,
// an upload that did not reach a majority of the nodes: the client did
// nothing wrong and may retry, so the web layer answers 503 with
// Retry-After.
//
// Err is the sentinel; webdav.ErrUnavailable is Err. A package that needs
// its own, more specific sentinel (contentrepl.ErrUnavailable,
// contentrepl.ErrNoQuorum) makes it with New: it keeps its own text and
// identity, and errors.Is also finds Err in anything that wraps it. So the
// packages below the web layer and the web layer agree without importing
// each other, and nothing has to translate one into the other.
package unavailable

import "errors"

// Err marks failures of the cluster rather than of the request.
var Err = errors.New("cluster unavailable")

// New returns a sentinel with the given text that errors.Is matches both
// by itself and as Err.
func New(text string) error { return &sentinel{text: text} }

type sentinel struct{ text string }

func (e *sentinel) Error() string { return e.text }

// Is makes every sentinel of New count as Err.
func (e *sentinel) Is(target error) bool { return target == Err }
