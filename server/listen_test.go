package server

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingBody records whether the client was ever asked for its body.
type countingBody struct {
	r     io.Reader
	reads atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	b.reads.Add(1)
	return b.r.Read(p)
}

// A handler that refuses a request without reading its body (507 at the
// quota, 413, 401) must reach an Expect: 100-continue client at once, and
// the client must never be asked for the body: the I/O-timeout wrapper may
// not hide the server's own request from it.
func TestIOTimeoutKeepsExpectContinue(t *testing.T) {
	h := withIOTimeout(time.Minute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "refused before the body", http.StatusInsufficientStorage)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	tr := &http.Transport{ExpectContinueTimeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	body := &countingBody{r: strings.NewReader(strings.Repeat("x", 1<<20))}
	req, err := http.NewRequest(http.MethodPut, srv.URL+"/f", body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = 1 << 20
	req.Header.Set("Expect", "100-continue")
	start := time.Now()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusInsufficientStorage {
		t.Fatalf("status %d, want 507", resp.StatusCode)
	}
	if n := body.reads.Load(); n != 0 {
		t.Errorf("the client was asked for its body (%d reads) after %v: the server read a body its handler never wanted",
			n, time.Since(start))
	}
}

// A handler that closes a body it never read (the forwarder does, when
// the leader cannot be reached) makes net/http discard the rest; a client
// that sent its headers and stalls must not hold that handler longer than
// the I/O timeout.
func TestIOTimeoutBoundsCloseOfStalledBody(t *testing.T) {
	closed := make(chan error, 1)
	h := withIOTimeout(200*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		closed <- r.Body.Close()
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Ten bytes announced, none sent.
	if _, err := io.WriteString(conn, "PUT /f HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-closed:
		if err == nil {
			t.Error("Close of a body that never came reported no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("closing a stalled body held the handler for 10 s with a 200 ms I/O timeout")
	}
}
