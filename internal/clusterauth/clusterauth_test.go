package clusterauth

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRequire(t *testing.T) {
	tests := []struct {
		name       string
		configured string
		sent       string
		send       bool
		want       int
	}{
		{"right secret", "s3cret", "s3cret", true, http.StatusOK},
		{"no header", "s3cret", "", false, http.StatusUnauthorized},
		{"wrong secret", "s3cret", "s3cre", true, http.StatusForbidden},
		{"prefix of the secret", "s3cret", "s3cret-and-more", true, http.StatusForbidden},
		{"node without a secret refuses everything", "", "anything", true, http.StatusForbidden},
		{"node without a secret, no header", "", "", false, http.StatusUnauthorized},
		{"rotation: the new secret", "new,old", "new", true, http.StatusOK},
		{"rotation: the previous secret", "new,old", "old", true, http.StatusOK},
		{"rotation: neither", "new,old", "new,old", true, http.StatusForbidden},
		{"rotation: a third secret", "new,old", "older", true, http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reached := false
			h := Require(tc.configured, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reached = true
			}))
			r := httptest.NewRequest(http.MethodPost, "/cluster/join", nil)
			if tc.send {
				r.Header.Set(Header, tc.sent)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d", w.Code, tc.want)
			}
			if reached != (tc.want == http.StatusOK) {
				t.Fatalf("handler reached = %v with status %d", reached, w.Code)
			}
		})
	}
}

func TestSetSendsTheFirstSecret(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/cluster/join", nil)
	Set(r, List("new", "old"))
	if got := r.Header.Get(Header); got != "new" {
		t.Fatalf("sent %q, want the current secret", got)
	}
}

func TestListAndValidate(t *testing.T) {
	tests := []struct {
		current  string
		previous []string
		want     string
	}{
		{"a", nil, "a"},
		{"a", []string{"b"}, "a,b"},
		{"a,b", []string{"", "c"}, "a,b,c"},
		{"", nil, ""},
		{" a ", []string{" b"}, "a,b"},
	}
	for _, tc := range tests {
		got := List(tc.current, tc.previous...)
		if got != tc.want {
			t.Errorf("List(%q, %q) = %q, want %q", tc.current, tc.previous, got, tc.want)
		}
		if err := Validate(got); err != nil {
			t.Errorf("Validate(%q): %v", got, err)
		}
	}
	for _, bad := range []string{",a", "a,,b", "a, b", "a,"} {
		if Validate(bad) == nil {
			t.Errorf("Validate(%q) accepted it", bad)
		}
	}
}
