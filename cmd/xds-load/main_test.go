package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minimesh/minimesh/runner"
)

// runLoad runs xds-load with args and returns its JSON report.
func runLoad(t *testing.T, args ...string) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := runMain(ctx, append(args, "--json", "--timeout", "25s"), &stdout, &stderr)
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var rep Report
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("exit %d, no JSON report: %v\nstdout:\n%s\nstderr:\n%s", code, err, stdout.String(), stderr.String())
	}
	if code != 0 || rep.Correctness.Violations != 0 {
		t.Fatalf("exit %d, %d violations:\n%s\nstderr:\n%s", code, rep.Correctness.Violations, stdout.String(), stderr.String())
	}
	for _, want := range []string{"full config", "VirtualService weight change", "endpoint added/removed", "PeerAuthentication change",
		"control plane CPU", "RSS", "bytes received", "violations: none"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, stdout.String())
		}
	}
	return &rep
}

// checkReport asserts that every proxy got complete and every change
// reached every affected proxy, and that the figures are there.
func checkReport(t *testing.T, rep *Report, proxies int, inProcess bool) {
	t.Helper()
	c := rep.Connect
	if c.Complete != proxies || c.FromStart.N != proxies || c.AllCompleteMs <= 0 || c.FromStart.P99 > c.FromStart.Max {
		t.Errorf("connect: %+v, want %d complete proxies", c, proxies)
	}
	if len(rep.Changes) != 3 {
		t.Fatalf("%d change kinds reported, want 3", len(rep.Changes))
	}
	wantType := map[string]string{kindVS: "RDS", kindEndpoint: "EDS", kindPA: "LDS"}
	for _, ch := range rep.Changes {
		if ch.Iterations != 1 || ch.Affected == 0 || ch.Missed != 0 || ch.Incomplete != 0 {
			t.Errorf("%s: %+v", ch.Kind, ch)
		}
		if ch.Propagation.N != ch.Affected || ch.Propagation.Max <= 0 || ch.Propagation.P50 > ch.Propagation.Max {
			t.Errorf("%s: propagation %+v over %d affected proxies", ch.Kind, ch.Propagation, ch.Affected)
		}
		if ch.Responses[wantType[ch.Kind]] < int64(ch.Affected) {
			t.Errorf("%s: responses %v, want at least %d %s", ch.Kind, ch.Responses, ch.Affected, wantType[ch.Kind])
		}
	}
	if rep.Bytes.TotalMiB <= 0 || rep.Bytes.PerProxy.N != proxies || rep.Bytes.PerProxy.P50 <= 0 {
		t.Errorf("bytes: %+v", rep.Bytes)
	}
	k := rep.Correctness
	if k.Responses < 4*proxies || k.DistinctResources == 0 || k.NACKs != 0 || k.Problems != 0 {
		t.Errorf("correctness: %+v", k)
	}
	res := rep.Resources
	cpu := res.ControlPlaneCPUSeconds
	if inProcess {
		cpu = res.ProcessCPUSeconds // the split of a run this short may round to zero
		if res.Split == nil {
			t.Errorf("in-process: no CPU split by label: %+v", res)
		}
	}
	if cpu <= 0 || res.RSSMiB <= 0 || res.PeakRSSMiB < res.RSSMiB {
		t.Errorf("resources: %+v", res)
	}
	// The peak is a high-water mark: it never falls from phase to phase,
	// and the phase that reached it is named.
	last := rep.Connect.PeakRSSMiB
	for _, ch := range rep.Changes {
		if ch.PeakRSSMiB < last {
			t.Errorf("peak RSS fell from %v to %v MiB during the %s changes", last, ch.PeakRSSMiB, ch.Kind)
		}
		last = ch.PeakRSSMiB
	}
	if last <= 0 || last > res.PeakRSSMiB || res.PeakPhase == "" {
		t.Errorf("peak RSS %v MiB after the last phase, %v at the end, reached in phase %q", last, res.PeakRSSMiB, res.PeakPhase)
	}
	// The split of RSS: both parts present, and adding up to it (read a
	// moment apart, hence the tolerance).
	if res.AnonMiB <= 0 || res.FileMiB <= 0 || math.Abs(res.AnonMiB+res.FileMiB-res.RSSMiB) > res.RSSMiB/4 {
		t.Errorf("RSS %v MiB, split into %v anonymous and %v from files", res.RSSMiB, res.AnonMiB, res.FileMiB)
	}
}

// TestInProcessSotW: 20 state-of-the-world Envoys on a 3-service mesh,
// each change once.
func TestInProcessSotW(t *testing.T) {
	rep := runLoad(t, "--services", "3", "--workloads", "20", "--proxies", "20", "--changes", "1")
	checkReport(t, rep, 20, true)
	if rep.Mode != "in-process" || rep.Protocol != "sotw" || rep.Client != ClientLean {
		t.Errorf("mode %s, protocol %s, client %s", rep.Mode, rep.Protocol, rep.Client)
	}
}

// TestInProcessDelta: 10 delta Envoys, paced, with CPU profiles written.
func TestInProcessDelta(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "cpu")
	rep := runLoad(t, "--services", "3", "--workloads", "10", "--proxies", "10", "--changes", "1", "--delta",
		"--connect-rate", "200", "--cpuprofile", prefix, "--client", "grpc-go")
	checkReport(t, rep, 10, true)
	if rep.Protocol != "delta" || rep.Client != ClientGRPCGo || rep.Connect.FromDial.N != 10 {
		t.Errorf("protocol %s, client %s, connect %+v", rep.Protocol, rep.Client, rep.Connect)
	}
	if len(rep.ProfileFiles) != 4 {
		t.Errorf("profiles %v, want one per phase", rep.ProfileFiles)
	}
	for _, f := range rep.ProfileFiles {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
}

// TestExternal: --generate writes the mesh, a server runs on it (here in
// the test's process, standing for `minimesh serve`), and xds-load drives
// it over --xds, editing its directory; the directory is restored after.
func TestExternal(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if code := runMain(context.Background(), []string{"--generate", dir, "--services", "3"}, &out, &out); code != 0 {
		t.Fatalf("--generate: exit %d: %s", code, out.String())
	}
	before := listDir(t, dir)
	cp, err := runner.Start(context.Background(), runner.Config{ConfigDir: dir, XDSAddress: "127.0.0.1:0",
		RootNamespace: "istio-system", CADir: t.TempDir(), InsecureXDS: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Stop()
	rep := runLoad(t, "--xds", cp.Addr.String(), "--config-dir", dir, "--pid", strconv.Itoa(os.Getpid()),
		"--services", "3", "--proxies", "6", "--changes", "1")
	checkReport(t, rep, 6, false)
	if rep.Mode != "external" {
		t.Errorf("mode %s", rep.Mode)
	}
	if after := listDir(t, dir); after != before {
		t.Errorf("config dir not restored: %s, was %s", after, before)
	}
	if rep.Resources.LoadGeneratorBallastMiB != 256 {
		t.Errorf("the load generator's ballast is %v MiB; want the default 256", rep.Resources.LoadGeneratorBallastMiB)
	}
	if rep.Resources.LoadGeneratorPrefaultMiB != 64 {
		t.Errorf("the load generator touched %v MiB beforehand; want the default 64", rep.Resources.LoadGeneratorPrefaultMiB)
	}
}

// TestUsage: bad flags are refused with exit code 2.
func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--services", "0"},
		{"--kinds", "nope"},
		{"--client", "nope"},
		{"--xds", "127.0.0.1:1"},
		{"--pid", "1"},
		{"--serve-inprocess=false"},
		{"extra"},
	} {
		var out bytes.Buffer
		if code := runMain(context.Background(), args, &out, &out); code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", args, code, out.String())
		}
	}
}

func listDir(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		parts = append(parts, e.Name()+":"+strconv.Itoa(len(data)))
	}
	return strings.Join(parts, " ")
}
