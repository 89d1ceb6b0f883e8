// Package runner connects the pieces of the data flow: it takes each new
// mesh snapshot from a watcher, translates it for every connected proxy,
// and publishes the result into the cache that the xDS server answers
// from. It implements the xDS server's hooks, so a proxy that connects gets
// its configuration built on the spot.
//
// Bad configuration never takes config away: if a proxy's resources fail to
// translate or fail the cache's checks, the proxy keeps its last good
// snapshot and the error is logged and counted.
package runner

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"go.uber.org/zap"

	"github.com/minimesh/minimesh/cache"
	"github.com/minimesh/minimesh/certs"
	"github.com/minimesh/minimesh/mesh"
	"github.com/minimesh/minimesh/translator"
)

// Runner keeps every connected proxy's snapshot up to date.
type Runner struct {
	cache             *cache.Cache
	log               *zap.Logger
	defaultNamespace  string
	translatorOptions translator.Options
	ca                *certs.CA
	store             *certs.Store
	requireAuth       bool
	identities        map[string]string // node ID -> SPIFFE ID it authenticated with

	mu      sync.Mutex
	mesh    *mesh.Snapshot
	index   translator.Index
	memo    *cache.Memo // hashes and validations of what index shares
	proxies map[string]*proxy
	stats   counters
}

// proxy is what the runner remembers of a connected node.
type proxy struct {
	node      *corev3.Node
	listeners []string // LDS names (gRPC)
}

// Stats counts what the runner did, for tests, logs and the demo.
type Stats struct {
	Updates         int // mesh snapshots received
	Publishes       int // proxy snapshots whose content changed
	TranslateErrors int // proxy snapshots refused (translation or checks)
}

// Options configure a Runner.
type Options struct {
	// DefaultNamespace of out-of-mesh proxies without NAMESPACE metadata.
	DefaultNamespace string
	// CA issues the workload certificates Envoy sidecars get over SDS; nil:
	// no certificates (and no mTLS from sidecars).
	CA *certs.CA
	// RequireAuthentication refuses xDS clients without a client
	// certificate from the CA, and any whose identity is not the node's.
	RequireAuthentication bool
	// KeepCertsDir keeps issued workload certificates across restarts, so
	// that a restarted control plane serves the same ones; "": memory only.
	KeepCertsDir string
}

// New returns a runner serving an empty mesh until the first Update.
func New(c *cache.Cache, log *zap.Logger, o Options) *Runner {
	empty := &mesh.Snapshot{}
	r := &Runner{
		cache:            c,
		log:              log,
		defaultNamespace: o.DefaultNamespace,
		mesh:             empty,
		proxies:          map[string]*proxy{},
		identities:       map[string]string{},
		ca:               o.CA,
		requireAuth:      o.RequireAuthentication,
	}
	if o.CA != nil {
		r.store = certs.NewStore(o.CA)
		if o.KeepCertsDir != "" {
			r.store = certs.NewPersistentStore(o.CA, o.KeepCertsDir)
		}
		r.translatorOptions.TrustDomain = o.CA.TrustDomain()
	}
	r.index = translator.NewIndex(empty, r.translatorOptions)
	r.memo = cache.NewMemo()
	return r
}

// Update installs a new mesh snapshot and rebuilds every connected proxy.
// Proxies whose resources did not change are not pushed anything.
func (r *Runner) Update(ctx context.Context, snap *mesh.Snapshot) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mesh = snap
	r.index = translator.NewIndex(snap, r.translatorOptions)
	r.memo = cache.NewMemo()
	r.stats.updates.Add(1)
	pushed := r.rebuildAll(ctx)
	r.log.Info("mesh updated", zap.Int("services", len(snap.Services)), zap.Int("proxies", len(r.proxies)),
		zap.Int("pushed", pushed))
}

// counters are the live Stats, updated from parallel rebuilds and read
// without the runner's lock (metrics scrapes must not wait for an update).
type counters struct {
	updates, publishes, translateErrors atomic.Int64
}

// rebuildAll rebuilds every connected proxy, on as many goroutines as
// there are CPUs (translation and hashing are independent per proxy; what
// proxies share is built once, see translator/memo.go), and returns how
// many proxies were pushed something. The caller holds r.mu.
func (r *Runner) rebuildAll(ctx context.Context) int {
	proxies := make(chan *proxy)
	var pushed atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < max(1, min(runtime.GOMAXPROCS(0), len(r.proxies))); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range proxies {
				if changed, _ := r.rebuild(ctx, p); changed {
					pushed.Add(1)
				}
			}
		}()
	}
	for _, p := range r.proxies {
		proxies <- p
	}
	close(proxies)
	wg.Wait()
	return int(pushed.Load())
}

// Stats returns a copy of the counters.
func (r *Runner) Stats() Stats {
	return Stats{
		Updates:         int(r.stats.updates.Load()),
		Publishes:       int(r.stats.publishes.Load()),
		TranslateErrors: int(r.stats.translateErrors.Load()),
	}
}

// Connect builds and publishes the first snapshot of a node (xds.Hooks).
func (r *Runner) Connect(node *corev3.Node) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := &proxy{node: node}
	r.proxies[node.GetId()] = p
	if px := r.index.NewProxy(node, r.defaultNamespace); px.Flavor == translator.FlavorGRPC &&
		px.Workload != nil && px.Workload.Labels[translator.TLSModeLabel] == "istio" {
		r.log.Warn("a proxyless gRPC workload is labeled as having a sidecar (security.istio.io/tlsMode: istio): "+
			"under PERMISSIVE, clients will send it mTLS, which a proxyless server accepts only under STRICT",
			zap.String("proxy", node.GetId()))
	}
	if _, err := r.rebuild(context.Background(), p); err != nil {
		// Publish an empty but valid snapshot so that the proxy is answered
		// and sees nothing rather than hanging; the error is logged.
		empty, _ := cache.NewSnapshot(nil)
		_, _ = r.cache.Publish(context.Background(), node.GetId(), empty)
	}
	return nil
}

// Listeners rebuilds a node whose LDS subscription changed (xds.Hooks).
func (r *Runner) Listeners(node *corev3.Node, names []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.proxies[node.GetId()]
	if p == nil {
		return
	}
	p.listeners = names
	_, _ = r.rebuild(context.Background(), p)
}

// Disconnect forgets a node whose last stream closed (xds.Hooks).
func (r *Runner) Disconnect(nodeID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.proxies, nodeID)
	delete(r.identities, nodeID)
	r.cache.Forget(nodeID)
}

// rebuild translates, checks and publishes one proxy's snapshot. On any
// error the proxy keeps what it has.
func (r *Runner) rebuild(ctx context.Context, p *proxy) (changed bool, err error) {
	px := r.index.NewProxy(p.node, r.defaultNamespace)
	px.ListenerNames = p.listeners
	if err := r.addCertificate(&px); err != nil {
		r.stats.translateErrors.Add(1)
		r.log.Error("cannot issue the workload certificate; the proxy keeps its last good configuration",
			zap.String("proxy", px.ID), zap.Error(err))
		return false, err
	}
	res, err := r.index.Translate(px)
	if err == nil {
		var snap *cache.Snapshot
		snap, err = cache.NewSnapshotMemo(res.ByType(), r.memo)
		if err == nil {
			var types []string
			types, err = r.cache.Publish(ctx, px.ID, snap)
			if err == nil {
				if len(types) > 0 {
					r.stats.publishes.Add(1)
					r.log.Debug("published", zap.String("proxy", px.ID), zap.Strings("types", types))
				}
				return len(types) > 0, nil
			}
		}
	}
	r.stats.translateErrors.Add(1)
	r.log.Error("configuration for proxy refused; it keeps its last good configuration",
		zap.String("proxy", px.ID), zap.Error(err))
	return false, err
}
