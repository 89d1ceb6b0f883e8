package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestEchoHandler(t *testing.T) {
	rec := httptest.NewRecorder()
	echoHandler("my-app", "v2", "box-1").ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://my-app/any/path", nil))

	if rec.Code != http.StatusOK {
		t.Errorf("status = %d, want 200", rec.Code)
	}
	if got := rec.Header().Get("x-served-by"); got != "v2" {
		t.Errorf("x-served-by = %q, want v2", got)
	}
	if got, want := rec.Body.String(), "hello from my-app v2 (host box-1)\n"; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
}

func TestTally(t *testing.T) {
	var tl tally
	for i := range 20 {
		if i%10 == 9 {
			tl.add("v2")
		} else {
			tl.add("v1")
		}
	}
	if got, want := tl.String(), "after 20 requests: v1 90% (18), v2 10% (2)"; got != want {
		t.Errorf("tally = %q, want %q", got, want)
	}
}

// TestClientReportsVersions runs the client against two servers behind a
// round-robin front and checks what it prints.
func TestClientReportsVersions(t *testing.T) {
	v1 := echoHandler("my-app", "v1", "a")
	v2 := echoHandler("my-app", "v2", "b")
	n := 0
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		if n%2 == 0 {
			v2.ServeHTTP(w, r)
		} else {
			v1.ServeHTTP(w, r)
		}
	}))
	defer front.Close()

	ctx, cancel := context.WithCancel(context.Background())
	out := &stopAfter{lines: reportEvery + 1, cancel: cancel}
	if err := runClient(ctx, front.URL, time.Millisecond, out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if !strings.Contains(text, "v1       200 OK hello from my-app v1 (host a)\n") {
		t.Errorf("no v1 answer in output:\n%s", text)
	}
	if !strings.Contains(text, "after 20 requests: v1 50% (10), v2 50% (10)\n") {
		t.Errorf("no summary in output:\n%s", text)
	}
}

// stopAfter collects output and cancels the client after some lines.
type stopAfter struct {
	bytes.Buffer
	lines  int
	cancel context.CancelFunc
}

func (s *stopAfter) Write(p []byte) (int, error) {
	s.lines -= bytes.Count(p, []byte("\n"))
	if s.lines <= 0 {
		s.cancel()
	}
	return s.Buffer.Write(p)
}
