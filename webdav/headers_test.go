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
	o := func(scheme, host, port string) Origin { return Origin{Scheme: scheme, Host: host, Port: port} }
	none := Origin{}
	bad := errors.New("bad")
	tests := []struct {
		in   string
		path string
		dst  Origin
		err  error // nil, or bad for any error
	}{
		{"/litmus/dest", "/litmus/dest", none, nil},
		{"http://dav.example/litmus/dest", "/litmus/dest", o("http", "dav.example", "80"), nil},
		{"https://dav.example/a%20b/c%25d", "/a b/c%d", o("https", "dav.example", "443"), nil},
		{"/a%20b/%C3%A9/", "/a b/\u00e9/", none, nil},
		{"/a%2Fb", "/a/b", none, nil},
		{"/../x", "/../x", none, nil}, // not cleaned here
		{" http://dav.example/x\t", "/x", o("http", "dav.example", "80"), nil},
		{"HTTP://DAV.Example/x", "/x", o("http", "dav.example", "80"), nil},
		{"http://dav.example.", "/", o("http", "dav.example", "80"), nil},
		{"http://dav.example:80/x", "/x", o("http", "dav.example", "80"), nil},
		{"https://dav.example:443/x", "/x", o("https", "dav.example", "443"), nil},
		{"http://dav.example:8080/x", "/x", o("http", "dav.example", "8080"), nil},
		{"https://dav.example:80/x", "/x", o("https", "dav.example", "80"), nil},
		{"http://[::1]:8080/x", "/x", o("http", "[::1]", "8080"), nil},
		{"http://[::1]/x", "/x", o("http", "[::1]", "80"), nil},
		{"http://10.0.0.1:08080/x", "/x", o("http", "10.0.0.1", "8080"), nil},
		{"", "", none, bad},
		{"   ", "", none, bad},
		{"x/y", "", none, bad},
		{"//h/x", "", none, bad},
		{"ftp://h/x", "", none, bad},
		{"mailto:a@h", "", none, bad},
		{"http:/x", "", none, bad},
		{"http:x", "", none, bad},
		{"http://u:p@h/x", "", none, bad},
		{"/x?y", "", none, bad},
		{"/x?", "", none, bad},
		{"/x#y", "", none, bad},
		{"http://h/x?y=1", "", none, bad},
		{"/a%zz", "", none, bad},
		{"/a b", "", none, bad},
		{"/a\x00b", "", none, bad},
		{"http://h:bad/x", "", none, bad},
		{"http://h:0/x", "", none, bad},
		{"http://h:65536/x", "", none, bad},
	}
	for _, tt := range tests {
		path, dst, err := ParseDestination(tt.in)
		if (err != nil) != (tt.err != nil) {
			t.Errorf("ParseDestination(%q) error %v, want error: %v", tt.in, err, tt.err != nil)
			continue
		}
		if path != tt.path || dst != tt.dst {
			t.Errorf("ParseDestination(%q) = %q, %+v; want %q, %+v", tt.in, path, dst, tt.path, tt.dst)
		}
	}
}

func TestOrigins(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // String(), or "" for an error
	}{
		{"https://dav.example.com", "https://dav.example.com"},
		{"https://DAV.example.com:443/", "https://dav.example.com"},
		{"http://dav.example.com:8080", "http://dav.example.com:8080"},
		{"https://dav.example.com:80", "https://dav.example.com:80"},
		{" http://[fd00::1]:8080 ", "http://[fd00::1]:8080"},
		{"dav.example.com", ""},
		{"ftp://dav.example.com", ""},
		{"https://", ""},
		{"https://u@dav.example.com", ""},
		{"https://dav.example.com/dav", ""},
		{"https://dav.example.com/?x", ""},
		{"https://dav.example.com:x", ""},
	} {
		o, err := ParsePublicURL(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("ParsePublicURL(%q) = %v, want an error", tc.in, o)
		case tc.want != "" && (err != nil || o.String() != tc.want):
			t.Errorf("ParsePublicURL(%q) = %v, %v; want %s", tc.in, o, err, tc.want)
		}
	}
	if os, err := ParsePublicURLs([]string{"https://a.example, http://b.example:81", "", "https://c.example"}); err != nil || len(os) != 3 {
		t.Errorf("ParsePublicURLs = %v, %v; want 3 origins", os, err)
	}
	ps, err := ParseTrustedProxies([]string{"10.0.0.0/8, 192.168.1.7", "fd00::/8", "::ffff:172.16.0.1", ""})
	if err != nil || len(ps) != 4 {
		t.Fatalf("ParseTrustedProxies = %v, %v", ps, err)
	}
	if got := ps[3].String(); got != "172.16.0.1/32" {
		t.Errorf("a mapped IPv4 address becomes %s, want 172.16.0.1/32", got)
	}
	for _, in := range []string{"10.0.0.0/33", "proxy.example", "10.0.0.1/8/8", "::ffff:10.0.0.0/104"} {
		if _, err := ParseTrustedProxies([]string{in}); err == nil {
			t.Errorf("ParseTrustedProxies(%q): no error", in)
		}
	}
}
