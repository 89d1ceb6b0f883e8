// Package interop proves minimesh against xDS clients that nobody here wrote: @grpc/grpc-js-xds
// (Node.js) and gRPC C-core (Debian's python3-grpcio). Each client resolves xds:///my-app through
// minimesh, follows LDS -> RDS -> CDS -> EDS and sends real RPCs to two backends; the tests check
// the 90/10 canary split and that a weight change reaches the client while it is running.
//
// The runtimes are installed by `bash .ci/install-interop.sh`. Without them the tests skip, unless
// MINIMESH_REQUIRE_INTEROP=1 (set by CI), in which case they fail.
package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	target = "xds:///my-app"

	splitRPCs     = 4000
	splitMinOK    = 3900 // a few errors (e.g. while the first config arrives) are tolerated
	splitV1Want   = 90.0
	splitV1Margin = 3.0

	followSeconds  = 20
	followRate     = 1000 // RPCs per second: enough for a steady per-second share, light on CPU
	followV1Want   = 50.0
	followV1Margin = 8.0
	// Seconds after the one in which SetWeights was called that are not measured: minimesh
	// reloads within ~100ms and pushes RDS at once, so two seconds is ample.
	followSettleSeconds = 2
	// The new split must show in some second within this many seconds of the change.
	followMaxLagSeconds = 5
)

// canary is what the tests need from the test bed (testbed.Canary).
type canary interface {
	GRPCBootstrap(t testing.TB, nodeID string) []byte
	SetWeights(t testing.TB, v1, v2 int)
}

// xdsClient is one client implementation: how to start it with the given arguments.
type xdsClient struct {
	name    string
	command func(ctx context.Context, args ...string) *exec.Cmd
}

const installHint = "install the interop runtimes with `bash .ci/install-interop.sh` (as root: " +
	"apt-get installs python3-grpcio, npm ci installs interop/node/node_modules)"

// requireOrSkip fails the test when the CI demands the interop runtimes, and skips it loudly
// otherwise.
func requireOrSkip(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("MINIMESH_REQUIRE_INTEROP") == "1" {
		t.Fatalf("interop client not runnable: %s.\nMINIMESH_REQUIRE_INTEROP=1, so this is a failure: %s", why, installHint)
	}
	t.Skipf("\n*** SKIPPING xDS INTEROP TEST: %s.\n*** To run it, %s,\n*** then: go test ./interop/ -v\n"+
		"*** (set MINIMESH_REQUIRE_INTEROP=1 to make a missing runtime fail instead of skip)", why, installHint)
}

func nodeClient(t *testing.T) xdsClient {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		requireOrSkip(t, "node (Node.js) is not on PATH")
	}
	dir, err := filepath.Abs("node")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@grpc", "grpc-js-xds", "package.json")); err != nil {
		requireOrSkip(t, "interop/node/node_modules is missing (@grpc/grpc-js-xds not installed)")
	}
	return xdsClient{name: "node", command: func(ctx context.Context, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, node, append([]string{filepath.Join(dir, "client.js")}, args...)...)
		cmd.Dir = dir
		return cmd
	}}
}

// pythonClient finds an interpreter that can import Debian's grpc module. Debian installs
// python3-grpcio for /usr/bin/python3 only, so that one is tried before whatever python3 is first
// on PATH (often pyenv or a venv). MINIMESH_PYTHON overrides both.
func pythonClient(t *testing.T) xdsClient {
	t.Helper()
	var candidates []string
	if p := os.Getenv("MINIMESH_PYTHON"); p != "" {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, "/usr/bin/python3")
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	var tried []string
	for _, py := range candidates {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, py, "-c", "import grpc; print(grpc.__version__)").CombinedOutput()
		cancel()
		if err != nil {
			tried = append(tried, py)
			continue
		}
		t.Logf("python: %s, grpcio %s", py, strings.TrimSpace(string(out)))
		script, err := filepath.Abs(filepath.Join("python", "client.py"))
		if err != nil {
			t.Fatal(err)
		}
		return xdsClient{name: "python", command: func(ctx context.Context, args ...string) *exec.Cmd {
			return exec.CommandContext(ctx, py, append([]string{script}, args...)...)
		}}
	}
	requireOrSkip(t, fmt.Sprintf("no python3 that can `import grpc` (tried %s; Debian's python3-grpcio not installed)",
		strings.Join(tried, ", ")))
	return xdsClient{}
}

// second is one line of client output: the counts of one second, or (Total) of the whole run.
type second struct {
	T          int            `json:"t"`
	Total      bool           `json:"total"`
	V1         int            `json:"v1"`
	V2         int            `json:"v2"`
	Errors     int            `json:"errors"`
	FirstError string         `json:"first_error"`
	ErrorKinds map[string]int `json:"error_kinds"`
	Reason     string         `json:"reason"`
}

func (s second) ok() int { return s.V1 + s.V2 }

// v1Share is v1's percentage of the successful RPCs.
func (s second) v1Share() float64 {
	if s.ok() == 0 {
		return math.NaN()
	}
	return 100 * float64(s.V1) / float64(s.ok())
}

// tailBuffer keeps the last max bytes written to it (the clients' stderr, for failure messages).
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = append([]byte(nil), b.buf[len(b.buf)-b.max:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// run is a started client whose output lines arrive on lines (closed when the client exits).
type run struct {
	cmd    *exec.Cmd
	lines  chan second
	stderr *tailBuffer
	done   chan error
}

func startClient(t *testing.T, ctx context.Context, c xdsClient, bootstrapPath string, args ...string) *run {
	t.Helper()
	cmd := c.command(ctx, append([]string{"--target", target}, args...)...)
	env := make([]string, 0, len(os.Environ())+1)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GRPC_XDS_BOOTSTRAP") { // GRPC_XDS_BOOTSTRAP and ..._CONFIG
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "GRPC_XDS_BOOTSTRAP="+bootstrapPath)
	cmd.WaitDelay = 5 * time.Second
	r := &run{cmd: cmd, lines: make(chan second, 256), stderr: &tailBuffer{max: 8 << 10}, done: make(chan error, 1)}
	cmd.Stderr = r.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s client: %v", c.name, err)
	}
	t.Logf("%s client started: %s", c.name, strings.Join(cmd.Args, " "))
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var s second
			if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
				fmt.Fprintf(r.stderr, "[test] unparsable stdout line: %q\n", sc.Text())
				continue
			}
			r.lines <- s
		}
		close(r.lines)
		r.done <- cmd.Wait()
	}()
	return r
}

// collect reads the client's output until it exits, calling onSecond (if not nil) for each
// per-second line as it arrives, and returns the per-second lines and the total line.
func (r *run) collect(t *testing.T, name string, onSecond func(second)) ([]second, second) {
	t.Helper()
	var seconds []second
	var total second
	var gotTotal bool
	for s := range r.lines {
		if s.Total {
			total, gotTotal = s, true
			continue
		}
		seconds = append(seconds, s)
		if onSecond != nil {
			onSecond(s)
		}
	}
	err := <-r.done
	if !gotTotal {
		t.Fatalf("%s client printed no total line (exit: %v); stderr:\n%s", name, err, r.stderr)
	}
	if err != nil {
		t.Fatalf("%s client failed (%v): %s; first error %q; stderr:\n%s", name, err, describe(total), total.FirstError, r.stderr)
	}
	return seconds, total
}

func describe(s second) string {
	return fmt.Sprintf("v1=%d v2=%d errors=%d (v1 share %.1f%%)", s.V1, s.V2, s.Errors, s.v1Share())
}

func writeBootstrap(t *testing.T, c canary, nodeID string) string {
	t.Helper()
	b := c.GRPCBootstrap(t, nodeID)
	path := filepath.Join(t.TempDir(), "bootstrap.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("xDS interop tests run real clients; skipped in -short mode")
	}
	for _, lang := range []struct {
		name string
		find func(*testing.T) xdsClient
	}{{"node", nodeClient}, {"python", pythonClient}} {
		t.Run(lang.name, func(t *testing.T) {
			c := lang.find(t)
			cb := startCanary(t)
			bootstrap := writeBootstrap(t, cb, "interop-"+c.name+".default")
			t.Run("split", func(t *testing.T) { testSplit(t, c, bootstrap) })
			t.Run("follow", func(t *testing.T) { testFollow(t, c, cb, bootstrap) })
		})
	}
}

// testSplit sends splitRPCs RPCs at the initial 90/10 weights and checks the split.
func testSplit(t *testing.T, c xdsClient, bootstrap string) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	start := time.Now()
	r := startClient(t, ctx, c, bootstrap, "--count", fmt.Sprint(splitRPCs), "--timeout", "100")
	_, total := r.collect(t, c.name, nil)
	t.Logf("%s: %d RPCs in %v: %s", c.name, splitRPCs, time.Since(start).Round(time.Millisecond), describe(total))
	if total.Errors > 0 {
		t.Logf("%s: %d RPC errors; first: %q; kinds: %v", c.name, total.Errors, total.FirstError, total.ErrorKinds)
	}
	if total.ok() < splitMinOK {
		t.Errorf("%s: only %d of %d RPCs succeeded (want >= %d); first error %q; stderr:\n%s",
			c.name, total.ok(), splitRPCs, splitMinOK, total.FirstError, r.stderr)
	}
	if share := total.v1Share(); !(math.Abs(share-splitV1Want) <= splitV1Margin) {
		t.Errorf("%s: v1 got %.1f%% of the traffic, want %.0f%% ± %.0f (%s)",
			c.name, share, splitV1Want, splitV1Margin, describe(total))
	}
}

// testFollow runs the client for followSeconds, switches the weights to 50/50 as soon as it
// reports a successful second, and checks that the per-second split follows.
func testFollow(t *testing.T, c xdsClient, cb canary, bootstrap string) {
	ctx, cancel := context.WithTimeout(context.Background(), (followSeconds+40)*time.Second)
	defer cancel()
	r := startClient(t, ctx, c, bootstrap, "--seconds", fmt.Sprint(followSeconds), "--rate", fmt.Sprint(followRate))
	changedAt := -1 // the t of the second reported just before SetWeights was called
	seconds, total := r.collect(t, c.name, func(s second) {
		if changedAt < 0 && s.ok() > 0 {
			changedAt = s.T
			cb.SetWeights(t, 50, 50)
			t.Logf("%s: second %d served %s; weights set to 50/50", c.name, s.T, describe(s))
		}
	})
	t.Logf("%s: %d seconds: %s", c.name, len(seconds), describe(total))
	if total.Errors > 0 {
		t.Logf("%s: %d RPC errors; first: %q; kinds: %v", c.name, total.Errors, total.FirstError, total.ErrorKinds)
	}
	if changedAt < 0 {
		t.Fatalf("%s: no RPC succeeded in %d seconds; first error %q; stderr:\n%s", c.name, followSeconds, total.FirstError, r.stderr)
	}

	var perSecond []string
	var after second
	firstNew := -1
	for _, s := range seconds {
		perSecond = append(perSecond, fmt.Sprintf("t=%d %d/%d/%d", s.T, s.V1, s.V2, s.Errors))
		if s.T <= changedAt {
			continue
		}
		if firstNew < 0 && s.ok() > 0 && math.Abs(s.v1Share()-followV1Want) <= followV1Margin {
			firstNew = s.T
		}
		if s.T > changedAt+followSettleSeconds && s.T <= followSeconds {
			after.V1 += s.V1
			after.V2 += s.V2
			after.Errors += s.Errors
		}
	}
	t.Logf("%s: per second (v1/v2/errors), weights changed after t=%d: %s", c.name, changedAt, strings.Join(perSecond, ", "))
	if firstNew < 0 {
		t.Errorf("%s: the split never moved to %.0f%% ± %.0f after the change", c.name, followV1Want, followV1Margin)
	} else {
		t.Logf("%s: first second at the new split: t=%d (%d s after the change)", c.name, firstNew, firstNew-changedAt)
		if firstNew-changedAt > followMaxLagSeconds {
			t.Errorf("%s: the new split took %d s to show, want <= %d", c.name, firstNew-changedAt, followMaxLagSeconds)
		}
	}
	if after.ok() == 0 {
		t.Fatalf("%s: no successful RPC more than %d s after the change", c.name, followSettleSeconds)
	}
	t.Logf("%s: after settling (t>%d): %s", c.name, changedAt+followSettleSeconds, describe(after))
	if share := after.v1Share(); !(math.Abs(share-followV1Want) <= followV1Margin) {
		t.Errorf("%s: after the change v1 got %.1f%% of the traffic, want %.0f%% ± %.0f", c.name, share, followV1Want, followV1Margin)
	}
	// Every settled second must be at the new split too (not just the sum).
	for _, s := range seconds {
		if s.T > changedAt+followSettleSeconds && s.ok() >= 100 && math.Abs(s.v1Share()-followV1Want) > followV1Margin {
			t.Errorf("%s: second %d: v1 got %.1f%% (%s), want %.0f%% ± %.0f", c.name, s.T, s.v1Share(), describe(s), followV1Want, followV1Margin)
		}
	}
}
