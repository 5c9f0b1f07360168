package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/dfs-project/dfs/cluster"
)

// Client asks nodes for their digests and entry streams (it needs the
// cluster secret).
type Client struct{ c *cluster.Client }

// NewClient returns a Client that calls nodes with c.
func NewClient(c *cluster.Client) *Client { return &Client{c: c} }

// Digest asks the node at base for its digest, once it has applied
// minIndex (0: at once); deep re-hashes all content.
func (c *Client) Digest(ctx context.Context, base string, deep bool, minIndex uint64) (Digest, error) {
	q := url.Values{}
	if deep {
		q.Set("deep", "1")
	}
	if minIndex > 0 {
		q.Set("min-index", strconv.FormatUint(minIndex, 10))
	}
	path := "/cluster/digest"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out Digest
	err := c.c.Call(ctx, http.MethodGet, base, path, nil, &out)
	return out, err
}

// EntryStream reads GET /cluster/digest/entries line by line.
type EntryStream struct {
	body io.ReadCloser
	dec  *json.Decoder
	what string
	done bool
}

// DigestEntries opens the entry stream of the node at base for its state
// at index (0: its current state). A node already past index answers 409.
func (c *Client) DigestEntries(ctx context.Context, base string, index uint64) (*EntryStream, error) {
	path := "/cluster/digest/entries"
	if index > 0 {
		path += "?index=" + strconv.FormatUint(index, 10)
	}
	body, err := c.c.Stream(ctx, base, path)
	if err != nil {
		return nil, err
	}
	return &EntryStream{body: body, dec: json.NewDecoder(body), what: strings.TrimRight(base, "/") + path}, nil
}

// Next returns the next entry, io.EOF after the last one of a complete,
// settled stream, or an error: wrapping errMoved when the node applied an
// entry while streaming, otherwise a broken or failed stream.
func (s *EntryStream) Next() (DigestEntry, error) {
	if s.done {
		return DigestEntry{}, io.EOF
	}
	var e DigestEntry
	if err := s.dec.Decode(&e); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return DigestEntry{}, fmt.Errorf("cluster: %s: stream ended without its trailer: %w", s.what, err)
	}
	if e.Kind != entryEnd {
		return e, nil
	}
	s.done = true
	switch {
	case e.End == nil:
		return DigestEntry{}, fmt.Errorf("cluster: %s: trailer without content", s.what)
	case e.End.Error != "":
		return DigestEntry{}, fmt.Errorf("cluster: %s: the node failed: %s", s.what, e.End.Error)
	case !e.End.Settled:
		return DigestEntry{}, fmt.Errorf("%w: %s moved past %d while streaming", errMoved, s.what, e.End.AppliedIndex)
	}
	return DigestEntry{}, io.EOF
}

// Close ends the stream.
func (s *EntryStream) Close() error { return s.body.Close() }

// statusCode returns the HTTP status of a call's error, 0 if it has none
// (the node was not reached).
func statusCode(err error) int {
	var e *cluster.Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}
