package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/grpclog"

	"github.com/minimesh/minimesh/bootstrap"
	"github.com/minimesh/minimesh/certs"
	"github.com/minimesh/minimesh/examples"
	"github.com/minimesh/minimesh/internal/demoapp"
	"github.com/minimesh/minimesh/internal/logging"
	"github.com/minimesh/minimesh/runner"
)

// demoPhase is one step of the demo: the weights written to the YAML.
type demoPhase struct {
	v1, v2 int
	story  string
}

var demoPhases = []demoPhase{
	{90, 10, "Canary: 90% of calls to v1, 10% to the new v2 (the blog's VirtualService)."},
	{50, 50, "v2 looks healthy: shift to 50/50 by editing the weights."},
	{0, 100, "Full rollout: every call to v2."},
	{100, 0, "Something is wrong with v2? Roll back instantly: 100% to v1."},
}

// run parses the flags and plays the demo until its last step or ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("minimesh-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	phaseLen := fs.Duration("phase", 6*time.Second, "how long each weight setting is shown")
	workers := fs.Int("clients", 4, "concurrent callers in the demo client")
	rate := fs.Int("rate", 2000, "calls per second, in total (0: as fast as possible)")
	level := fs.String("log-level", "error", "minimesh's own log level during the demo")
	v1Port := fs.Int("v1-port", 50051, "port of backend v1 on 127.0.0.1 (written into workloads.yaml)")
	v2Port := fs.Int("v2-port", 50052, "port of backend v2 on 127.0.0.1 (written into workloads.yaml)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := logging.New(*level, stderr)
	if err != nil {
		return err
	}
	if *level != "debug" {
		// gRPC's own logs (backends entering serving mode, ...) would bury
		// the demo's output.
		grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, io.Discard))
	}
	d, err := startDemo(ctx, log, stdout, map[string]int{"v1": *v1Port, "v2": *v2Port})
	if err != nil {
		return err
	}
	defer d.stop()
	return d.play(ctx, *phaseLen, *workers, *rate)
}

// demo is the running demo: control plane, backends, client.
type demo struct {
	out      io.Writer
	dir      string
	cp       *runner.ControlPlane
	backends []*demoapp.Backend
	client   *demoapp.Client // in the mesh: xDS, certificate
	plain    *demoapp.Client // outside the mesh: straight to v1, plaintext
	cancel   context.CancelFunc
}

// startDemo writes the canary YAML to a temporary directory, starts
// minimesh on it and the two backends, and dials the client.
func startDemo(ctx context.Context, log *zap.Logger, out io.Writer, ports map[string]int) (*demo, error) {
	dir, err := os.MkdirTemp("", "minimesh-demo-")
	if err != nil {
		return nil, err
	}
	if err := writeCanary(dir, ports); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	d := &demo{out: out, dir: dir, cancel: cancel}
	fmt.Fprintf(out, `minimesh-demo: a canary release with proxyless gRPC, all in this process, on loopback.

  * minimesh serves the Istio YAML in %s
    (the blog's DestinationRule and VirtualService, plus a ServiceEntry and two WorkloadEntries).
  * Two gRPC servers, my-app v1 and v2, get their listeners from minimesh over xDS.
  * A gRPC client dials "xds:///my-app": minimesh tells it the routes (weights), clusters
    (subsets v1 and v2) and endpoints. The client picks v1 or v2 for each call by itself.
  * Every few seconds the demo edits virtual-service.yaml, as you would. minimesh sees the
    edit, rebuilds, and pushes the new route to the client. Nothing restarts.

`, dir)

	// Plaintext xDS on loopback, said out loud: the demo's proxies have no
	// client certificates. The CA lives in the demo's temporary directory.
	cp, err := runner.Start(ctx, runner.Config{ConfigDir: dir, XDSAddress: "127.0.0.1:0", Log: log,
		InsecureXDS: true, CADir: filepath.Join(dir, ".ca")})
	if err != nil {
		d.stop()
		return nil, err
	}
	d.cp = cp
	ca, err := certs.LoadOrCreate(certs.Options{Dir: filepath.Join(dir, ".ca")})
	if err != nil {
		d.stop()
		return nil, err
	}
	// Each process gets its workload certificate as files (gRPC's
	// file_watcher certificate provider reads them), as `minimesh certs
	// issue` would write them.
	boot := func(node, serviceAccount string) ([]byte, error) {
		c, err := ca.Issue(certs.Identity{Namespace: "default", ServiceAccount: serviceAccount})
		if err != nil {
			return nil, err
		}
		certDir := filepath.Join(dir, ".certs", node)
		if err := certs.WriteFiles(certDir, c, ca.TrustBundlePEM()); err != nil {
			return nil, err
		}
		return bootstrap.GRPC(bootstrap.GRPCOptions{NodeID: node, XDSAddress: cp.Addr.String(), CertDir: certDir})
	}
	for _, version := range []string{"v1", "v2"} {
		addr := fmt.Sprintf("127.0.0.1:%d", ports[version])
		b, err := boot("my-app-"+version+".default", "my-app")
		if err != nil {
			d.stop()
			return nil, err
		}
		backend, err := demoapp.StartBackend(version, addr, b)
		if err != nil {
			d.stop()
			return nil, fmt.Errorf("%w (the ports are set in %s)", err, filepath.Join(dir, "workloads.yaml"))
		}
		d.backends = append(d.backends, backend)
	}
	b, err := boot("demo-client.default", "demo-client")
	if err != nil {
		d.stop()
		return nil, err
	}
	if d.client, err = demoapp.Dial("xds:///my-app", b); err != nil {
		d.stop()
		return nil, err
	}
	if d.plain, err = demoapp.DialDirect(fmt.Sprintf("127.0.0.1:%d", ports["v1"])); err != nil {
		d.stop()
		return nil, err
	}
	fmt.Fprintf(out, "minimesh xDS server: %s   backends: v1 127.0.0.1:%d, v2 127.0.0.1:%d\n\n", cp.Addr, ports["v1"], ports["v2"])
	return d, nil
}

// writeCanary copies the embedded canary example into dir, with the
// backends' ports set.
func writeCanary(dir string, ports map[string]int) error {
	return fs.WalkDir(examples.Canary, "canary", func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		data, err := examples.Canary.ReadFile(path)
		if err != nil {
			return err
		}
		if filepath.Base(path) == "workloads.yaml" {
			text := strings.Replace(string(data), "grpc: 50051", fmt.Sprintf("grpc: %d", ports["v1"]), 1)
			text = strings.Replace(text, "grpc: 50052", fmt.Sprintf("grpc: %d", ports["v2"]), 1)
			data = []byte(text + demoClientWorkload)
		}
		return os.WriteFile(filepath.Join(dir, filepath.Base(path)), data, 0o644)
	})
}

// stop stops everything and removes the temporary directory.
func (d *demo) stop() {
	if d.client != nil {
		d.client.Close()
	}
	if d.plain != nil {
		d.plain.Close()
	}
	for _, b := range d.backends {
		b.Stop()
	}
	if d.cp != nil {
		d.cp.Stop()
	}
	d.cancel()
	os.RemoveAll(d.dir)
}

// tally counts answers per version.
type tally struct {
	v1, v2, errs atomic.Int64
	mu           sync.Mutex
	lastErr      string
}

func (t *tally) take() (v1, v2, errs int64, lastErr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.v1.Swap(0), t.v2.Swap(0), t.errs.Swap(0), t.lastErr
}

// play runs the phases, printing the live share once a second.
func (d *demo) play(ctx context.Context, phaseLen time.Duration, workers, rate int) error {
	var t tally
	callCtx, stopCalls := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopCalls(); wg.Wait() }()
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.callLoop(callCtx, &t, workers, rate)
		}()
	}

	type result struct {
		phase       demoPhase
		share       float64
		calls       int64
		ackDuration time.Duration
	}
	var results []result
	for i, ph := range demoPhases {
		fmt.Fprintf(d.out, "── step %d/%d: %s\n", i+1, len(demoPhases), ph.story)
		var ack time.Duration
		if i > 0 {
			var err error
			if ack, err = d.setWeights(ph); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(d.out, "   virtual-service.yaml says: v1 weight %d, v2 weight %d\n", ph.v1, ph.v2)
		}
		t.take() // the calls of the previous step do not count
		var sum1, sum2 int64
		ticker := time.NewTicker(time.Second)
		for s := 0; s < int(phaseLen/time.Second); s++ {
			select {
			case <-ctx.Done():
				ticker.Stop()
				fmt.Fprintln(d.out, "\ninterrupted; stopping cleanly.")
				return nil
			case <-ticker.C:
			}
			v1, v2, errs, lastErr := t.take()
			sum1, sum2 = sum1+v1, sum2+v2
			fmt.Fprintln(d.out, "   "+shareLine(v1, v2, errs, lastErr))
		}
		ticker.Stop()
		share := 0.0
		if sum1+sum2 > 0 {
			share = 100 * float64(sum1) / float64(sum1+sum2)
		}
		results = append(results, result{ph, share, sum1 + sum2, ack})
	}
	fmt.Fprintln(d.out, "\nSummary (measured on real gRPC calls):")
	fmt.Fprintln(d.out, "   weights in YAML   v1 share measured   calls   edit -> client ACK")
	for _, r := range results {
		ack := "(start)"
		if r.ackDuration > 0 {
			ack = r.ackDuration.Round(time.Millisecond).String()
		}
		fmt.Fprintf(d.out, "   v1 %3d / v2 %3d   %6.1f%%            %6d   %s\n", r.phase.v1, r.phase.v2, r.share, r.calls, ack)
	}
	fmt.Fprintf(d.out, `
What happened: each edit of virtual-service.yaml changed one Envoy RouteConfiguration
(weighted_clusters: outbound|80|v1|my-app... and outbound|80|v2|my-app...), and minimesh
pushed only that. When a version comes back from weight 0, gRPC asks again for its
cluster and endpoints (it forgets clusters it has no weight for), so those are sent too,
and a few calls may fail with "unknown cluster" while they arrive: counted as errors above.
Try it yourself: minimesh serve --config-dir examples/canary --insecure-xds, and read
examples/canary/README.md for every YAML field and the Envoy field it becomes.

`)
	return d.playMTLS(ctx, phaseLen)
}

// callLoop calls my-app until ctx ends, at its share of rate.
func (d *demo) callLoop(ctx context.Context, t *tally, workers, rate int) {
	var pace <-chan time.Time
	if rate > 0 {
		tick := time.NewTicker(time.Second * time.Duration(workers) / time.Duration(rate))
		defer tick.Stop()
		pace = tick.C
	}
	for ctx.Err() == nil {
		if pace != nil {
			select {
			case <-pace:
			case <-ctx.Done():
				return
			}
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		v, err := d.client.Call(cctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			t.errs.Add(1)
			t.mu.Lock()
			t.lastErr = err.Error()
			t.mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		case v == "v1":
			t.v1.Add(1)
		case v == "v2":
			t.v2.Add(1)
		}
	}
}

// shareLine renders one second of traffic as a bar.
func shareLine(v1, v2, errs int64, lastErr string) string {
	total := v1 + v2
	if total == 0 {
		line := "no successful calls this second"
		if errs > 0 {
			line += fmt.Sprintf(" (%d errors, last: %s)", errs, lastErr)
		}
		return line
	}
	p1 := 100 * float64(v1) / float64(total)
	const width = 40
	n1 := int(p1/100*width + 0.5)
	line := fmt.Sprintf("v1 %5.1f%% %s%s v2 %5.1f%%   (%d calls/s)", p1,
		strings.Repeat("█", n1), strings.Repeat("░", width-n1), 100-p1, total)
	if errs > 0 {
		line += fmt.Sprintf("  %d errors", errs)
	}
	return line
}

var demoWeightRE = regexp.MustCompile(`(?m)^(\s+weight: )\d+$`)

// setWeights edits virtual-service.yaml and waits until the client has
// acknowledged the new route configuration.
func (d *demo) setWeights(ph demoPhase) (time.Duration, error) {
	path := filepath.Join(d.dir, "virtual-service.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	before := d.ackedRoutes()
	pushesBefore := d.pushes()
	i := 0
	edited := demoWeightRE.ReplaceAllStringFunc(string(data), func(m string) string {
		w := ph.v1
		if i == 1 {
			w = ph.v2
		}
		i++
		return demoWeightRE.ReplaceAllString(m, fmt.Sprintf("${1}%d", w))
	})
	if i != 2 {
		return 0, errors.New("demo: virtual-service.yaml does not have two weights")
	}
	start := time.Now()
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		return 0, err
	}
	fmt.Fprintf(d.out, "   edited virtual-service.yaml: v1 weight %d, v2 weight %d\n", ph.v1, ph.v2)
	for time.Since(start) < 5*time.Second {
		if v := d.ackedRoutes(); v != "" && v != before {
			took := time.Since(start)
			fmt.Fprintf(d.out, "   minimesh pushed %s; the client acknowledged it %v after the edit\n",
				pushedSince(pushesBefore, d.pushes()), took.Round(time.Millisecond))
			return took, nil
		}
		time.Sleep(2 * time.Millisecond)
	}
	fmt.Fprintln(d.out, "   (the client has not acknowledged a new route configuration after 5s)")
	return 0, nil
}

// ackedRoutes is the route configuration version the client last accepted.
func (d *demo) ackedRoutes() string {
	p, ok := d.cp.Server.Tracker.Proxy("demo-client.default")
	if !ok {
		return ""
	}
	if ts := p.Types[resourcev3.RouteType]; ts != nil {
		return ts.AckedVersion
	}
	return ""
}

// demoTypes are the xDS types whose pushes the demo reports.
var demoTypes = []string{"Listener", "RouteConfiguration", "Cluster", "ClusterLoadAssignment"}

// pushes counts the responses sent so far, by type.
func (d *demo) pushes() map[string]float64 {
	out := map[string]float64{}
	for _, t := range demoTypes {
		out[t] = d.cp.Server.Metrics.Pushes(t)
	}
	return out
}

// pushedSince describes what was pushed between two counts.
func pushedSince(before, after map[string]float64) string {
	var sent, unchanged []string
	for _, t := range demoTypes {
		if n := after[t] - before[t]; n > 0 {
			sent = append(sent, fmt.Sprintf("%d %s", int(n), t))
		} else {
			unchanged = append(unchanged, t)
		}
	}
	switch {
	case len(sent) == 0:
		return "nothing"
	case len(unchanged) == 0:
		return strings.Join(sent, ", ")
	}
	return strings.Join(sent, ", ") + " (no " + strings.Join(unchanged, ", ") + ")"
}
