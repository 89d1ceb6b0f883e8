// Command xds-load is minimesh's load generator: it simulates N Envoy
// sidecars, each with its own gRPC connection and ADS stream (state of the
// world or delta), against a synthetic mesh, and measures how long the
// control plane takes to give every proxy a complete config, how long
// changes take to reach every affected proxy, what it costs in CPU, memory
// and bytes, and whether everything received is correct (each resource
// passes Envoy's validation, every referenced name is present, no NACK).
//
//	xds-load --services 100 --proxies 500                  minimesh in-process
//	xds-load --generate DIR --services 100                 write the mesh for `minimesh serve`
//	xds-load --xds 127.0.0.1:15010 --config-dir DIR --pid PID --services 100 --proxies 500
//
// It exits 1 if any violation was found (or the run did not finish), 2 on
// bad usage. See docs/performance.md for the measurements.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/minimesh/minimesh/internal/logging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(runMain(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// runMain parses the flags, runs the load and prints the report; it
// returns the exit code.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("xds-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	var (
		inProcess = fs.Bool("serve-inprocess", true, "run minimesh in this process, on a temporary config directory (the default; off when --xds is given)")
		kinds     = fs.String("kinds", strings.Join(allKinds, ","), "changes to make: vs (VirtualService weights), endpoint (a WorkloadEntry added/removed), pa (mesh-wide PeerAuthentication STRICT/PERMISSIVE)")
		generate  = fs.String("generate", "", "write the synthetic mesh into this directory (for `minimesh serve --config-dir`) and exit")
		asJSON    = fs.Bool("json", false, "print the report as one JSON line at the end too")
		logLevel  = fs.String("log-level", "error", "in-process: minimesh's log level (debug, info, warn, error), on stderr")
	)
	fs.IntVar(&o.Services, "services", 10, "services in the synthetic mesh (each: 2 subsets, a VirtualService 90/10, a DestinationRule)")
	fs.IntVar(&o.Workloads, "workloads", 0, "workloads (WorkloadEntries) in all; 0 or less than 2 per service: 2 per service")
	fs.IntVar(&o.SidecarImports, "sidecar-imports", 0, "scope every proxy with an Istio Sidecar importing this many services (svc-0000 always among them); 0: no Sidecar, every proxy gets the whole mesh")
	fs.IntVar(&o.Proxies, "proxies", 100, "simulated Envoys; the first are the workloads' sidecars, the rest out-of-mesh clients load-N.default")
	fs.BoolVar(&o.Delta, "delta", false, "use delta xDS instead of state of the world")
	fs.Float64Var(&o.ConnectRate, "connect-rate", 0, "connections per second (0: all at once)")
	fs.IntVar(&o.Changes, "changes", 3, "repetitions of each change")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "the whole run")
	fs.DurationVar(&o.ChangeTimeout, "change-timeout", time.Minute, "one change reaching every affected proxy")
	fs.DurationVar(&o.Settle, "settle", 200*time.Millisecond, "quiet time after each change before checking completeness (late pushes still counted)")
	fs.DurationVar(&o.CompleteTimeout, "complete-timeout", 5*time.Second, "after each change, how long every proxy has to be complete again")
	fs.BoolVar(&o.CollectBeforeChanges, "gc-before-changes", true, "collect the load generator's own heap before each change, so that its garbage collection (gigabytes at 2000 proxies) does not land in a change's measurement; false: leave it to the runtime")
	fs.StringVar(&o.Client, "client", ClientLean, "the simulated Envoys' gRPC client: lean (one HTTP/2 connection carrying the ADS stream, as Envoy's own client; internal/envoysim/transport.go) or grpc-go (a gRPC-Go channel each, which costs several times the CPU to connect)")
	fs.Int64Var(&o.BallastMiB, "gc-ballast-mib", 256, "with --xds: pace the load generator's own garbage collection as if this many MiB more were live (a ballast that is never written, so it takes no memory), so that a small run is not collected while it is measured and the simulator does not take the cores the server is measured on; 0: the Go runtime's usual pacing (GOGC)")
	fs.Int64Var(&o.PrefaultMiB, "prefault-mib", 64, "with --xds: before the simulated Envoys are built, touch this much heap and free it, so that they are built on memory already mapped and the load generator's page faults (40% of its CPU while 500 proxies connect, on a fresh process) do not take the cores the server is measured on; 0: none")
	fs.DurationVar(&o.Hold, "hold", 0, "keep the proxies connected this long after the changes, to inspect the server (proxy-status, pprof)")
	fs.DurationVar(&o.HoldOff, "debounce", 0, "in-process: quiet time after a file change before rebuilding (0: serve's default, 20ms)")
	fs.DurationVar(&o.MaxDelay, "debounce-max", 0, "in-process: longest time from a file change to the rebuild (0: serve's default, 100ms)")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "in-process: write a CPU profile of each phase to FILE.PHASE.pprof (go tool pprof -top FILE.*.pprof)")
	fs.StringVar(&o.MemProfile, "memprofile", "", "write a heap profile of this process to FILE once every proxy holds its full config (in external mode: the simulated Envoys' memory; go tool pprof -sample_index=inuse_space)")
	fs.StringVar(&o.MutexProfile, "mutexprofile", "", "in-process: write a mutex contention profile of the whole run to FILE (where goroutines waited for locks)")
	fs.StringVar(&o.XDSAddress, "xds", "", "drive an external `minimesh serve --insecure-xds` at this address (plaintext) instead")
	fs.StringVar(&o.ConfigDir, "config-dir", "", "with --xds: the server's config directory (written by --generate); the changes are made there")
	fs.IntVar(&o.PID, "pid", 0, "with --xds: the server's process ID, for its CPU seconds and RSS from /proc")
	fs.StringVar(&o.Namespace, "namespace", "default", "namespace of the synthetic mesh")
	fs.StringVar(&o.DomainSuffix, "domain-suffix", "cluster.local", "the server's --domain-suffix")
	fs.StringVar(&o.RootNamespace, "root-namespace", "istio-system", "the server's --root-namespace (where the mesh-wide PeerAuthentication is written)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: xds-load [flags]\n\nSimulates Envoy sidecars against minimesh and measures it.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "xds-load: unexpected arguments %q\n", fs.Args())
		return 2
	}
	o.Kinds = nil
	for _, k := range strings.Split(*kinds, ",") {
		if k = strings.TrimSpace(k); k != "" {
			o.Kinds = append(o.Kinds, k)
		}
	}
	if o.Kinds == nil {
		o.Kinds = []string{}
	}
	if *generate != "" {
		if err := writeMesh(*generate, o); err != nil {
			fmt.Fprintln(stderr, "xds-load:", err)
			return 2
		}
		fmt.Fprintf(stdout, "wrote a mesh of %d services to %s; serve it with: minimesh serve --config-dir %s --insecure-xds\n",
			o.Services, *generate, *generate)
		return 0
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if explicit["serve-inprocess"] && *inProcess && o.XDSAddress != "" {
		fmt.Fprintln(stderr, "xds-load: --serve-inprocess and --xds exclude each other")
		return 2
	}
	if !*inProcess && o.XDSAddress == "" {
		fmt.Fprintln(stderr, "xds-load: --serve-inprocess=false needs --xds ADDR --config-dir DIR")
		return 2
	}
	if o.XDSAddress == "" && *logLevel != "" {
		log, err := logging.New(*logLevel, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "xds-load:", err)
			return 2
		}
		defer log.Sync() //nolint:errcheck // nothing to do on failure
		o.Log = log
	}
	o.Progress = stderr

	rep, err := Run(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "xds-load:", err)
		return 2
	}
	rep.Print(stdout)
	if *asJSON {
		data, err := json.Marshal(rep)
		if err != nil {
			fmt.Fprintln(stderr, "xds-load:", err)
			return 2
		}
		fmt.Fprintf(stdout, "%s\n", data)
	}
	if rep.Correctness.Violations > 0 {
		return 1
	}
	return 0
}

// writeMesh writes the synthetic mesh's files into dir.
func writeMesh(dir string, o Options) error {
	o.defaults()
	if o.Services < 1 {
		return errors.New("--services must be at least 1")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, data := range meshFiles(o.mesh()) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	t := target{dir: dir}
	_, err := t.restore(o.mesh())
	return err
}
