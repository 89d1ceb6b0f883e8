package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
)

// Report is everything a run measured. Durations are in milliseconds.
type Report struct {
	Mode        string         `json:"mode"`     // in-process or external
	Protocol    string         `json:"protocol"` // sotw or delta
	Client      string         `json:"client"`   // the simulated Envoys' gRPC client: lean or grpc-go
	Services    int            `json:"services"`
	Workloads   int            `json:"workloads"`
	Proxies     int            `json:"proxies"`
	ConnectRate float64        `json:"connect_rate"` // per second; 0: all at once
	Machine     Machine        `json:"machine"`
	Connect     ConnectReport  `json:"connect"`
	Changes     []ChangeReport `json:"changes"`
	Resources   ResourceReport `json:"resources"`
	Bytes       BytesReport    `json:"bytes"`
	Correctness Correctness    `json:"correctness"`
	Targets     []Target       `json:"targets,omitempty"`
	// Aborted says why the run ended early ("" if it did not).
	Aborted      string   `json:"aborted,omitempty"`
	ProfileFiles []string `json:"profile_files,omitempty"`
}

// Dist is a distribution over proxies: p50, p99 and max.
type Dist struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// ConnectReport: from the start of connecting to every proxy holding a
// complete config.
type ConnectReport struct {
	Complete      int      `json:"complete"`          // proxies that got there
	FromStart     Dist     `json:"from_start_ms"`     // per proxy, from the start of the run's connecting
	FromDial      Dist     `json:"from_dial_ms"`      // per proxy, from its own dial (differs when paced)
	FirstResponse Dist     `json:"first_response_ms"` // per proxy, from its own dial to its first response
	AllCompleteMs float64  `json:"all_complete_ms"`   // the last proxy, from the start
	BytesMiB      float64  `json:"bytes_mib"`         // received by all proxies in this phase
	RSSMiB        float64  `json:"rss_mib"`           // control plane's (or this process's) RSS at the end of the phase
	PeakRSSMiB    float64  `json:"peak_rss_mib"`      // its peak RSS (VmHWM) so far, at the end of the phase
	CPU           PhaseCPU `json:"cpu"`
}

// ChangeReport aggregates the repetitions of one kind of change.
type ChangeReport struct {
	Kind        string   `json:"kind"` // vs, endpoint, pa
	Description []string `json:"description"`
	Iterations  int      `json:"iterations"`
	Skipped     int      `json:"skipped,omitempty"`
	Affected    int      `json:"affected"` // proxies that must see each change
	// Propagation: from the file write to each affected proxy's ACK of the
	// update that carried the change, over all repetitions.
	Propagation    Dist             `json:"propagation_ms"`
	MaxPerChangeMs []float64        `json:"max_per_change_ms"`
	Missed         int              `json:"missed"`          // affected proxies the change never reached
	Incomplete     int              `json:"incomplete"`      // proxies not complete after a change (summed)
	Responses      map[string]int64 `json:"responses"`       // responses received per type, all proxies, all repetitions
	BytesPerProxy  float64          `json:"bytes_per_proxy"` // per change, mean over proxies
	CPU            PhaseCPU         `json:"cpu"`
	RSSMiB         float64          `json:"rss_mib"`      // control plane's (or this process's) RSS after these changes
	PeakRSSMiB     float64          `json:"peak_rss_mib"` // its peak RSS (VmHWM) so far, after these changes

	samples []float64
	bytes   int64
}

// PhaseCPU is the CPU seconds of one phase.
type PhaseCPU struct {
	ControlPlaneS  float64 `json:"control_plane_s"`
	LoadGeneratorS float64 `json:"load_generator_s"`
	// Page faults served without I/O in the phase (/proc/PID/stat minflt):
	// memory touched for the first time, or again after it was given back
	// to the system. Each costs the kernel's time, counted in the CPU
	// above. External mode only.
	ControlPlaneFaults  int64     `json:"control_plane_faults,omitempty"`
	LoadGeneratorFaults int64     `json:"load_generator_faults,omitempty"`
	ProcessS            float64   `json:"process_s,omitempty"` // in-process: the whole process, from /proc
	Split               *CPUSplit `json:"split,omitempty"`     // in-process: from the CPU profile
}

// ResourceReport: the control plane's cost over the whole run.
type ResourceReport struct {
	ControlPlaneCPUSeconds  float64   `json:"control_plane_cpu_s"` // external: /proc/PID; in-process: the control plane's pprof label
	LoadGeneratorCPUSeconds float64   `json:"load_generator_cpu_s"`
	ProcessCPUSeconds       float64   `json:"process_cpu_s,omitempty"` // in-process: the whole process, from /proc
	Split                   *CPUSplit `json:"split,omitempty"`
	RSSMiB                  float64   `json:"rss_mib"`
	PeakRSSMiB              float64   `json:"peak_rss_mib"`
	PeakPhase               string    `json:"peak_phase,omitempty"` // the phase in which the peak was reached: connect, or a change kind
	// At the end: the process's own memory (heap, stacks) and the pages
	// mapped from files (the executable's, shared with the page cache).
	AnonMiB                 float64 `json:"anon_mib"`
	FileMiB                 float64 `json:"file_mib"`
	LoadGeneratorPeakRSSMiB float64 `json:"load_generator_peak_rss_mib,omitempty"` // external mode
	// External mode: the load generator's own garbage collections during
	// the run, the ballast its collections were paced with, and the heap
	// it touched and freed before it began (gc.go).
	LoadGeneratorGCs         uint64 `json:"load_generator_gcs"`
	LoadGeneratorBallastMiB  int64  `json:"load_generator_ballast_mib"`
	LoadGeneratorPrefaultMiB int64  `json:"load_generator_prefault_mib"`
	Note                     string `json:"note,omitempty"`
}

// BytesReport: what the proxies received (sum of proto.Size of each
// DiscoveryResponse).
type BytesReport struct {
	TotalMiB float64 `json:"total_mib"`
	PerProxy Dist    `json:"per_proxy_kib"`
}

// Correctness: what the simulated Envoys found.
type Correctness struct {
	Violations        int      `json:"violations"`
	Responses         int      `json:"responses"`
	NACKs             int      `json:"nacks"`
	Problems          int      `json:"problems"`
	StreamErrors      int      `json:"stream_errors"`
	DistinctResources int64    `json:"distinct_resources_validated"`
	ReusedResources   int64    `json:"resources_reused"`
	Examples          []string `json:"examples,omitempty"`
}

// Target is one of the scale issue's targets, for the run's scenario.
type Target struct {
	Figure string  `json:"figure"`
	Limit  float64 `json:"limit"`
	Unit   string  `json:"unit"`
	Value  float64 `json:"value"`
	Met    bool    `json:"met"`
}

func (c *ChangeReport) finish(proxies int) {
	c.Propagation = dist(c.samples)
	if c.Iterations > 0 && proxies > 0 {
		c.BytesPerProxy = round(float64(c.bytes) / float64(c.Iterations) / float64(proxies))
	}
}

// finish computes the derived figures and the targets.
func (r *Report) finish() {
	for i := range r.Changes {
		r.Changes[i].finish(r.Proxies)
	}
	var limits []Target
	switch {
	case r.Services == 1 && r.Proxies == 500:
		limits = []Target{{"all full", 200, "ms", 0, false}, {"vs p99", 100, "ms", 0, false}, {"rss", 60, "MiB", 0, false}}
	case r.Services == 1000 && r.Proxies == 2000:
		limits = []Target{{"all full", 10000, "ms", 0, false}, {"vs p99", 1000, "ms", 0, false},
			{"endpoint p99", 500, "ms", 0, false}, {"rss", 1024, "MiB", 0, false}}
	}
	r.Targets = nil
	for _, t := range limits {
		ok := true
		switch t.Figure {
		case "all full":
			t.Value = r.Connect.AllCompleteMs
			ok = r.Connect.Complete == r.Proxies
		case "vs p99", "endpoint p99":
			c := r.change(strings.TrimSuffix(t.Figure, " p99"))
			if c == nil || c.Propagation.N == 0 {
				continue
			}
			t.Value = c.Propagation.P99
			ok = c.Missed == 0
		case "rss":
			t.Value = r.Resources.PeakRSSMiB
			ok = t.Value > 0
		}
		t.Met = ok && t.Value <= t.Limit
		r.Targets = append(r.Targets, t)
	}
}

func (r *Report) change(kind string) *ChangeReport {
	for i := range r.Changes {
		if r.Changes[i].Kind == kind {
			return &r.Changes[i]
		}
	}
	return nil
}

func (r *Report) target(figure string) string {
	for _, t := range r.Targets {
		if t.Figure == figure {
			verdict := "met"
			if !t.Met {
				verdict = "MISSED"
			}
			return fmt.Sprintf("target <= %g %s: %s", t.Limit, t.Unit, verdict)
		}
	}
	return ""
}

var kindTitles = map[string]string{
	kindVS:       "VirtualService weight change",
	kindEndpoint: "endpoint added/removed (EDS)",
	kindPA:       "PeerAuthentication change",
}

// Print writes the report as a table.
func (r *Report) Print(w io.Writer) {
	rate := "connecting all at once"
	if r.ConnectRate > 0 {
		rate = fmt.Sprintf("connecting %g/s", r.ConnectRate)
	}
	fmt.Fprintf(w, "\nminimesh %s, %s xDS: %d services, %d workloads, %d proxies (%s; %s gRPC client)\n",
		r.Mode, strings.ToUpper(r.Protocol), r.Services, r.Workloads, r.Proxies, rate, r.Client)
	m := r.Machine
	fmt.Fprintf(w, "machine: %d CPUs, %d MiB, %s, %s\n\n", m.CPUs, m.MemoryMiB, m.CPUModel, m.GoVersion)
	row := func(name string, d Dist, note string) {
		if d.N == 0 {
			fmt.Fprintf(w, "%-38s %10s %10s %10s   %s\n", name, "-", "-", "-", note)
			return
		}
		fmt.Fprintf(w, "%-38s %10s %10s %10s   %s\n", name, ms(d.P50), ms(d.P99), ms(d.Max), note)
	}
	fmt.Fprintf(w, "%-38s %10s %10s %10s\n", "", "p50", "p99", "max")
	c := r.Connect
	row(fmt.Sprintf("full config, %d/%d proxies", c.Complete, r.Proxies), c.FromStart, r.target("all full"))
	if r.ConnectRate > 0 {
		row("  (from each proxy's own dial)", c.FromDial, "")
	}
	row("  first response, from own dial", c.FirstResponse, "")
	for _, ch := range r.Changes {
		title := kindTitles[ch.Kind]
		row(fmt.Sprintf("%s x%d", title, ch.Iterations-ch.Skipped), ch.Propagation, r.target(ch.Kind+" p99"))
		fmt.Fprintf(w, "    %d affected proxies per change, missed %d, max per change %s; responses %s; %s/proxy/change\n",
			ch.Affected, ch.Missed, msList(ch.MaxPerChangeMs), typeCounts(ch.Responses), kib(ch.BytesPerProxy))
	}
	fmt.Fprintln(w)

	res := r.Resources
	fmt.Fprintf(w, "control plane CPU: %s s", sec(res.ControlPlaneCPUSeconds))
	if res.Split != nil {
		fmt.Fprintf(w, " (pprof label); load generator %s s, Go runtime unattributed (GC workers, scheduler) %s s; whole process %s s",
			sec(res.Split.LoadGenerator), sec(res.Split.Unattributed), sec(res.ProcessCPUSeconds))
	} else if r.Mode == "external" {
		fmt.Fprintf(w, "; load generator %s s (peak RSS %s MiB; %d collections", sec(res.LoadGeneratorCPUSeconds), num(res.LoadGeneratorPeakRSSMiB), res.LoadGeneratorGCs)
		if res.LoadGeneratorBallastMiB > 0 {
			fmt.Fprintf(w, " paced with a %d MiB ballast", res.LoadGeneratorBallastMiB)
		}
		if res.LoadGeneratorPrefaultMiB > 0 {
			fmt.Fprintf(w, "; %d MiB of heap touched beforehand", res.LoadGeneratorPrefaultMiB)
		}
		fmt.Fprint(w, ")")
	}
	fmt.Fprintln(w)
	phases := []struct {
		name string
		cpu  PhaseCPU
	}{{"connect", c.CPU}}
	for _, ch := range r.Changes {
		phases = append(phases, struct {
			name string
			cpu  PhaseCPU
		}{ch.Kind, ch.CPU})
	}
	fmt.Fprintf(w, "  by phase (control plane / load generator s):")
	for _, p := range phases {
		fmt.Fprintf(w, " %s %s/%s", p.name, sec(p.cpu.ControlPlaneS), sec(p.cpu.LoadGeneratorS))
	}
	fmt.Fprintln(w)
	if r.Mode == "external" {
		fmt.Fprintf(w, "  page faults by phase (control plane / load generator):")
		for _, p := range phases {
			fmt.Fprintf(w, " %s %d/%d", p.name, p.cpu.ControlPlaneFaults, p.cpu.LoadGeneratorFaults)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "RSS: %s MiB after connect,", num(c.RSSMiB))
	for _, ch := range r.Changes {
		fmt.Fprintf(w, " %s after %s,", num(ch.RSSMiB), ch.Kind)
	}
	fmt.Fprintf(w, " %s MiB at the end, peak %s MiB", num(res.RSSMiB), num(res.PeakRSSMiB))
	switch res.PeakPhase {
	case "":
	case "connect":
		fmt.Fprint(w, " (reached while connecting)")
	default:
		fmt.Fprintf(w, " (reached during the %s changes)", res.PeakPhase)
	}
	fmt.Fprintf(w, "   %s\n", r.target("rss"))
	if res.AnonMiB+res.FileMiB > 0 {
		fmt.Fprintf(w, "  at the end: %s MiB anonymous (heap, stacks), %s MiB mapped from files (the executable's pages)\n",
			num(res.AnonMiB), num(res.FileMiB))
	}
	if res.Note != "" {
		fmt.Fprintf(w, "  note: %s\n", res.Note)
	}
	fmt.Fprintf(w, "bytes received: %s MiB in all (%s MiB while connecting); per proxy p50 %s, max %s\n",
		num(r.Bytes.TotalMiB), num(c.BytesMiB), kib(r.Bytes.PerProxy.P50*1024), kib(r.Bytes.PerProxy.Max*1024))
	k := r.Correctness
	fmt.Fprintf(w, "correctness: %d responses validated (%d distinct resources decoded and checked, %d identical ones reused), "+
		"%d NACKs, %d problems, %d stream errors\n", k.Responses, k.DistinctResources, k.ReusedResources, k.NACKs, k.Problems, k.StreamErrors)
	if r.Aborted != "" {
		fmt.Fprintf(w, "ABORTED: %s\n", r.Aborted)
	}
	if k.Violations == 0 {
		fmt.Fprintln(w, "violations: none")
	} else {
		fmt.Fprintf(w, "VIOLATIONS: %d\n", k.Violations)
	}
	for _, e := range k.Examples {
		fmt.Fprintf(w, "  - %s\n", e)
	}
	if len(r.ProfileFiles) > 0 {
		fmt.Fprintf(w, "CPU profiles: %s\n", strings.Join(r.ProfileFiles, " "))
	}
}

func typeCounts(m map[string]int64) string {
	var parts []string
	for _, t := range typeNames {
		if n := m[t.short]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", t.short, n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// quantile of unsorted samples (nearest rank); 0 if none.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func dist(xs []float64) Dist {
	if len(xs) == 0 {
		return Dist{}
	}
	return Dist{N: len(xs), P50: round(quantile(xs, 0.5)), P99: round(quantile(xs, 0.99)), Max: round(quantile(xs, 1))}
}

func distKiB(bytes []float64) Dist {
	kibs := make([]float64, len(bytes))
	for i, b := range bytes {
		kibs[i] = b / 1024
	}
	return dist(kibs)
}

func round(x float64) float64 { return math.Round(x*10) / 10 }

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

func mib(b int64) float64 { return round(float64(b) / (1 << 20)) }

func ms(x float64) string {
	if x >= 10000 {
		return fmt.Sprintf("%.1f s", x/1000)
	}
	return fmt.Sprintf("%.1f ms", x)
}

func msList(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = ms(x)
	}
	return strings.Join(parts, ", ")
}

func sec(x float64) string { return fmt.Sprintf("%.2f", x) }

func num(x float64) string { return fmt.Sprintf("%.1f", x) }

func kib(b float64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.2f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}

// peakPhase names the phase at whose end the peak RSS (a high-water mark,
// so it only rises) first read its final value: the phase that reached it.
// "" when the peak rose after the last phase (while holding) or was not
// measured.
func (r *Report) peakPhase() string {
	peak := r.Resources.PeakRSSMiB
	if peak == 0 {
		return ""
	}
	if r.Connect.PeakRSSMiB >= peak {
		return "connect"
	}
	for _, ch := range r.Changes {
		if ch.PeakRSSMiB >= peak {
			return ch.Kind
		}
	}
	return ""
}
