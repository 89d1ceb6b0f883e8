package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"testing"

	"github.com/minimesh/minimesh/internal/testbed"
)

// TestDemo runs the demo with short steps and checks that the
// summary shows each step's weights on real traffic.
func TestDemo(t *testing.T) {
	var out, errs bytes.Buffer
	args := []string{"--phase", "2s", "--v1-port", strconv.Itoa(testbed.FreePort(t)), "--v2-port", strconv.Itoa(testbed.FreePort(t))}
	if err := run(context.Background(), args, &out, &errs); err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errs.String())
	}
	t.Log(out.String())
	rows := regexp.MustCompile(`(?m)^\s+v1\s+(\d+) / v2\s+(\d+)\s+([\d.]+)%\s+(\d+)`).FindAllStringSubmatch(out.String(), -1)
	if len(rows) != len(demoPhases) {
		t.Fatalf("summary has %d rows, want %d", len(rows), len(demoPhases))
	}
	for i, r := range rows {
		want, _ := strconv.Atoi(r[1])
		got, _ := strconv.ParseFloat(r[3], 64)
		calls, _ := strconv.Atoi(r[4])
		if want != demoPhases[i].v1 {
			t.Errorf("row %d: weights %s/%s, want %d/%d", i, r[1], r[2], demoPhases[i].v1, demoPhases[i].v2)
		}
		if calls < 500 || got < float64(want)-5 || got > float64(want)+5 {
			t.Errorf("step %d: v1 share %.1f%% over %d calls, want %d%% ± 5 over >= 500 calls", i+1, got, calls, want)
		}
	}
	// The zero-trust steps: after STRICT, the mesh client is seen by its
	// SPIFFE ID and the plaintext client gets nothing.
	_, after, ok := bytes.Cut(out.Bytes(), []byte("step 6"))
	if !ok {
		t.Fatal("the demo did not reach the STRICT step")
	}
	strict := regexp.MustCompile(`mesh client:\s+(\d+) ok\s+(\d+) failed \(server saw (\S+)\) \| plaintext client:\s+(\d+) ok`).FindAllSubmatch(after, -1)
	if len(strict) == 0 {
		t.Fatal("no client lines after STRICT")
	}
	for _, m := range strict[len(strict)-1:] {
		if string(m[3]) != "spiffe://cluster.local/ns/default/sa/demo-client" || string(m[1]) == "0" || string(m[4]) != "0" {
			t.Errorf("under STRICT: %s", m[0])
		}
	}
	if !bytes.Contains(out.Bytes(), []byte("acknowledged it")) {
		t.Errorf("the demo did not report the client acknowledging an edit:\n%s", out.String())
	}
}
