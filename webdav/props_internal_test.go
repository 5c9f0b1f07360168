package webdav

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestExplicitNoNamespace(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain text &amp; more", "plain text &amp; more"},
		{"<b>x</b>", `<b xmlns="">x</b>`},
		{"<b/>", `<b xmlns=""/>`},
		{"t <b>x</b> u <c a='1'/>", `t <b xmlns="">x</b> u <c xmlns="" a='1'/>`},
		{`<b xmlns="urn:u">x<c>y</c></b>`, `<b xmlns="urn:u">x<c>y</c></b>`},
		{`<b xmlns="">x<c/></b>`, `<b xmlns="">x<c/></b>`},
		{`<_:n xmlns:_="urn:t">x<c/></_:n>`, `<_:n xmlns:_="urn:t">x<c xmlns=""/></_:n>`},
		{`<!-- c --><?pi x?><b>é🐹</b>`, `<!-- c --><?pi x?><b xmlns="">é🐹</b>`},
		{"<b>unclosed", "<b>unclosed"},
	}
	for _, tc := range tests {
		if got := string(explicitNoNamespace([]byte(tc.in))); got != tc.want {
			t.Errorf("explicitNoNamespace(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzExplicitNoNamespace checks that the rewrite only ever adds
// declarations: what parsed before parses after, to the same names, except
// that elements in no namespace say so.
func FuzzExplicitNoNamespace(f *testing.F) {
	for _, s := range []string{"<b>x</b>", `<a:b xmlns:a="u"><c/></a:b>`, `<b xmlns="u"><c xmlns=""/></b>`, "x<b/>y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := string(explicitNoNamespace([]byte(in)))
		before, errB := names("<w>" + in + "</w>")
		after, errA := names(`<w xmlns="urn:context">` + out + "</w>")
		if errB != nil {
			return
		}
		if errA != nil {
			t.Fatalf("rewrite of %q broke it: %q: %v", in, out, errA)
		}
		if len(before) != len(after) {
			t.Fatalf("rewrite of %q changed the element count: %q", in, out)
		}
		for i := 1; i < len(before); i++ { // the wrapper differs by design
			if before[i] != after[i] {
				t.Fatalf("rewrite of %q: element %d is %v, was %v (in %q)", in, i, after[i], before[i], out)
			}
		}
	})
}

// names lists the expanded names of a document's elements in order. The
// document must be one element: anything after it is an error.
func names(doc string) ([]xml.Name, error) {
	d := xml.NewDecoder(strings.NewReader(doc))
	var out []xml.Name
	depth := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 && len(out) > 0 {
				return nil, errors.New("a second root element")
			}
			depth++
			out = append(out, t.Name)
		case xml.EndElement:
			depth--
		}
	}
}
