package webdav

import (
	"errors"
	"testing"
)

func TestParseDepth(t *testing.T) {
	tests := []struct {
		in   string
		def  int
		want int
		bad  bool
	}{
		{"", -1, -1, false},
		{"", 0, 0, false},
		{"0", -1, 0, false},
		{"1", -1, 1, false},
		{"infinity", 0, -1, false},
		{"Infinity", 0, -1, false},
		{" infinity\t", 0, -1, false},
		{" 1 ", 0, 1, false},
		{"2", 0, 0, true},
		{"-1", 0, 0, true},
		{"00", 0, 0, true},
		{"inf", 0, 0, true},
		{"0,1", 0, 0, true},
		{"1 1", 0, 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDepth(tt.in, tt.def)
		if (err != nil) != tt.bad || (!tt.bad && got != tt.want) {
			t.Errorf("ParseDepth(%q, %d) = %d, %v; want %d, error %v", tt.in, tt.def, got, err, tt.want, tt.bad)
		}
	}
}

func TestParseOverwrite(t *testing.T) {
	tests := []struct {
		in   string
		want bool
		bad  bool
	}{
		{"", true, false},
		{"T", true, false},
		{"t", true, false},
		{"F", false, false},
		{" f ", false, false},
		{"TRUE", false, true},
		{"false", false, true},
		{"0", false, true},
		{"T,F", false, true},
	}
	for _, tt := range tests {
		got, err := ParseOverwrite(tt.in)
		if (err != nil) != tt.bad || (!tt.bad && got != tt.want) {
			t.Errorf("ParseOverwrite(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

func TestParseDestination(t *testing.T) {
	const bad = "bad"
	foreign := ErrForeignDestination
	tests := []struct {
		in, reqHost string
		path, host  string
		err         error // nil, foreign, or errors.New(bad) for any other error
	}{
		{"/litmus/dest", "dav.example", "/litmus/dest", "", nil},
		{"http://dav.example/litmus/dest", "dav.example", "/litmus/dest", "dav.example", nil},
		{"https://dav.example/a%20b/c%25d", "dav.example", "/a b/c%d", "dav.example", nil},
		{"/a%20b/%C3%A9/", "h", "/a b/\u00e9/", "", nil},
		{"/a%2Fb", "h", "/a/b", "", nil},
		{"/../x", "h", "/../x", "", nil}, // not cleaned here
		{" http://dav.example/x\t", "dav.example", "/x", "dav.example", nil},
		{"HTTP://DAV.Example/x", "dav.example", "/x", "DAV.Example", nil},
		{"http://dav.example", "dav.example", "/", "dav.example", nil},
		{"http://dav.example:80/x", "dav.example", "/x", "dav.example:80", nil},
		{"http://dav.example/x", "dav.example:80", "/x", "dav.example", nil},
		{"https://dav.example:443/x", "dav.example", "/x", "dav.example:443", nil},
		{"http://dav.example:8080/x", "dav.example:8080", "/x", "dav.example:8080", nil},
		{"http://[::1]:8080/x", "[::1]:8080", "/x", "[::1]:8080", nil},
		{"http://[::1]/x", "[::1]:80", "/x", "[::1]", nil},
		{"http://other.example/x", "dav.example", "/x", "other.example", foreign},
		{"http://dav.example:8080/x", "dav.example", "/x", "dav.example:8080", foreign},
		{"https://dav.example:80/x", "dav.example", "/x", "dav.example:80", foreign},
		{"http://dav.example/x", "", "/x", "dav.example", foreign},
		{"", "h", "", "", errors.New(bad)},
		{"   ", "h", "", "", errors.New(bad)},
		{"x/y", "h", "", "", errors.New(bad)},
		{"//h/x", "h", "", "", errors.New(bad)},
		{"ftp://h/x", "h", "", "", errors.New(bad)},
		{"mailto:a@h", "h", "", "", errors.New(bad)},
		{"http:/x", "h", "", "", errors.New(bad)},
		{"http:x", "h", "", "", errors.New(bad)},
		{"http://u:p@h/x", "h", "", "", errors.New(bad)},
		{"/x?y", "h", "", "", errors.New(bad)},
		{"/x?", "h", "", "", errors.New(bad)},
		{"/x#y", "h", "", "", errors.New(bad)},
		{"http://h/x?y=1", "h", "", "", errors.New(bad)},
		{"/a%zz", "h", "", "", errors.New(bad)},
		{"/a b", "h", "", "", errors.New(bad)},
		{"/a\x00b", "h", "", "", errors.New(bad)},
		{"http://h:bad/x", "h", "", "", errors.New(bad)},
	}
	for _, tt := range tests {
		path, host, err := ParseDestination(tt.in, tt.reqHost)
		switch {
		case tt.err == nil && err != nil,
			tt.err == foreign && !errors.Is(err, foreign),
			tt.err != nil && tt.err != foreign && (err == nil || errors.Is(err, foreign)):
			t.Errorf("ParseDestination(%q, %q) error %v, want %v", tt.in, tt.reqHost, err, tt.err)
			continue
		}
		if path != tt.path || host != tt.host {
			t.Errorf("ParseDestination(%q, %q) = %q, %q; want %q, %q", tt.in, tt.reqHost, path, host, tt.path, tt.host)
		}
	}
}
