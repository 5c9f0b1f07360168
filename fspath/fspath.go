// Package fspath owns the one normalisation of client paths in dfs. Every
// path that reaches the state machine or a store has passed Clean, so the
// rest of dfs can compare paths as strings. Paths never touch the local
// filesystem: content lives under its hash, so no client path, however
// crafted, can name a file outside the data directory.
package fspath

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxNameBytes is the longest single path segment accepted, as on most
// local filesystems.
const MaxNameBytes = 255

// MaxPathBytes is the longest whole path accepted.
const MaxPathBytes = 4096

// ErrInvalid is wrapped by every error Clean returns.
var ErrInvalid = errors.New("invalid path")

// Clean turns a decoded URL path into dfs's canonical form: absolute, no
// trailing slash (except the root "/"), no empty, "." or ".." segments. It
// rejects, rather than repairs, anything a client cannot mean honestly: NUL
// and other control bytes, invalid UTF-8, backslashes, ".." that would climb
// above the root, and over-long names.
func Clean(p string) (string, error) {
	if len(p) > MaxPathBytes {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrInvalid, MaxPathBytes)
	}
	if !utf8.ValidString(p) {
		return "", fmt.Errorf("%w: not valid UTF-8", ErrInvalid)
	}
	var out []string
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "", ".":
			continue
		case "..":
			if len(out) == 0 {
				return "", fmt.Errorf("%w: %q climbs above the root", ErrInvalid, p)
			}
			out = out[:len(out)-1]
			continue
		}
		if len(seg) > MaxNameBytes {
			return "", fmt.Errorf("%w: a name is longer than %d bytes", ErrInvalid, MaxNameBytes)
		}
		for _, r := range seg {
			if r < 0x20 || r == 0x7f || r == '\\' {
				return "", fmt.Errorf("%w: control character or backslash in %q", ErrInvalid, seg)
			}
		}
		out = append(out, seg)
	}
	clean := "/" + strings.Join(out, "/")
	// Checked again on the result: a relative input gains the leading
	// slash, so a MaxPathBytes input could otherwise come out one byte
	// too long, and Clean would reject its own output.
	if len(clean) > MaxPathBytes {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrInvalid, MaxPathBytes)
	}
	return clean, nil
}

// Split returns the parent path and the last segment of a clean path. The
// root has no parent: Split("/") returns ("", "").
func Split(p string) (dir, name string) {
	if p == "/" {
		return "", ""
	}
	i := strings.LastIndexByte(p, '/')
	if i == 0 {
		return "/", p[1:]
	}
	return p[:i], p[i+1:]
}

// Segments returns the names along a clean path; the root has none.
func Segments(p string) []string {
	if p == "/" {
		return nil
	}
	return strings.Split(p[1:], "/")
}

// Join appends a name to a clean directory path.
func Join(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// IsAncestor reports whether a is b or a collection above b.
func IsAncestor(a, b string) bool {
	if a == b || a == "/" {
		return true
	}
	return strings.HasPrefix(b, a) && b[len(a)] == '/'
}
