package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/minimesh/minimesh/internal/envoysim"
	"github.com/minimesh/minimesh/internal/testbed"
	"github.com/minimesh/minimesh/runner"
)

// TestProxyStatusLive: a real control plane (examples/canary, with a CA)
// and a simulated Envoy sidecar: proxy-status shows it SYNCED for the
// types it asked for, at the versions the control plane published.
func TestProxyStatusLive(t *testing.T) {
	c := testbed.StartCanaryServer(t)
	debug := httptest.NewServer(c.CP.DebugHandler())
	t.Cleanup(debug.Close)
	conn, err := grpc.NewClient(c.XDSAddress, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	e := envoysim.New(envoysim.Config{NodeID: "my-app-v1.default"})
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx, conn) }()
	t.Cleanup(func() { cancel(); <-done })

	addr := strings.TrimPrefix(debug.URL, "http://")
	row := regexp.MustCompile(`(?m)^my-app-v1\.default\s+envoy\s+SYNCED \(([0-9a-f]{8})\)\s+SYNCED \(([0-9a-f]{8})\)\s+SYNCED \(([0-9a-f]{8})\)\s+SYNCED \(([0-9a-f]{8})\)\s+(NOT SENT|SYNCED \([0-9a-f]{8}\))\s*$`)
	var out, errs bytes.Buffer
	deadline := time.Now().Add(5 * time.Second)
	for {
		out.Reset()
		if err := run(context.Background(), []string{"proxy-status", "--debug-address", addr}, &out, &errs); err != nil {
			t.Fatalf("proxy-status: %v\n%s", err, errs.String())
		}
		if row.MatchString(out.String()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sidecar is not shown SYNCED within 5s:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("\n%s", out.String())
	if !strings.HasPrefix(out.String(), "NAME ") || !strings.Contains(strings.SplitN(out.String(), "\n", 2)[0], "CDS") {
		t.Fatalf("no header:\n%s", out.String())
	}

	// One proxy's details name the full versions.
	out.Reset()
	if err := run(context.Background(), []string{"proxy-status", "my-app-v1.default", "--debug-address", addr}, &out, &errs); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Proxy:    my-app-v1.default", "CDS", "SYNCED", "PUBLISHED"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("details lack %q:\n%s", want, out.String())
		}
	}
	if err := run(context.Background(), []string{"proxy-status", "--debug-address", addr, "nobody.default"}, &out, &errs); err == nil {
		t.Fatal("an unknown proxy name was not an error")
	}
}

// TestProxyStatusStates: each state is shown with the version it is about,
// and the NACK's error is printed under the table.
func TestProxyStatusStates(t *testing.T) {
	now := time.Now()
	proxies := []runner.ProxySync{{
		Proxy: "a.default", Flavor: "grpc", UserAgent: "gRPC Go", Streams: 1,
		Types: map[string]runner.TypeSync{
			"Cluster":               {Status: runner.SyncSynced, SentVersion: "1111111111111111", AckedVersion: "1111111111111111", InSync: true},
			"ClusterLoadAssignment": {Status: runner.SyncStale, SentVersion: "2222222222222222", AckedVersion: "1111111111111111"},
			"Listener": {Status: runner.SyncNACKed, SentVersion: "3333333333333333", AckedVersion: "1111111111111111",
				LastNACK: &runner.NACKSync{Version: "3333333333333333", Nonce: "7", Message: "duplicate domain", Time: now}},
			"RouteConfiguration": {Status: runner.SyncNotSent},
		},
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/debug/syncz" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(proxies)
	}))
	defer srv.Close()
	var out, errs bytes.Buffer
	if err := run(context.Background(), []string{"proxy-status", "--debug-address", srv.URL}, &out, &errs); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", out.String())
	want := regexp.MustCompile(`(?m)^a\.default\s+grpc\s+SYNCED \(11111111\)\s+STALE \(22222222\)\s+NACKED \(33333333\)\s+NOT SENT\s+NOT SENT$`)
	if !want.MatchString(out.String()) {
		t.Fatalf("table:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "a.default LDS rejected version 33333333 at ") || !strings.Contains(out.String(), ": duplicate domain") {
		t.Fatalf("no NACK line:\n%s", out.String())
	}

	proxies = nil
	out.Reset()
	if err := run(context.Background(), []string{"proxy-status", "--debug-address", srv.URL}, &out, &errs); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out.String()) != "no proxies connected" {
		t.Fatalf("empty table: %q", out.String())
	}
}

// TestProxyStatusUnreachable: no server, an error (and a non-zero exit).
func TestProxyStatusUnreachable(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(testbed.FreePort(t))
	var out, errs bytes.Buffer
	err := run(context.Background(), []string{"proxy-status", "--debug-address", addr, "--timeout", "2s"}, &out, &errs)
	if err == nil || !strings.Contains(err.Error(), "cannot reach") {
		t.Fatalf("err = %v", err)
	}
}

// TestServeDebugAddress: `minimesh serve` serves the debug endpoints on
// --debug-address, where proxy-status finds them; a taken address is an
// error at start, not a silent second instance.
func TestServeDebugAddress(t *testing.T) {
	debugAddr := "127.0.0.1:" + strconv.Itoa(testbed.FreePort(t))
	serve := func(ctx context.Context) error {
		return run(ctx, []string{"serve", "--config-dir", "../../examples/canary", "--insecure-xds", "--ca-dir", t.TempDir(),
			"--xds-address", "127.0.0.1:0", "--metrics-address", "", "--debug-address", debugAddr}, io.Discard, io.Discard)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	var out, errs bytes.Buffer
	deadline := time.Now().Add(10 * time.Second)
	for {
		out.Reset()
		err := run(context.Background(), []string{"proxy-status", "--debug-address", debugAddr}, &out, &errs)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy-status: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.TrimSpace(out.String()) != "no proxies connected" {
		t.Fatalf("proxy-status: %q", out.String())
	}

	err := serve(context.Background())
	if err == nil || !strings.Contains(err.Error(), "debug address") {
		t.Fatalf("a second serve on a taken debug address: %v", err)
	}
}
