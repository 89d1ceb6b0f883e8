package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/minimesh/minimesh/internal/envoysim"
	"github.com/minimesh/minimesh/internal/synth"
	"github.com/minimesh/minimesh/runner"
)

// Options configure a load run.
type Options struct {
	Services  int
	Workloads int // 0: two per service
	// SidecarImports > 0 scopes each proxy with an Istio Sidecar importing
	// that many services (synth.Options.SidecarImports).
	SidecarImports int
	Namespace      string
	Proxies        int
	Delta          bool
	// ConnectRate paces connections (per second); 0 connects all at once.
	ConnectRate float64
	Changes     int      // repetitions of each change kind
	Kinds       []string // change kinds to make (vs, endpoint, pa)

	Timeout         time.Duration // the whole run
	ChangeTimeout   time.Duration // one change reaching every affected proxy
	Settle          time.Duration // quiet time after a change, for late pushes
	CompleteTimeout time.Duration // after a change, for every proxy to be complete again
	Hold            time.Duration // keep the proxies connected this long at the end (to inspect the server)
	// CollectBeforeChanges runs a garbage collection of this process before
	// each change (see makeChange).
	CollectBeforeChanges bool
	// Client is the simulated Envoys' gRPC client: ClientLean (the
	// default, envoysim.Dial) or ClientGRPCGo (a gRPC-Go channel each).
	Client string
	// BallastMiB, in external mode: a ballast of this many MiB that the
	// runtime counts as live heap, so that this process is not collected
	// before its heap reaches twice (ballast + live); see gc.go. 0: none.
	BallastMiB int64
	// PrefaultMiB, in external mode: heap touched and freed before the
	// simulated Envoys are built, so that they are built on pages already
	// mapped and the page faults are not in the measurement; see gc.go.
	// 0: none.
	PrefaultMiB int64

	// In-process mode (XDSAddress empty): minimesh runs in this process.
	HoldOff, MaxDelay time.Duration // debounce of the file watcher (0: serve's defaults)
	CPUProfile        string        // prefix of the per-phase CPU profiles
	MutexProfile      string        // file for a mutex contention profile of the run
	MemProfile        string        // file for a heap profile of this process once every proxy is complete
	Log               *zap.Logger   // control plane's log (nil: none)

	// External mode: drive a running `minimesh serve --insecure-xds`.
	XDSAddress string
	ConfigDir  string
	PID        int // the server's process, for CPU and RSS (0: not measured)

	DomainSuffix  string // "cluster.local"
	RootNamespace string // "istio-system"

	Progress io.Writer // progress lines (nil: none)
}

func (o *Options) defaults() {
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if o.DomainSuffix == "" {
		o.DomainSuffix = "cluster.local"
	}
	if o.RootNamespace == "" {
		o.RootNamespace = "istio-system"
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.ChangeTimeout == 0 {
		o.ChangeTimeout = time.Minute
	}
	if o.CompleteTimeout == 0 {
		o.CompleteTimeout = 5 * time.Second
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Kinds == nil {
		o.Kinds = allKinds
	}
	if o.Client == "" {
		o.Client = ClientLean
	}
}

// The simulated Envoys' gRPC clients.
const (
	// ClientLean is envoysim's own: one HTTP/2 connection carrying the
	// ADS stream, as Envoy's client does (internal/envoysim/transport.go).
	ClientLean = "lean"
	// ClientGRPCGo is a gRPC-Go channel per Envoy: name resolution, load
	// balancing and channelz included, about 0.4 ms of CPU to connect.
	ClientGRPCGo = "grpc-go"
)

func (o *Options) validate() error {
	switch {
	case o.Services < 1:
		return errors.New("--services must be at least 1")
	case o.Proxies < 1:
		return errors.New("--proxies must be at least 1")
	case o.Changes < 0:
		return errors.New("--changes must not be negative")
	case o.ConnectRate < 0:
		return errors.New("--connect-rate must not be negative")
	case o.XDSAddress != "" && o.ConfigDir == "":
		return errors.New("--xds needs --config-dir: the directory the server watches, where the changes are made")
	case o.XDSAddress == "" && o.PID != 0:
		return errors.New("--pid is for an external server (--xds); in-process mode measures this process")
	case o.Client != ClientLean && o.Client != ClientGRPCGo:
		return fmt.Errorf("--client %q: want %s or %s", o.Client, ClientLean, ClientGRPCGo)
	case o.BallastMiB < 0:
		return errors.New("--gc-ballast-mib must not be negative")
	case o.PrefaultMiB < 0:
		return errors.New("--prefault-mib must not be negative")
	case o.XDSAddress != "" && (o.CPUProfile != "" || o.MutexProfile != ""):
		return errors.New("--cpuprofile and --mutexprofile are for in-process mode; profile an external server through its own pprof")
	}
	for _, k := range o.Kinds {
		if !contains(allKinds, k) {
			return fmt.Errorf("unknown change kind %q (want %s)", k, strings.Join(allKinds, ", "))
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (o *Options) mesh() synth.Options {
	return synth.Options{Services: o.Services, Namespace: o.Namespace, Workloads: o.Workloads,
		SidecarImports: o.SidecarImports, RootNamespace: o.RootNamespace}
}

// proxy is one simulated Envoy sidecar with its own connection.
type proxy struct {
	idx      int
	env      *envoysim.Envoy
	workload *synth.Workload // nil: outside the mesh
	dialAt   atomic.Int64    // unix nanos
	firstAt  atomic.Int64    // first response received, unix nanos
	// completeAt is when the proxy first held a complete config (the ACK
	// that completed it), unix nanos; 0 until then.
	completeAt atomic.Int64
	settled    atomic.Bool // complete, or its stream ended before
	streamErr  atomic.Pointer[error]
}

// watch follows one change through the proxies.
type watch struct {
	change
	start     time.Time
	expected  []bool
	nExpected int
	doneAt    []atomic.Int64 // unix nanos of the ACK of the update that carried the change
	remaining atomic.Int64
	done      chan struct{}
	responses [len(typeNames)]atomic.Int64
	bytes     atomic.Int64
}

// typeNames are the short names of the xDS types, in Envoy's order.
var typeNames = [...]struct{ url, short string }{
	{resourcev3.ClusterType, "CDS"}, {resourcev3.EndpointType, "EDS"}, {resourcev3.ListenerType, "LDS"},
	{resourcev3.RouteType, "RDS"}, {resourcev3.SecretType, "SDS"},
}

func typeIndex(url string) int {
	for i, t := range typeNames {
		if t.url == url {
			return i
		}
	}
	return -1
}

// loadRun is the state of one run.
type loadRun struct {
	o        Options
	proxies  []*proxy
	watch    atomic.Pointer[watch]
	complete atomic.Int64 // proxies that got a complete config
	settled  atomic.Int64 // proxies complete, or whose stream ended before
	allDone  chan struct{}
	// cpLast is the last reading of the control plane's process, kept
	// for when it disappears (killed, crashed); cpGone says it did.
	cpMu   sync.Mutex
	cpLast procStat
	cpPeak int64
	cpGone bool
	bytes  atomic.Int64
	report *Report
	prof   *profiler
	cp     *runner.ControlPlane
}

// Run makes a load run. The error is for a run that could not start; what
// went wrong during the run is in the report (Violations).
func Run(ctx context.Context, o Options) (*Report, error) {
	o.defaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var (
		rep *Report
		err error
	)
	// Everything the load generator does (and every goroutine it starts,
	// gRPC's included) carries this label; the control plane's carry
	// another (see cpusplit.go).
	pprof.Do(ctx, pprof.Labels(sideLabel, sideLoadGen), func(ctx context.Context) {
		rep, err = execute(ctx, o)
	})
	return rep, err
}

func execute(ctx context.Context, o Options) (*Report, error) {
	r := &loadRun{o: o, allDone: make(chan struct{})}
	if o.XDSAddress != "" && o.BallastMiB > 0 {
		// Before the simulated Envoys are built, so that their first
		// garbage is paced with it (gc.go).
		b := newBallast(o.BallastMiB << 20)
		defer b.release()
	}
	if o.XDSAddress != "" && o.PrefaultMiB > 0 {
		// After the ballast, so that the runtime keeps the freed pages.
		prefault(o.PrefaultMiB << 20)
	}
	mesh := o.mesh()
	workloads := synth.Workloads(mesh)
	r.report = &Report{
		Services: o.Services, Workloads: len(workloads), Proxies: o.Proxies, ConnectRate: o.ConnectRate,
		Protocol: "sotw", Client: o.Client, Machine: readMachine(),
	}
	if o.Delta {
		r.report.Protocol = "delta"
	}
	progress := func(format string, args ...any) { fmt.Fprintf(o.Progress, "xds-load: "+format+"\n", args...) }

	// The control plane and its config directory.
	t := target{dir: o.ConfigDir, ns: o.Namespace, rootNS: o.RootNamespace, suffix: o.DomainSuffix}
	addr := o.XDSAddress
	if addr == "" {
		r.report.Mode = "in-process"
		dir, err := os.MkdirTemp("", "xds-load-config-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		caDir, err := os.MkdirTemp("", "xds-load-ca-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(caDir)
		t.dir = dir
		for name, data := range meshFiles(mesh) {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				return nil, err
			}
		}
		log := o.Log
		if log == nil {
			log = zap.NewNop()
		}
		progress("starting minimesh in-process: %d services, %d workloads", o.Services, len(workloads))
		pprof.Do(ctx, pprof.Labels(sideLabel, sideCP), func(cpCtx context.Context) {
			r.cp, err = runner.Start(cpCtx, runner.Config{
				ConfigDir: dir, XDSAddress: "127.0.0.1:0", DefaultNamespace: o.Namespace, DomainSuffix: o.DomainSuffix,
				RootNamespace: o.RootNamespace, HoldOff: o.HoldOff, MaxDelay: o.MaxDelay,
				Registry: prometheus.NewRegistry(), Log: log, CADir: caDir, InsecureXDS: true,
			})
		})
		if err != nil {
			return nil, fmt.Errorf("starting minimesh: %w", err)
		}
		defer r.cp.Stop()
		addr = r.cp.Addr.String()
		r.prof = &profiler{prefix: o.CPUProfile}
		if o.MutexProfile != "" {
			prev := runtime.SetMutexProfileFraction(1)
			defer func() {
				if err := writeProfile("mutex", o.MutexProfile); err != nil {
					progress("mutex profile: %v", err)
				}
				runtime.SetMutexProfileFraction(prev)
			}()
		}
	} else {
		r.report.Mode = "external"
		want := meshFiles(mesh)[meshFile]
		got, err := os.ReadFile(filepath.Join(o.ConfigDir, meshFile))
		if err != nil || string(got) != string(want) {
			return nil, fmt.Errorf("%s does not hold the mesh of --services %d --workloads %d: write it first with "+
				"`xds-load --generate %s --services %d --workloads %d`, then start the server on it",
				o.ConfigDir, o.Services, o.Workloads, o.ConfigDir, o.Services, o.Workloads)
		}
		undone, err := t.restore(mesh)
		if err != nil {
			return nil, err
		}
		if undone {
			progress("undid the edits of an earlier run in %s; waiting 2s for the server to reload", o.ConfigDir)
			select {
			case <-time.After(2 * time.Second):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	if o.XDSAddress != "" {
		// Leave the external server's directory as it was.
		defer func() { _, _ = t.restore(mesh) }()
	}

	// The proxies: the mesh's workloads' sidecars first, then out-of-mesh
	// clients.
	r.proxies = make([]*proxy, o.Proxies)
	decoder := envoysim.NewDecoder()
	for i := range r.proxies {
		p := &proxy{idx: i}
		id := fmt.Sprintf("load-%d.%s", i-len(workloads), o.Namespace)
		if i < len(workloads) {
			p.workload = &workloads[i]
			id = p.workload.NodeID()
		}
		p.env = envoysim.New(envoysim.Config{NodeID: id, Delta: o.Delta, Decoder: decoder,
			OnUpdate: func(u envoysim.Update) { r.onUpdate(p, u) }})
		r.proxies[i] = p
	}

	cpBefore := r.cpStat()
	selfBefore, _ := readProc(0)
	gcsBefore := gcCycles()
	if o.PID != 0 {
		sctx, stopSampling := context.WithCancel(ctx)
		defer stopSampling()
		go r.sampleCP(sctx)
	}
	streamCtx, stopStreams := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stopStreams()
		waitTimeout(&wg, 10*time.Second)
	}()

	// Phase 1: connect and wait until every proxy is complete.
	progress("connecting %d proxies (%s, %s) to %s", o.Proxies, r.report.Protocol, rateText(o.ConnectRate), addr)
	phase := r.startPhase("connect")
	start := time.Now()
	r.connect(streamCtx, addr, &wg, start)
	select {
	case <-r.allDone:
	case <-ctx.Done():
	}
	r.report.Connect = r.connectReport(start)
	r.report.Connect.CPU = phase.end(r)
	cp := r.cpStat()
	r.report.Connect.RSSMiB, r.report.Connect.PeakRSSMiB = mib(cp.RSSBytes), mib(cp.PeakBytes)
	progress("%d of %d proxies complete; last at %s", r.report.Connect.Complete, o.Proxies, ms(r.report.Connect.AllCompleteMs))
	if o.MemProfile != "" {
		runtime.GC() // the profile's in-use figures are as of the last collection
		if err := writeProfile("heap", o.MemProfile); err != nil {
			r.example("heap profile: " + err.Error())
		}
	}
	if r.report.Connect.Complete < o.Proxies {
		why := "the other streams ended"
		if err := context.Cause(ctx); err != nil {
			why = err.Error()
		}
		r.violation(fmt.Sprintf("only %d of %d proxies held a complete config (%s)", r.report.Connect.Complete, o.Proxies, why))
		r.incompleteExamples()
	}

	// Phase 2: the changes.
	for _, kind := range o.Kinds {
		if o.Changes == 0 || ctx.Err() != nil || r.report.Connect.Complete < o.Proxies {
			break
		}
		cr := ChangeReport{Kind: kind}
		phase := r.startPhase(kind)
		for i := 1; i <= o.Changes && ctx.Err() == nil; i++ {
			r.makeChange(ctx, t.makeChange(kind, i), &cr, progress)
		}
		cr.CPU = phase.end(r)
		cp := r.cpStat()
		cr.RSSMiB, cr.PeakRSSMiB = mib(cp.RSSBytes), mib(cp.PeakBytes)
		r.report.Changes = append(r.report.Changes, cr)
	}
	if o.Hold > 0 && ctx.Err() == nil {
		progress("holding %d connections for %v", o.Proxies, o.Hold)
		sleep(ctx, o.Hold)
	}
	if err := context.Cause(ctx); err != nil {
		r.report.Aborted = err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			r.report.Aborted = fmt.Sprintf("--timeout %v reached", o.Timeout)
		}
		r.violation("run ended early: " + r.report.Aborted)
	}

	// Totals and the correctness sweep.
	cpAfter := r.cpStat()
	selfAfter, _ := readProc(0)
	res := &r.report.Resources
	res.ControlPlaneCPUSeconds = round3(cpAfter.CPUSeconds - cpBefore.CPUSeconds)
	res.RSSMiB = mib(cpAfter.RSSBytes)
	res.PeakRSSMiB = mib(cpAfter.PeakBytes)
	res.PeakPhase = r.report.peakPhase()
	res.AnonMiB, res.FileMiB = mib(cpAfter.AnonBytes), mib(cpAfter.FileBytes)
	if r.prof == nil {
		res.LoadGeneratorCPUSeconds = round3(selfAfter.CPUSeconds - selfBefore.CPUSeconds)
		res.LoadGeneratorPeakRSSMiB = mib(selfAfter.PeakBytes)
		res.LoadGeneratorGCs = gcCycles() - gcsBefore
		if o.XDSAddress != "" {
			res.LoadGeneratorBallastMiB = o.BallastMiB
			res.LoadGeneratorPrefaultMiB = o.PrefaultMiB
		}
		if o.PID == 0 {
			res.Note = "no --pid: the server's CPU and memory were not measured"
		}
	} else {
		var split CPUSplit
		if s := r.report.Connect.CPU.Split; s != nil {
			split.add(*s)
		}
		for _, c := range r.report.Changes {
			if c.CPU.Split != nil {
				split.add(*c.CPU.Split)
			}
		}
		split = CPUSplit{round3(split.ControlPlane), round3(split.LoadGenerator), round3(split.Unattributed)}
		res.Split = &split
		res.ProcessCPUSeconds = res.ControlPlaneCPUSeconds
		res.ControlPlaneCPUSeconds = split.ControlPlane
		res.LoadGeneratorCPUSeconds = split.LoadGenerator
		res.Note = "in-process: CPU and RSS are this process's, shared by minimesh and the load generator; " +
			"CPU is split by pprof labels (control plane / load generator / Go runtime unattributed); " +
			"RSS cannot be split (it includes the simulated Envoys' decoded configs) - use --xds with --pid for the server's own"
		r.report.ProfileFiles = r.prof.files
		if st := r.cp.Runner.Stats(); st.TranslateErrors > 0 {
			r.violation(fmt.Sprintf("the control plane refused %d proxy snapshots (translation or checks failed)", st.TranslateErrors))
		}
	}
	r.sweep(decoder)
	r.report.finish()
	return r.report, nil
}

func writeProfile(name, file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func rateText(rate float64) string {
	if rate == 0 {
		return "all at once"
	}
	return fmt.Sprintf("%g per second", rate)
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// connect dials every proxy, at once or paced, each on its own connection.
func (r *loadRun) connect(ctx context.Context, addr string, wg *sync.WaitGroup, start time.Time) {
	var interval time.Duration
	if r.o.ConnectRate > 0 {
		interval = time.Duration(float64(time.Second) / r.o.ConnectRate)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i, p := range r.proxies {
			if interval > 0 {
				if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
					select {
					case <-time.After(d):
					case <-ctx.Done():
						return
					}
				}
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.runProxy(ctx, addr, p)
			}()
		}
	}()
}

func (r *loadRun) runProxy(ctx context.Context, addr string, p *proxy) {
	p.dialAt.Store(time.Now().UnixNano())
	conn, err := r.dial(ctx, addr)
	if err == nil {
		defer conn.Close()
		err = p.env.Run(ctx, conn)
	}
	if err != nil && ctx.Err() == nil {
		p.streamErr.Store(&err)
	}
	r.settle(p)
}

// dial opens one simulated Envoy's connection with the chosen client.
func (r *loadRun) dial(ctx context.Context, addr string) (interface {
	grpc.ClientConnInterface
	Close() error
}, error) {
	if r.o.Client == ClientLean {
		return envoysim.Dial(ctx, addr)
	}
	return grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// Like Envoy: large HTTP/2 windows and no limit on config size.
		grpc.WithInitialWindowSize(64<<20), grpc.WithInitialConnWindowSize(64<<20),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30)))
}

// settle notes that a proxy is complete, or will never be (its stream
// ended): the connect phase ends when all are settled.
func (r *loadRun) settle(p *proxy) {
	if p.settled.CompareAndSwap(false, true) && r.settled.Add(1) == int64(len(r.proxies)) {
		close(r.allDone)
	}
}

// onUpdate runs on a proxy's stream goroutine after each response.
func (r *loadRun) onUpdate(p *proxy, u envoysim.Update) {
	r.bytes.Add(int64(u.Bytes))
	if p.firstAt.Load() == 0 {
		p.firstAt.Store(u.At.UnixNano())
	}
	if p.completeAt.Load() == 0 && u.NACK == "" && p.env.IsComplete() {
		p.completeAt.Store(u.Acked.UnixNano())
		r.complete.Add(1)
		r.settle(p)
	}
	w := r.watch.Load()
	if w == nil || u.At.Before(w.start) {
		return
	}
	if i := typeIndex(u.TypeURL); i >= 0 {
		w.responses[i].Add(1)
	}
	w.bytes.Add(int64(u.Bytes))
	if u.NACK == "" && u.TypeURL == w.typeURL && w.expected[p.idx] && w.doneAt[p.idx].Load() == 0 && w.seen(p, u) {
		w.doneAt[p.idx].Store(u.Acked.UnixNano())
		if w.remaining.Add(-1) == 0 {
			close(w.done)
		}
	}
}

// makeChange makes one change and follows it to every affected proxy.
func (r *loadRun) makeChange(ctx context.Context, c change, cr *ChangeReport, progress func(string, ...any)) {
	w := &watch{change: c, expected: make([]bool, len(r.proxies)), doneAt: make([]atomic.Int64, len(r.proxies)),
		done: make(chan struct{})}
	for _, p := range r.proxies {
		if c.expected(p) {
			w.expected[p.idx] = true
			w.nExpected++
		}
	}
	cr.Description = append(cr.Description, c.description)
	cr.Iterations++
	cr.Affected = w.nExpected
	if w.nExpected == 0 {
		progress("%s: no proxy holds what it changes; skipped", c.description)
		cr.Skipped++
		return
	}
	w.remaining.Store(int64(w.nExpected))
	if r.o.CollectBeforeChanges {
		// 2000 simulated Envoys hold gigabytes, and the runtime collects
		// them whenever its pacing says: in some runs in the middle of a
		// change, where the collection's seconds of CPU compete with the
		// server's on the same cores. Real Envoys do not collect garbage;
		// collecting now keeps that cost out of the figure. (In-process,
		// the server's heap is collected too.)
		runtime.GC()
	}
	err := c.apply(func() {
		w.start = time.Now()
		r.watch.Store(w)
	})
	if err != nil {
		r.violation(fmt.Sprintf("%s: cannot write the change: %v", c.description, err))
		r.watch.Store(nil)
		return
	}
	cctx, cancel := context.WithTimeout(ctx, r.o.ChangeTimeout)
	select {
	case <-w.done:
	case <-cctx.Done():
	}
	cancel()
	// Late pushes (for example EDS after CDS) still count towards the
	// responses; then every proxy must be complete again.
	sleep(ctx, r.o.Settle)
	r.watch.Store(nil)

	var durations []float64
	maxMs := 0.0
	missed := 0
	for _, p := range r.proxies {
		if !w.expected[p.idx] {
			continue
		}
		at := w.doneAt[p.idx].Load()
		if at == 0 {
			missed++
			continue
		}
		d := float64(at-w.start.UnixNano()) / 1e6
		durations = append(durations, d)
		maxMs = max(maxMs, d)
	}
	cr.samples = append(cr.samples, durations...)
	cr.MaxPerChangeMs = append(cr.MaxPerChangeMs, round(maxMs))
	cr.Missed += missed
	for i := range typeNames {
		if cr.Responses == nil {
			cr.Responses = map[string]int64{}
		}
		if n := w.responses[i].Load(); n > 0 {
			cr.Responses[typeNames[i].short] += n
		}
	}
	cr.bytes += w.bytes.Load()
	if missed > 0 {
		r.violation(fmt.Sprintf("%s: %d of %d affected proxies did not get it within %v", c.description, missed, w.nExpected, r.o.ChangeTimeout))
	}
	incomplete := r.waitComplete(ctx)
	if incomplete > 0 {
		r.violation(fmt.Sprintf("%s: %d proxies without a complete config %v after the change", c.description, incomplete, r.o.CompleteTimeout))
		r.incompleteExamples()
	}
	cr.Incomplete += incomplete
	progress("%s: %d/%d proxies in %s (p50 %s), %d incomplete after it", c.description, len(durations), w.nExpected,
		ms(maxMs), ms(quantile(durations, 0.5)), incomplete)
}

// waitComplete waits until every proxy is complete, or CompleteTimeout;
// it returns how many are not.
func (r *loadRun) waitComplete(ctx context.Context) int {
	deadline := time.Now().Add(r.o.CompleteTimeout)
	for {
		n := 0
		for _, p := range r.proxies {
			if !p.env.IsComplete() {
				n++
			}
		}
		if n == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return n
		}
		sleep(ctx, 100*time.Millisecond)
	}
}

// incompleteExamples records what some incomplete proxies miss.
func (r *loadRun) incompleteExamples() {
	shown := 0
	for _, p := range r.proxies {
		if shown == 3 {
			return
		}
		if ok, missing := p.env.Complete(); !ok {
			shown++
			if len(missing) > 3 {
				missing = append(missing[:3], fmt.Sprintf("and %d more", len(missing)-3))
			}
			r.example(fmt.Sprintf("%s misses: %s", p.env.NodeID(), strings.Join(missing, "; ")))
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

func (r *loadRun) violation(msg string) {
	r.report.Correctness.Violations++
	r.example(msg)
}

func (r *loadRun) example(msg string) {
	const maxExamples = 30
	c := &r.report.Correctness
	if len(c.Examples) < maxExamples {
		c.Examples = append(c.Examples, msg)
	}
}

// sweep adds up every proxy's counters and problems.
func (r *loadRun) sweep(d *envoysim.Decoder) {
	c := &r.report.Correctness
	var perProxy []float64
	problems := map[string]int{}
	for _, p := range r.proxies {
		st := p.env.Stats()
		c.Responses += st.Responses
		c.NACKs += st.NACKs
		perProxy = append(perProxy, float64(st.Bytes))
		for _, pr := range p.env.Problems() {
			c.Problems++
			problems[pr]++
		}
		if err := p.streamErr.Load(); err != nil {
			c.StreamErrors++
			if c.StreamErrors <= 3 {
				r.example(fmt.Sprintf("%s: stream ended: %v", p.env.NodeID(), *err))
			}
		}
	}
	ds := d.Stats()
	c.DistinctResources, c.ReusedResources = ds.Decoded, ds.Reused
	if c.NACKs > 0 || c.Problems > 0 {
		r.violation(fmt.Sprintf("%d NACKs, %d problems (resources Envoy would reject)", c.NACKs, c.Problems))
	}
	if c.StreamErrors > 0 {
		r.violation(fmt.Sprintf("%d streams ended with an error", c.StreamErrors))
	}
	keys := make([]string, 0, len(problems))
	for k := range problems {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		r.example(fmt.Sprintf("%d x %s", problems[k], k))
	}
	r.report.Bytes = BytesReport{
		TotalMiB: round(float64(r.bytes.Load()) / (1 << 20)),
		PerProxy: distKiB(perProxy),
	}
}

func (r *loadRun) connectReport(start time.Time) ConnectReport {
	var fromStart, fromDial, first []float64
	last := 0.0
	for _, p := range r.proxies {
		if at := p.firstAt.Load(); at != 0 {
			first = append(first, float64(at-p.dialAt.Load())/1e6)
		}
		at := p.completeAt.Load()
		if at == 0 {
			continue
		}
		d := float64(at-start.UnixNano()) / 1e6
		fromStart = append(fromStart, d)
		fromDial = append(fromDial, float64(at-p.dialAt.Load())/1e6)
		last = max(last, d)
	}
	return ConnectReport{
		Complete: len(fromStart), FromStart: dist(fromStart), FromDial: dist(fromDial), FirstResponse: dist(first),
		AllCompleteMs: round(last), BytesMiB: round(float64(r.bytes.Load()) / (1 << 20)),
	}
}

// cpStat reads the control plane's process: this one in-process, --pid
// for an external one (zero if unknown). If the process is gone, it
// returns the last reading.
func (r *loadRun) cpStat() procStat {
	if r.o.XDSAddress != "" && r.o.PID == 0 {
		return procStat{}
	}
	st, err := readProc(r.o.PID)
	r.cpMu.Lock()
	defer r.cpMu.Unlock()
	if err != nil {
		if !r.cpGone {
			r.cpGone = true
			r.violation(fmt.Sprintf("the control plane's process %d is gone (%v); its last figures are reported", r.o.PID, err))
		}
		st = r.cpLast
	} else {
		r.cpLast = st
	}
	r.cpPeak = max(r.cpPeak, st.RSSBytes, st.PeakBytes)
	st.PeakBytes = r.cpPeak
	return st
}

// sampleCP reads the control plane's process every half second, so that
// its last figures are known if it dies.
func (r *loadRun) sampleCP(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.cpStat()
		}
	}
}

// phaseTimer measures one phase's CPU.
type phaseTimer struct {
	cp, self procStat
	profOn   bool
}

func (r *loadRun) startPhase(name string) phaseTimer {
	pt := phaseTimer{cp: r.cpStat()}
	pt.self, _ = readProc(0)
	if r.prof != nil {
		if err := r.prof.start(name); err != nil {
			r.example("CPU profile: " + err.Error())
		} else {
			pt.profOn = true
		}
	}
	return pt
}

func (pt phaseTimer) end(r *loadRun) PhaseCPU {
	var out PhaseCPU
	cp := r.cpStat()
	self, _ := readProc(0)
	out.ControlPlaneS = round3(cp.CPUSeconds - pt.cp.CPUSeconds)
	if r.prof == nil {
		out.LoadGeneratorS = round3(self.CPUSeconds - pt.self.CPUSeconds)
		if r.o.XDSAddress != "" {
			out.ControlPlaneFaults = cp.MinorFaults - pt.cp.MinorFaults
			out.LoadGeneratorFaults = self.MinorFaults - pt.self.MinorFaults
		}
		return out
	}
	out.ProcessS = out.ControlPlaneS
	out.ControlPlaneS = 0
	if pt.profOn {
		split, err := r.prof.stop()
		if err != nil {
			r.example("CPU profile: " + err.Error())
		} else {
			split = CPUSplit{round3(split.ControlPlane), round3(split.LoadGenerator), round3(split.Unattributed)}
			out.Split = &split
			out.ControlPlaneS = split.ControlPlane
			out.LoadGeneratorS = split.LoadGenerator
		}
	}
	return out
}
