package file

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/minimesh/minimesh/mesh"
)

// waitLimit bounds every wait for something that must happen. It is far
// above what any step takes, so that a loaded machine does not fail a test.
const waitLimit = 5 * time.Second

// recorder is a publish callback that remembers every snapshot and when it
// was published.
type recorder struct {
	mu     sync.Mutex
	snaps  []*mesh.Snapshot
	times  []time.Time
	signal chan struct{} // poked after each publish
}

func newRecorder() *recorder { return &recorder{signal: make(chan struct{}, 1)} }

func (r *recorder) publish(s *mesh.Snapshot) {
	r.mu.Lock()
	r.snaps = append(r.snaps, s)
	r.times = append(r.times, time.Now())
	r.mu.Unlock()
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

// count is the number of publishes so far.
func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.snaps)
}

// get returns publish number i (0-based) and its time.
func (r *recorder) get(i int) (*mesh.Snapshot, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snaps[i], r.times[i]
}

// waitCount waits until there have been at least n publishes.
func (r *recorder) waitCount(t *testing.T, n int, what string) {
	t.Helper()
	deadline := time.After(waitLimit)
	for r.count() < n {
		select {
		case <-r.signal:
		case <-deadline:
			t.Fatalf("%s: %d publishes after %v, want %d", what, r.count(), waitLimit, n)
		}
	}
}

// waitFor waits for the first publish from number `from` on that
// satisfies ok, and returns its number and time.
func (r *recorder) waitFor(t *testing.T, from int, what string, ok func(*mesh.Snapshot) bool) (int, time.Time) {
	t.Helper()
	deadline := time.After(waitLimit)
	for i := from; ; {
		for ; i < r.count(); i++ {
			if s, at := r.get(i); ok(s) {
				return i, at
			}
		}
		select {
		case <-r.signal:
		case <-deadline:
			t.Fatalf("%s: not published within %v (%d publishes in all)", what, waitLimit, r.count())
		}
	}
}

// quiet checks that nothing is published for d (which must be well above
// the watcher's MaxDelay, so that a publish that should not happen would
// have happened). It can only pass wrongly on a very slow machine, never
// fail wrongly.
func (r *recorder) quiet(t *testing.T, d time.Duration, what string) {
	t.Helper()
	n := r.count()
	time.Sleep(d)
	if got := r.count(); got != n {
		s, _ := r.get(got - 1)
		t.Errorf("%s: %d unexpected publishes (last with weights %v, services %v)", what, got-n, canaryWeights(s), hostnames(s))
	}
}

// startRun runs a watcher until the test ends, and waits for its first
// publish. stop cancels Run and returns what it returned.
func startRun(t *testing.T, cfg Config) (rec *recorder, stop func() error) {
	t.Helper()
	rec = newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(cfg).Run(ctx, rec.publish) }()
	stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(waitLimit):
			t.Errorf("Run did not return within %v of its context being cancelled", waitLimit)
			return nil
		}
	})
	t.Cleanup(func() { _ = stop() })
	rec.waitCount(t, 1, "initial publish")
	return rec, stop
}

// overwrite writes data over a file in place, the way an editor that
// saves in place does, but without truncating the file first (it is cut to
// its new length after the write), so that a reader never sees it empty.
func overwrite(t *testing.T, path, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRunInitialPublish(t *testing.T) {
	rec, _ := startRun(t, Config{Dir: copyCanary(t)})
	s, _ := rec.get(0)
	if got := canaryWeights(s); !slices.Equal(got, []uint32{90, 10}) {
		t.Errorf("initial weights = %v, want [90 10]", got)
	}
	if len(s.Services) != 1 || len(s.Services[0].Endpoints) != 2 || len(s.DestinationRules) != 1 {
		t.Errorf("initial snapshot: services %v, DestinationRules %v", hostnames(s), drNames(s))
	}
}

// Each in-place edit is published once, within the debounce ceiling.
func TestRunInPlaceEdit(t *testing.T) {
	dir := copyCanary(t)
	vsFile := filepath.Join(dir, "virtual-service.yaml")
	cfg := Config{Dir: dir} // default hold-off and ceiling
	rec, _ := startRun(t, cfg)

	var latencies []time.Duration
	for _, w := range [][2]int{{80, 20}, {70, 30}, {50, 50}, {90, 10}} {
		n := rec.count()
		start := time.Now()
		overwrite(t, vsFile, canaryVS(w[0], w[1]))
		i, at := rec.waitFor(t, n, "in-place edit", func(s *mesh.Snapshot) bool {
			return hasWeights(s, uint32(w[0]), uint32(w[1]))
		})
		if i != n {
			s, _ := rec.get(n)
			t.Errorf("edit to %v: first publish after it has weights %v", w, canaryWeights(s))
		}
		latencies = append(latencies, at.Sub(start))
	}
	rec.quiet(t, 3*100*time.Millisecond, "after the edits") // 3 times the default ceiling
	if got, want := rec.count(), 1+len(latencies); got != want {
		t.Errorf("%d publishes, want %d: one initial and one per edit", got, want)
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	t.Logf("edit-to-publish latency (hold-off 20ms, ceiling 100ms): min %v, max %v, all %v",
		latencies[0], latencies[len(latencies)-1], latencies)
	if max := latencies[len(latencies)-1]; max > time.Second {
		t.Errorf("slowest edit took %v to be published, want < 1s", max)
	}
}

// The ceiling publishes even when events keep the hold-off from ending.
func TestRunCeiling(t *testing.T) {
	dir := copyCanary(t)
	vsFile := filepath.Join(dir, "virtual-service.yaml")
	rec, _ := startRun(t, Config{Dir: dir, HoldOff: time.Hour, MaxDelay: 50 * time.Millisecond})

	start := time.Now()
	overwrite(t, vsFile, canaryVS(80, 20))
	_, at := rec.waitFor(t, 1, "edit with a one-hour hold-off", func(s *mesh.Snapshot) bool { return hasWeights(s, 80, 20) })
	t.Logf("published %v after the edit (ceiling 50ms)", at.Sub(start))
	if d := at.Sub(start); d > time.Second {
		t.Errorf("published %v after the edit, want < 1s", d)
	}
}

// The usual "atomic save": write a temporary file beside the real one,
// then rename it over.
func TestRunWriteThenRename(t *testing.T) {
	dir := copyCanary(t)
	rec, _ := startRun(t, Config{Dir: dir})

	for i, tmp := range []string{".virtual-service.yaml.tmp", "virtual-service.yaml~"} {
		want := [2]uint32{80, 20}
		if i == 1 {
			want = [2]uint32{60, 40}
		}
		n := rec.count()
		writeFile(t, filepath.Join(dir, tmp), canaryVS(int(want[0]), int(want[1])))
		if err := os.Rename(filepath.Join(dir, tmp), filepath.Join(dir, "virtual-service.yaml")); err != nil {
			t.Fatal(err)
		}
		if j, _ := rec.waitFor(t, n, "rename from "+tmp, func(s *mesh.Snapshot) bool { return hasWeights(s, want[0], want[1]) }); j != n {
			t.Errorf("rename from %s: %d publishes before the one with the new weights", tmp, j-n)
		}
	}
	rec.quiet(t, 300*time.Millisecond, "after the renames")
	if got := rec.count(); got != 3 {
		t.Errorf("%d publishes, want 3: one initial and one per rename", got)
	}
}

// A burst of edits, each within the hold-off of the previous one, is
// published a few times at most, ending with the final contents.
func TestRunBurstIsDebounced(t *testing.T) {
	dir := copyCanary(t)
	vsFile := filepath.Join(dir, "virtual-service.yaml")
	// The hold-off is far above the gap between edits, so that a loaded
	// machine cannot split the burst; the gap is above the time a reload
	// takes, so that a watcher that does not debounce publishes each edit.
	rec, _ := startRun(t, Config{Dir: dir, HoldOff: 150 * time.Millisecond, MaxDelay: 2 * time.Second})

	const edits = 20
	for i := 1; i <= edits; i++ {
		overwrite(t, vsFile, canaryVS(79+i, 21-i)) // ends at 99/1
		time.Sleep(5 * time.Millisecond)
	}
	last, _ := rec.waitFor(t, 1, "final contents of the burst", func(s *mesh.Snapshot) bool { return hasWeights(s, 99, 1) })
	rec.quiet(t, 400*time.Millisecond, "after the burst")
	n := rec.count() - 1
	t.Logf("%d edits, %d publishes", edits, n)
	if n >= edits {
		t.Errorf("%d edits gave %d publishes, want fewer", edits, n)
	}
	if last != rec.count()-1 {
		s, _ := rec.get(rec.count() - 1)
		t.Errorf("the last publish has weights %v, want the final [99 1]", canaryWeights(s))
	}
}

// Changes that change nothing (the same bytes, a comment, files that are
// not read) publish nothing.
func TestRunNoOpEdits(t *testing.T) {
	dir := copyCanary(t)
	vsFile := filepath.Join(dir, "virtual-service.yaml")
	rec, _ := startRun(t, Config{Dir: dir})

	original, err := os.ReadFile(vsFile)
	if err != nil {
		t.Fatal(err)
	}
	overwrite(t, vsFile, string(original))
	rec.quiet(t, 300*time.Millisecond, "rewriting identical bytes")
	overwrite(t, vsFile, "# a new comment\n"+string(original)+"\n\n# and another one\n")
	rec.quiet(t, 300*time.Millisecond, "adding comments")
	writeFile(t, filepath.Join(dir, "notes.txt"), serviceEntry("txt", "txt.example.com", "10.0.1.4"))
	writeFile(t, filepath.Join(dir, ".hidden.yaml"), serviceEntry("hidden", "hidden.example.com", "10.0.1.5"))
	rec.quiet(t, 300*time.Millisecond, "writing files that are not read")

	// The watcher is still alive: a real edit is the next publish.
	overwrite(t, vsFile, canaryVS(80, 20))
	if i, _ := rec.waitFor(t, 1, "real edit", func(s *mesh.Snapshot) bool { return hasWeights(s, 80, 20) }); i != 1 {
		t.Errorf("the real edit is publish %d, want 1", i)
	}
}

// A directory created after the start is watched, with its own
// sub-directories.
func TestRunNewSubdirectory(t *testing.T) {
	dir := copyCanary(t)
	rec, _ := startRun(t, Config{Dir: dir})

	deeper := filepath.Join(dir, "new", "deeper")
	if err := os.MkdirAll(deeper, 0o755); err != nil {
		t.Fatal(err)
	}
	// Events are handled in order: once this later edit is published, the
	// directories have been seen, and a watch added on them if it ever will.
	overwrite(t, filepath.Join(dir, "virtual-service.yaml"), canaryVS(80, 20))
	n, _ := rec.waitFor(t, 1, "edit after mkdir", func(s *mesh.Snapshot) bool { return hasWeights(s, 80, 20) })

	writeFile(t, filepath.Join(deeper, "extra.yaml"), serviceEntry("extra", "extra.example.com", "10.0.0.9"))
	rec.waitFor(t, n+1, "file in the new directory", func(s *mesh.Snapshot) bool {
		return slices.Contains(hostnames(s), "extra.example.com")
	})
	writeFile(t, filepath.Join(dir, "new", "other.yaml"), serviceEntry("other", "other.example.com", "10.0.0.8"))
	rec.waitFor(t, n+1, "file in the new directory's parent", func(s *mesh.Snapshot) bool {
		return slices.Contains(hostnames(s), "other.example.com")
	})
}

func TestRunStopsWhenCancelled(t *testing.T) {
	_, stop := startRun(t, Config{Dir: copyCanary(t)})
	if err := stop(); err != nil {
		t.Errorf("Run returned %v after cancellation, want nil", err)
	}
}

func TestRunMissingDir(t *testing.T) {
	w := New(Config{Dir: filepath.Join(t.TempDir(), "nope")})
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := w.Run(ctx, func(*mesh.Snapshot) { t.Error("published a snapshot of a missing directory") }); err == nil {
		t.Error("Run on a missing directory returned nil, want an error")
	}
}
