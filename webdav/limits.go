package webdav

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/metastore"
	"github.com/dfs-project/dfs/quota"
)

// Space is the storage accounting the handler consults (*quota.Space):
// the quota to put into put and copy entries, the early admission of
// uploads, and the RFC 4331 quota properties.
type Space interface {
	// Quota returns the cluster-wide quota in bytes (0: none).
	Quota() int64
	// Admit admits an upload of size bytes (-1: unknown) replacing a
	// file of replaced bytes, or refuses it with a *quota.NoSpaceError.
	Admit(ctx context.Context, size, replaced int64) (*quota.Grant, error)
	// Available returns the usage and the bytes still writable; ok is
	// false when nothing limits them.
	Available(ctx context.Context) (used, avail int64, ok bool, err error)
}

// DefaultPropfindMaxEntries bounds a Depth: infinity PROPFIND when such
// requests are allowed and no bound is configured.
const DefaultPropfindMaxEntries = 100000

// Limits bounds what requests may use. The zero value imposes none.
type Limits struct {
	// MaxUploadBytes is the largest PUT body accepted (0: no limit). A
	// larger Content-Length (or X-Expected-Entity-Length) gets 413 before
	// the body is read; a chunked body is stopped at the limit with 413.
	MaxUploadBytes int64
	// MaxConcurrentUploads is how many PUT bodies this node receives at
	// once (0: no limit); one more gets 503 with Retry-After. A follower
	// forwards uploads to the leader, so they count where they are stored.
	MaxConcurrentUploads int
	// PropfindInfinity allows PROPFIND with Depth: infinity (or without a
	// Depth header, which means infinity). Refused (the default), such a
	// request gets 403 with the RFC 4918 propfind-finite-depth
	// precondition.
	PropfindInfinity bool
	// PropfindMaxEntries bounds an allowed Depth: infinity PROPFIND: a
	// tree with more resources gets the same 403 (default
	// DefaultPropfindMaxEntries).
	PropfindMaxEntries int
	// Space is the quota and free-space accounting (nil: none; the quota
	// properties are then not served).
	Space Space
}

// uploadSlot takes one of the concurrent upload slots, or says why not.
func (h *Handler) uploadSlot() (release func(), err error) {
	if h.uploads == nil {
		return func() {}, nil
	}
	select {
	case h.uploads <- struct{}{}:
		return func() { <-h.uploads }, nil
	default:
		return nil, fail(http.StatusServiceUnavailable,
			"this node is receiving %d uploads at once, its limit (--max-concurrent-uploads); retry shortly", cap(h.uploads))
	}
}

// expectedSize is the upload's size as the request announces it:
// Content-Length, or for a chunked body macOS Finder's
// X-Expected-Entity-Length; -1 when unknown. The hint only serves early
// refusals; the body is counted as it streams whatever it says.
func expectedSize(r *http.Request) int64 {
	if r.ContentLength >= 0 {
		return r.ContentLength
	}
	if v := r.Header.Get("X-Expected-Entity-Length"); v != "" {
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n >= 0 {
			return n
		}
	}
	return -1
}

// noSpaceStatus turns a refusal for lack of room into a 507 whose body is
// a DAV:error with RFC 4331's precondition (quota-not-exceeded or
// sufficient-disk-space) and a description of what ran out.
func noSpaceStatus(err error) (*statusError, bool) {
	var ns *quota.NoSpaceError
	if errors.As(err, &ns) {
		cond := "quota-not-exceeded"
		if ns.Disk {
			cond = "sufficient-disk-space"
		}
		return &statusError{status: http.StatusInsufficientStorage, cond: cond, msg: ns.Error(), err: err}, true
	}
	if errors.Is(err, quota.ErrNoSpace) {
		return &statusError{status: http.StatusInsufficientStorage, cond: "sufficient-disk-space", msg: err.Error(), err: err}, true
	}
	return nil, false
}

var (
	nameQuotaAvailable = xml.Name{Space: "DAV:", Local: "quota-available-bytes"}
	nameQuotaUsed      = xml.Name{Space: "DAV:", Local: "quota-used-bytes"}
)

// wantsQuota reports whether a PROPFIND body names one of the RFC 4331
// quota properties in a DAV:prop request. RFC 4331 §3 says they must not
// be part of allprop (computing them can be expensive), and a propname
// request lists what allprop would return, so they are served only to a
// client that asks for them by name (Windows and macOS do).
func wantsQuota(body []byte) bool {
	if !bytes.Contains(body, []byte("quota-")) {
		return false
	}
	var req struct {
		Prop *struct {
			Names []struct {
				XMLName xml.Name
			} `xml:",any"`
		} `xml:"DAV: prop"`
	}
	if err := xml.Unmarshal(body, &req); err != nil || req.Prop == nil {
		return false
	}
	for _, n := range req.Prop.Names {
		if n.XMLName == nameQuotaAvailable || n.XMLName == nameQuotaUsed {
			return true
		}
	}
	return false
}

// quotaValues computes the quota properties once per request.
func (f *requestFS) quotaValues(ctx context.Context) (used, avail int64, ok bool, err error) {
	if !f.quota.done {
		f.quota.used, f.quota.avail, f.quota.ok, f.quota.err = f.h.limits.Space.Available(ctx)
		f.quota.done = true
	}
	return f.quota.used, f.quota.avail, f.quota.ok, f.quota.err
}

// quotaState is a request's view of the quota properties.
type quotaState struct {
	want        bool // the PROPFIND named them
	done        bool
	used, avail int64
	ok          bool
	err         error
}

// errTooManyEntries stops the count of a Depth: infinity PROPFIND.
var errTooManyEntries = errors.New("too many entries")

// checkPropfindDepth enforces the Depth: infinity policy before x/net
// walks anything: refused, or allowed up to PropfindMaxEntries resources.
func (h *Handler) checkPropfindDepth(ctx context.Context, fs *requestFS, p string, depth int) error {
	if depth != fsm.DepthInfinity {
		return nil
	}
	if !h.limits.PropfindInfinity {
		return &statusError{status: http.StatusForbidden, cond: "propfind-finite-depth",
			msg: "PROPFIND with Depth: infinity is not allowed on this server (--propfind-infinity=refuse); use Depth: 0 or 1"}
	}
	ino, err := h.existing(ctx, fs, p)
	if err != nil || !ino.IsDir() {
		return err
	}
	limit := h.limits.PropfindMaxEntries
	if limit <= 0 {
		limit = DefaultPropfindMaxEntries
	}
	n := 1
	var walk func(dir metastore.ID) error
	walk = func(dir metastore.ID) error {
		ents, err := h.meta.List(ctx, dir)
		if err != nil {
			return fmt.Errorf("list %s: %w", p, err)
		}
		n += len(ents)
		if n > limit {
			return errTooManyEntries
		}
		for _, e := range ents {
			if e.Inode.IsDir() {
				if err := walk(e.Inode.ID); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(ino.ID); errors.Is(err, errTooManyEntries) {
		return &statusError{status: http.StatusForbidden, cond: "propfind-finite-depth",
			msg: fmt.Sprintf("%s holds more than %d resources, the limit of a Depth: infinity PROPFIND (--propfind-max-entries); use Depth: 1", p, limit)}
	} else if err != nil {
		return err
	}
	return nil
}
