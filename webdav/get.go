package webdav

import (
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/dfs-project/dfs/fspath"
	"github.com/dfs-project/dfs/metastore"
)

// maxGetAttempts bounds how often a GET resolves its path again because the
// content it resolved to was released before it could be opened.
const maxGetAttempts = 5

// handleGet serves GET and HEAD. x/net answers for files, with Range and
// the conditional headers; collections, where x/net answers 405, get an
// HTML index.
func (h *Handler) handleGet(w http.ResponseWriter, r *http.Request, p string) error {
	ctx := r.Context()
	// A GET opens the content before x/net answers: once the status line
	// is out, a failed read can only cut the body short, and the client
	// would get a truncated 200. Content is released as soon as the
	// overwrite or DELETE that unreferenced it commits, so a GET that
	// resolved the path just before may find it gone; it then resolves the
	// path again and serves what it holds now (or 404). Once open, the
	// content stays readable whatever happens to the path.
	failed := "" // the hash whose content could not be opened
	for attempt := 1; ; attempt++ {
		fs := h.newFS(nil)
		ino, ok, err := h.resolve(ctx, fs, p)
		if err != nil {
			return err
		}
		if !ok {
			return fail(http.StatusNotFound, "%s does not exist", p)
		}
		if ino.IsDir() {
			return h.serveCollection(w, r, p, ino)
		}
		if r.Method == http.MethodGet {
			blob, err := h.blobs.Open(ctx, ino.Hash, ino.Size)
			if err != nil {
				if ino.Hash != failed && attempt < maxGetAttempts {
					failed = ino.Hash
					continue
				}
				return fmt.Errorf("open content of %s: %w", p, err)
			}
			fs.preopened = &preopened{path: p, hash: ino.Hash, blob: blob}
			defer fs.closePreopened()
		}
		// The inode read above decides what is served: confirm it came
		// from the node's whole state before the status line goes out.
		if err := confirmResolved(ctx, fs, p); err != nil {
			return err
		}
		w.Header().Set("Content-Type", contentType(p, ino))
		h.xdav(fs).ServeHTTP(w, r)
		return nil
	}
}

var listingTmpl = template.Must(template.New("listing").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Index of {{.Path}}</title></head>
<body><h1>Index of {{.Path}}</h1><table>
<tr><th>Name</th><th>Size</th><th>Modified</th></tr>
{{if .Parent}}<tr><td><a href="{{.Parent}}">../</a></td><td></td><td></td></tr>
{{end}}{{range .Entries}}<tr><td><a href="{{.Href}}">{{.Name}}</a></td><td>{{.Size}}</td><td>{{.Modified}}</td></tr>
{{end}}</table></body></html>
`))

type listingEntry struct {
	Name, Href, Size, Modified string
}

// serveCollection answers GET on a collection with an HTML index, which is
// what a person who opens the drive's URL in a browser expects.
func (h *Handler) serveCollection(w http.ResponseWriter, r *http.Request, p string, ino metastore.Inode) error {
	if r.Method == http.MethodHead {
		if err := confirmRead(r.Context()); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Last-Modified", time.Unix(0, ino.Modified).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusOK)
		return nil
	}
	ents, err := h.meta.List(r.Context(), ino.ID)
	if err != nil {
		return fmt.Errorf("list %s: %w", p, err)
	}
	// The listing, like the inode, is served only from the node's whole
	// state.
	if err := confirmRead(r.Context()); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Last-Modified", time.Unix(0, ino.Modified).UTC().Format(http.TimeFormat))
	data := struct {
		Path    string
		Parent  string
		Entries []listingEntry
	}{Path: clientPath(r.Context(), p)}
	if !isRoot(r.Context(), p) {
		dir, _ := fspath.Split(p)
		data.Parent = hrefOf(r.Context(), dir)
		if data.Parent != "/" {
			data.Parent += "/"
		}
	}
	for _, e := range ents {
		if h.hidden(r.Context(), fspath.Join(p, e.Name)) {
			continue
		}
		le := listingEntry{
			Name:     e.Name,
			Href:     hrefOf(r.Context(), fspath.Join(p, e.Name)),
			Modified: time.Unix(0, e.Inode.Modified).UTC().Format(time.RFC3339),
		}
		if e.Inode.IsDir() {
			le.Name += "/"
			le.Href += "/"
		} else {
			le.Size = strconv.FormatInt(e.Inode.Size, 10)
		}
		data.Entries = append(data.Entries, le)
	}
	w.WriteHeader(http.StatusOK)
	if err := listingTmpl.Execute(w, data); err != nil {
		return fmt.Errorf("write listing of %s: %w", p, err)
	}
	return nil
}
