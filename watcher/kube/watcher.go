package kube

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/minimesh/minimesh/mesh"
	"github.com/minimesh/minimesh/watcher"
)

// Watcher watches one cluster.
type Watcher struct {
	cfg     Config
	caches  *caches
	status  *statusReporter
	changed chan struct{} // an informer saw a change; buffered, holds one
	last    *mesh.Snapshot
	// lastGood serves the last good version of invalid objects.
	lastGood mesh.LastGood
	// problems logs what a rebuild finds, each problem once.
	problems *watcher.ProblemLog
}

// New returns a watcher of the cluster cfg.RESTConfig reaches; call Run.
func New(cfg Config) (*Watcher, error) {
	if cfg.RESTConfig == nil {
		return nil, errors.New("kube watcher: no RESTConfig (see kube.RESTConfig)")
	}
	kc, err := kubernetes.NewForConfig(cfg.RESTConfig)
	if err != nil {
		return nil, fmt.Errorf("kube watcher: Kubernetes client: %w", err)
	}
	ic, err := istioclient.NewForConfig(cfg.RESTConfig)
	if err != nil {
		return nil, fmt.Errorf("kube watcher: Istio client: %w", err)
	}
	return newWatcher(cfg, kc, ic)
}

// newWatcher returns a watcher that uses these clients (fakes in tests).
func newWatcher(cfg Config, kc kubernetes.Interface, ic istioclient.Interface) (*Watcher, error) {
	cfg = cfg.withDefaults()
	status, err := newStatusReporter(cfg, kc, ic)
	if err != nil {
		return nil, err
	}
	w := &Watcher{
		cfg:      cfg,
		caches:   newCaches(kc, ic, cfg.Namespaces),
		status:   status,
		changed:  make(chan struct{}, 1),
		problems: watcher.NewProblemLog(cfg.Log, zapcore.WarnLevel),
	}
	w.caches.each(w.watch)
	status.exists = func(kind, namespace, name string) bool {
		_, ok := w.caches.get(kind, namespace, name)
		return ok
	}
	return w, nil
}

// watch makes an informer signal every change, and log its watch errors
// (it relists and retries by itself, with a backoff).
func (w *Watcher) watch(kind string, inf cache.SharedIndexInformer) {
	// Neither call fails before the informer starts.
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { w.signal() },
		UpdateFunc: func(old, cur any) {
			if resourceVersion(old) != resourceVersion(cur) {
				w.signal()
			}
		},
		DeleteFunc: func(any) { w.signal() },
	})
	_ = inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
		w.cfg.Log.Warn("Kubernetes watch failed; the informer relists and retries",
			zap.String("kind", kind), zap.Error(err))
	})
}

// signal notes that something changed, without blocking the informer.
// Resync rebuilds from the caches soon, as if something had changed: for a
// replica that has just become the one that writes Events and status
// (Config.WritesStatus), so that the problems already there get theirs.
func (w *Watcher) Resync() { w.signal() }

func (w *Watcher) signal() {
	select {
	case w.changed <- struct{}{}:
	default: // a change is already pending
	}
}

// Run watches the cluster until ctx ends. Once every informer has synced it
// publishes the first snapshot, then one after every debounced burst of
// changes that changes the snapshot. It returns an error only when ctx
// ends before the informers have synced (for example because RBAC does not
// let minimesh list what it reads: the watch errors say so in the log).
func (w *Watcher) Run(ctx context.Context, publish func(*mesh.Snapshot)) error {
	ctx, cancel := context.WithCancel(ctx)
	w.status.start()
	defer w.status.stop()
	defer w.caches.shutdown()
	defer cancel() // stop the informers before waiting for them
	w.caches.start(ctx)

	start := time.Now()
	if !w.caches.waitForSync(ctx) {
		return fmt.Errorf("kube watcher: stopped before the informers synced (still waiting for %s): %w",
			strings.Join(w.caches.unsynced(), ", "), ctx.Err())
	}
	w.cfg.Log.Info("Kubernetes informers synced", zap.Duration("took", time.Since(start)))
	w.rebuild(ctx, publish)

	debounce := watcher.NewDebounce(w.cfg.HoldOff, w.cfg.MaxDelay)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.changed:
			debounce.Changed()
		case <-debounce.C():
			debounce.Fired()
			w.rebuild(ctx, publish)
		}
	}
}

// rebuild converts the caches into a snapshot, reports problems, and
// publishes the snapshot if it changed.
func (w *Watcher) rebuild(ctx context.Context, publish func(*mesh.Snapshot)) {
	c := w.collect()
	opts := mesh.Options{DomainSuffix: w.cfg.DomainSuffix, RootNamespace: w.cfg.RootNamespace}
	snap, diags, notes := w.lastGood.Build(c.objs, nil, opts)
	diags = append(c.diags, diags...)
	problems := make([]error, 0, len(diags)+len(notes))
	for _, d := range diags {
		problems = append(problems, d)
	}
	w.problems.Report(append(problems, notes...))
	if w.last == nil || !reflect.DeepEqual(w.last, snap) {
		w.last = snap
		publish(snap)
	}
	// After publishing: writing Events and status takes round trips to
	// the API server, and proxies should not wait for them.
	w.status.report(ctx, diags, c.origins)
}

// resourceVersion of a cached object; "" when it has none.
func resourceVersion(obj any) string {
	if m, err := meta.Accessor(obj); err == nil {
		return m.GetResourceVersion()
	}
	return ""
}
