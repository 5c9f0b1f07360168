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
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reached := false
			h := Require(tc.configured, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reached = true
			}))
			r := httptest.NewRequest(http.MethodPost, "/cluster/join", nil)
			if tc.send {
				Set(r, tc.sent)
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
