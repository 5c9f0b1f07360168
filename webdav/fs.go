package webdav

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	xwebdav "golang.org/x/net/webdav"

	"github.com/dfs-project/dfs/fsm"
	"github.com/dfs-project/dfs/fspath"
	"github.com/dfs-project/dfs/metastore"
)

// requestFS is dfs's golang.org/x/net/webdav FileSystem. One is made per
// request: it reads the node's metadata store and remembers what it has
// read, so the x/net PROPFIND walker, which stats and opens every member
// it lists, costs one directory listing plus one property read per member
// instead of a path resolution per member. Mutations go through the Raft
// log like every other dfs write.
type requestFS struct {
	h      *Handler
	tokens []string // lock tokens the request submitted
	cache  map[string]metastore.Inode
	// seen holds, for a path resolved by a store that walks paths itself,
	// the applied index it read the path at (confirmResolved).
	seen   map[string]uint64
	locks  []metastore.Lock
	locked bool // locks loaded
	// propsName and props memoize the last DeadProps answer: x/net's
	// allprop PROPFIND opens every member twice in a row (propnames, then
	// props) and asks each handle for its dead properties, which cost a
	// metadata store read each time (a Redis round trip), doubling the
	// reads of a listing (BenchmarkPropfind10000 in e2e). One slot covers
	// that and keeps a Depth: infinity PROPFIND from holding every
	// member's properties.
	propsName string
	props     map[xml.Name]xwebdav.Property
	// listed holds the dead properties Readdir read for a collection's
	// members in one batch (one round trip on Redis instead of one per
	// member); DeadProps takes each member's out as x/net asks for it, so
	// the map never holds more than the listings still being walked.
	listed map[metastore.ID]map[metastore.PropName]string
	// preopened is content a GET opened before handing over to x/net;
	// OpenFile gives it to the file it opens at that path.
	preopened *preopened
	// patchErr is the error file.Patch met, for handleProppatch to answer.
	patchErr error
	// quota says whether a PROPFIND asked for the RFC 4331 properties,
	// and holds their values once computed.
	quota quotaState
}

type preopened struct {
	path, hash string
	blob       ContentReader
}

// closePreopened closes preopened content that no file took over.
func (f *requestFS) closePreopened() {
	if f.preopened != nil {
		_ = f.preopened.blob.Close()
		f.preopened = nil
	}
}

var (
	_ xwebdav.FileSystem      = (*requestFS)(nil)
	_ xwebdav.File            = (*file)(nil)
	_ xwebdav.DeadPropsHolder = (*file)(nil)
	_ xwebdav.ETager          = fileInfo{}
	_ xwebdav.ContentTyper    = fileInfo{}
)

func (h *Handler) newFS(tokens []string) *requestFS {
	return &requestFS{h: h, tokens: tokens, cache: make(map[string]metastore.Inode)}
}

func notExist(op, name string) error {
	return &os.PathError{Op: op, Path: name, Err: os.ErrNotExist}
}

// resolve returns the inode at a clean path, from the request cache when
// it has been seen already.
func (f *requestFS) resolve(ctx context.Context, name string) (metastore.Inode, error) {
	if ino, ok := f.cache[name]; ok {
		return ino, nil
	}
	ino, applied, seen, err := fsm.ResolveSeen(ctx, f.h.meta, name)
	if seen {
		if f.seen == nil {
			f.seen = make(map[string]uint64)
		}
		f.seen[name] = applied
	}
	if err != nil {
		if errors.Is(err, metastore.ErrNotFound) {
			return metastore.Inode{}, notExist("stat", name)
		}
		return metastore.Inode{}, fmt.Errorf("resolve %s: %w", name, err)
	}
	f.cache[name] = ino
	return ino, nil
}

func (f *requestFS) allLocks(ctx context.Context) ([]metastore.Lock, error) {
	if f.locked {
		return f.locks, nil
	}
	ls, err := f.h.meta.Locks(ctx)
	if err != nil {
		return nil, fmt.Errorf("read locks: %w", err)
	}
	f.locks, f.locked = ls, true
	return ls, nil
}

func cleanName(name string) (string, error) {
	p, err := fspath.Clean(name)
	if err != nil {
		return "", &os.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	return p, nil
}

func (f *requestFS) Stat(ctx context.Context, name string) (os.FileInfo, error) {
	p, err := cleanName(name)
	if err != nil {
		return nil, err
	}
	p = inRoot(rootOf(ctx), p)
	if f.h.hidden(ctx, p) {
		return nil, notExist("stat", p)
	}
	ino, err := f.resolve(ctx, p)
	if err != nil {
		return nil, err
	}
	return fileInfo{name: p, ino: ino}, nil
}

func (f *requestFS) OpenFile(ctx context.Context, name string, flag int, _ os.FileMode) (xwebdav.File, error) {
	p, err := cleanName(name)
	if err != nil {
		return nil, err
	}
	if flag&(os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND) != 0 {
		// Content is written only by dfs's own PUT, which streams into the
		// content store and commits through the log; x/net never gets here
		// because dfs serves PUT, COPY and LOCK itself.
		return nil, &os.PathError{Op: "open", Path: p, Err: fs.ErrPermission}
	}
	p = inRoot(rootOf(ctx), p)
	if f.h.hidden(ctx, p) {
		return nil, notExist("open", p)
	}
	ino, err := f.resolve(ctx, p)
	if err != nil {
		return nil, err
	}
	fl := &file{fs: f, ctx: ctx, name: p, ino: ino}
	if pre := f.preopened; pre != nil && pre.path == p && pre.hash == ino.Hash {
		fl.blob, f.preopened = pre.blob, nil
	}
	return fl, nil
}

func (f *requestFS) propose(ctx context.Context, cmd *fsm.Command) error {
	cmd.Tokens = f.tokens
	// Handler.propose marks an entry that did not commit as ErrUnavailable
	// (503, retry) rather than an internal error.
	_, err := f.h.propose(ctx, cmd)
	return err
}

func (f *requestFS) Mkdir(ctx context.Context, name string, _ os.FileMode) error {
	p, err := cleanName(name)
	if err != nil {
		return err
	}
	p = inRoot(rootOf(ctx), p)
	return fsError("mkdir", p, f.propose(ctx, &fsm.Command{Op: fsm.OpMkcol, Path: p}))
}

func (f *requestFS) RemoveAll(ctx context.Context, name string) error {
	p, err := cleanName(name)
	if err != nil {
		return err
	}
	p = inRoot(rootOf(ctx), p)
	return fsError("remove", p, f.propose(ctx, &fsm.Command{Op: fsm.OpDelete, Path: p}))
}

func (f *requestFS) Rename(ctx context.Context, oldName, newName string) error {
	src, err := cleanName(oldName)
	if err != nil {
		return err
	}
	dst, err := cleanName(newName)
	if err != nil {
		return err
	}
	root := rootOf(ctx)
	src, dst = inRoot(root, src), inRoot(root, dst)
	return fsError("rename", src, f.propose(ctx, &fsm.Command{Op: fsm.OpMove, Path: src, Dest: dst}))
}

// fsError turns a state machine outcome into the os errors x/net/webdav
// understands.
func fsError(op, name string, err error) error {
	var fe *fsm.Error
	if !errors.As(err, &fe) {
		return err
	}
	switch fe.Code {
	case fsm.NotFound, fsm.Conflict:
		return &os.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	case fsm.Exists, fsm.NotAllowed, fsm.PreconditionFailed:
		return &os.PathError{Op: op, Path: name, Err: fs.ErrExist}
	case fsm.Locked:
		return xwebdav.ErrLocked
	case fsm.Forbidden:
		return xwebdav.ErrForbidden
	}
	return err
}

// fileInfo is an inode seen at a path.
type fileInfo struct {
	name string
	ino  metastore.Inode
}

func (i fileInfo) Name() string {
	if i.name == "/" {
		return "/"
	}
	return path.Base(i.name)
}
func (i fileInfo) Size() int64 { return i.ino.Size }
func (i fileInfo) Mode() os.FileMode {
	if i.ino.IsDir() {
		return os.ModeDir | 0o755
	}
	return 0o644
}
func (i fileInfo) ModTime() time.Time { return time.Unix(0, i.ino.Modified).UTC() }
func (i fileInfo) IsDir() bool        { return i.ino.IsDir() }
func (i fileInfo) Sys() any           { return i.ino }

// ETag is the strong entity tag: the content hash, so equal bytes give
// equal tags on every node.
func (i fileInfo) ETag(context.Context) (string, error) {
	if i.ino.IsDir() {
		return "", xwebdav.ErrNotImplemented
	}
	return fsm.ETag(i.ino), nil
}

func (i fileInfo) ContentType(context.Context) (string, error) {
	return contentType(i.name, i.ino), nil
}

// contentType is the type stored at PUT, or else the one the name implies.
func contentType(name string, ino metastore.Inode) string {
	if ino.IsDir() {
		return "httpd/unix-directory"
	}
	if ino.ContentType != "" {
		return ino.ContentType
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// file is an open resource. Content is opened lazily: PROPFIND opens every
// member only to read its properties.
type file struct {
	fs   *requestFS
	ctx  context.Context
	name string
	ino  metastore.Inode

	blob    ContentReader
	pos     int64
	blobPos int64
	dirRead bool
}

func (f *file) Close() error {
	if f.blob != nil {
		return f.blob.Close()
	}
	return nil
}

func (f *file) Stat() (os.FileInfo, error) { return fileInfo{name: f.name, ino: f.ino}, nil }

func (f *file) Write([]byte) (int, error) {
	return 0, &os.PathError{Op: "write", Path: f.name, Err: fs.ErrPermission}
}

// Seek tracks the position itself and moves the content handle only when
// bytes are read from elsewhere: http.ServeContent seeks to the end to learn
// the size and back again, and leaving the handle alone keeps the content
// store's read-time hash verification on for whole-file reads.
func (f *file) Seek(offset int64, whence int) (int64, error) {
	if f.ino.IsDir() {
		return 0, &os.PathError{Op: "seek", Path: f.name, Err: fs.ErrInvalid}
	}
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = f.pos + offset
	case io.SeekEnd:
		abs = f.ino.Size + offset
	default:
		return 0, &os.PathError{Op: "seek", Path: f.name, Err: fs.ErrInvalid}
	}
	if abs < 0 {
		return 0, &os.PathError{Op: "seek", Path: f.name, Err: fs.ErrInvalid}
	}
	f.pos = abs
	return abs, nil
}

func (f *file) Read(p []byte) (int, error) {
	if f.ino.IsDir() {
		return 0, &os.PathError{Op: "read", Path: f.name, Err: fs.ErrInvalid}
	}
	if f.pos >= f.ino.Size {
		return 0, io.EOF
	}
	if f.blob == nil {
		b, err := f.fs.h.blobs.Open(f.ctx, f.ino.Hash, f.ino.Size)
		if err != nil {
			return 0, fmt.Errorf("open content of %s: %w", f.name, err)
		}
		f.blob, f.blobPos = b, 0
	}
	if f.blobPos != f.pos {
		if _, err := f.blob.Seek(f.pos, io.SeekStart); err != nil {
			return 0, fmt.Errorf("seek content of %s: %w", f.name, err)
		}
		f.blobPos = f.pos
	}
	n, err := f.blob.Read(p)
	f.pos += int64(n)
	f.blobPos += int64(n)
	return n, err
}

func (f *file) Readdir(count int) ([]os.FileInfo, error) {
	if !f.ino.IsDir() {
		return nil, &os.PathError{Op: "readdir", Path: f.name, Err: fs.ErrInvalid}
	}
	if f.dirRead {
		if count > 0 {
			return nil, io.EOF
		}
		return nil, nil
	}
	f.dirRead = true
	ents, err := f.fs.h.meta.List(f.ctx, f.ino.ID)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", f.name, err)
	}
	out := make([]os.FileInfo, 0, len(ents))
	ids := make([]metastore.ID, 0, len(ents))
	for _, e := range ents {
		child := fspath.Join(f.name, e.Name)
		if f.fs.h.hidden(f.ctx, child) {
			// A member the user may not read is not listed at all.
			continue
		}
		f.fs.cache[child] = e.Inode
		out = append(out, fileInfo{name: child, ino: e.Inode})
		ids = append(ids, e.Inode.ID)
	}
	props, err := f.fs.h.meta.PropsOf(f.ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("read properties of the members of %s: %w", f.name, err)
	}
	if f.fs.listed == nil {
		f.fs.listed = props
	} else {
		maps.Copy(f.fs.listed, props)
	}
	return out, nil
}

var (
	nameCreationDate  = xml.Name{Space: "DAV:", Local: "creationdate"}
	nameLockDiscovery = xml.Name{Space: "DAV:", Local: "lockdiscovery"}
)

// DeadProps returns the stored dead properties plus the two live properties
// x/net/webdav leaves out (creationdate, which Windows needs, and
// lockdiscovery): x/net consults dead properties first, so this is the seam
// through which dfs supplies them.
func (f *file) DeadProps() (map[xml.Name]xwebdav.Property, error) {
	if f.fs.props != nil && f.fs.propsName == f.name {
		return f.fs.props, nil // x/net only reads the map
	}
	props, ok := f.fs.listed[f.ino.ID]
	if ok {
		delete(f.fs.listed, f.ino.ID)
	} else {
		var err error
		if props, err = f.fs.h.meta.Props(f.ctx, f.ino.ID); err != nil {
			return nil, fmt.Errorf("read properties of %s: %w", f.name, err)
		}
	}
	out := make(map[xml.Name]xwebdav.Property, len(props)+2)
	for n, v := range props {
		xn := xml.Name{Space: n.Space, Local: n.Local}
		out[xn] = xwebdav.Property{XMLName: xn, InnerXML: []byte(v)}
	}
	out[nameCreationDate] = xwebdav.Property{
		XMLName:  nameCreationDate,
		InnerXML: []byte(time.Unix(0, f.ino.Created).UTC().Format(time.RFC3339)),
	}
	locks, err := f.fs.allLocks(f.ctx)
	if err != nil {
		return nil, err
	}
	out[nameLockDiscovery] = xwebdav.Property{
		XMLName:  nameLockDiscovery,
		InnerXML: []byte(LockDiscoveryXML(activeLocks(locks, f.name, time.Now(), f.fs.h.lockRootHref(f.ctx)))),
	}
	if f.fs.quota.want {
		used, avail, ok, err := f.fs.quotaValues(f.ctx)
		if err != nil {
			return nil, err
		}
		if ok {
			out[nameQuotaAvailable] = xwebdav.Property{XMLName: nameQuotaAvailable, InnerXML: []byte(strconv.FormatInt(avail, 10))}
			out[nameQuotaUsed] = xwebdav.Property{XMLName: nameQuotaUsed, InnerXML: []byte(strconv.FormatInt(used, 10))}
		}
	}
	f.fs.propsName, f.fs.props = f.name, out
	return out, nil
}

// Patch applies a PROPPATCH as one log entry: all of it or none of it.
func (f *file) Patch(patches []xwebdav.Proppatch) ([]xwebdav.Propstat, error) {
	f.fs.props = nil
	var cmd fsm.Command
	cmd.Op, cmd.Path = fsm.OpPropPatch, f.name
	pstat := xwebdav.Propstat{Status: http.StatusOK}
	for _, pp := range patches {
		for _, p := range pp.Props {
			cmd.Patches = append(cmd.Patches, fsm.PropPatch{
				Name:   metastore.PropName{Space: p.XMLName.Space, Local: p.XMLName.Local},
				Value:  string(explicitNoNamespace(p.InnerXML)),
				Remove: pp.Remove,
			})
			pstat.Props = append(pstat.Props, xwebdav.Property{XMLName: p.XMLName})
		}
	}
	err := f.fs.propose(f.ctx, &cmd)
	var fe *fsm.Error
	switch {
	case err == nil:
	case errors.As(err, &fe) && fe.Code == fsm.Forbidden:
		// A protected (DAV:) property: 403 for it in the 207
		// (RFC 4918 §9.2.1).
		pstat.Status = http.StatusForbidden
	default:
		// Locked included: the whole request gets 423 with
		// DAV:lock-token-submitted, as when handleProppatch's own check
		// finds the lock, rather than a 207 that reads as a success.
		f.fs.patchErr = err
		return nil, err
	}
	return []xwebdav.Propstat{pstat}, nil
}

// explicitNoNamespace makes a property value, as x/net/webdav re-encodes
// it at PROPPATCH, mean the same inside any element: it adds xmlns="" to
// each unprefixed element that is in no namespace only because nothing in
// the value declares a default namespace. x/net's encoder writes such an
// element bare (it drops an xmlns="" the client sent), and writes the
// property back at PROPFIND as <name xmlns="property-namespace">value</name>,
// so <t:a xmlns:t="urn:t"><b xmlns="">x</b></t:a> came back as
// <a xmlns="urn:t"><b>x</b></a>: b had moved into urn:t. Prefixed elements
// need nothing, as the encoder declares their prefixes where it uses them.
// A value that does not parse (x/net produced it, so it should) is kept.
func explicitNoNamespace(v []byte) []byte {
	if bytes.IndexByte(v, '<') < 0 {
		return v
	}
	const wrap = "<v>"
	d := xml.NewDecoder(io.MultiReader(strings.NewReader(wrap), bytes.NewReader(v), strings.NewReader("</v>")))
	var out []byte
	copied := 0 // bytes of v already in out
	type open struct {
		name   xml.Name
		scoped bool // a default namespace is declared on it or above it in v
	}
	var stack []open
	for {
		off := d.InputOffset()
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return v
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if off == 0 {
				stack = append(stack, open{name: t.Name}) // the wrapper
				continue
			}
			declared := len(stack) > 0 && stack[len(stack)-1].scoped
			own := false
			for _, a := range t.Attr {
				own = own || (a.Name.Space == "" && a.Name.Local == "xmlns")
			}
			stack = append(stack, open{name: t.Name, scoped: declared || own})
			if t.Name.Space == "" && !declared && !own {
				// The start tag is "<" + name at off, in wrapper offsets.
				at := int(off) - len(wrap) + 1 + len(t.Name.Local)
				if at < copied || at > len(v) {
					return v
				}
				out = append(append(out, v[copied:at]...), ` xmlns=""`...)
				copied = at
			}
		case xml.EndElement:
			// RawToken does not match tags; a value that is not one
			// well-formed fragment is kept as it is.
			if len(stack) == 0 || stack[len(stack)-1].name != t.Name {
				return v
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) != 0 {
		return v
	}
	if out == nil {
		return v
	}
	return append(out, v[copied:]...)
}

// activeLocks lists the unexpired locks that cover name, for lockdiscovery.
// rootHref gives each lock root's href ("": left out).
func activeLocks(locks []metastore.Lock, name string, now time.Time, rootHref func(string) string) []ActiveLock {
	var out []ActiveLock
	for _, l := range locks {
		if l.Expired(now.UnixNano()) || !(l.Root == name || (l.Infinite && fspath.IsAncestor(l.Root, name))) {
			continue
		}
		out = append(out, toActiveLock(l, now, rootHref))
	}
	return out
}

func toActiveLock(l metastore.Lock, now time.Time, rootHref func(string) string) ActiveLock {
	a := ActiveLock{
		Token:    l.Token,
		Shared:   l.Shared,
		Infinite: l.Infinite,
		Owner:    l.Owner,
	}
	a.Root = escapePath(l.Root)
	if rootHref != nil {
		a.Root = rootHref(l.Root)
	}
	if l.Expires == 0 {
		a.InfiniteTimeout = true
	} else {
		left := (l.Expires - now.UnixNano() + int64(time.Second) - 1) / int64(time.Second)
		if left < 1 {
			left = 1
		}
		a.TimeoutSeconds = left
	}
	return a
}

// escapePath percent-encodes a clean path for use in an href. Any other
// string (a path from a result no state machine should give: empty,
// relative) still gives an absolute path rather than a panic.
func escapePath(p string) string {
	var b strings.Builder
	for _, seg := range strings.Split(p, "/") {
		if seg == "" {
			continue
		}
		b.WriteByte('/')
		b.WriteString(url.PathEscape(seg))
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}
