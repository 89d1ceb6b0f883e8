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
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"go.uber.org/zap"

	"github.com/minimesh/minimesh/cache"
	"github.com/minimesh/minimesh/certs"
	"github.com/minimesh/minimesh/kubeauth/account"
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
	tokens            TokenReviewer
	identities        map[string]string // node ID -> SPIFFE ID it authenticated with

	// updating serializes mesh updates (the rebuilds they start run in
	// parallel, without mu).
	updating sync.Mutex

	// mu guards what follows; it is held only briefly, never while a proxy
	// is translated or published, so that proxies connect in parallel.
	mu         sync.Mutex
	mesh       *mesh.Snapshot
	index      translator.Index
	memo       *cache.Memo // hashes, validations and sets of what index shares
	generation int64       // of index: a rebuild never publishes an older one
	proxies    map[string]*proxy
	stats      counters

	release *releaser // returns a wave's freed memory (memory.go); nil: never
}

// proxy is what the runner remembers of a connected node. Its mutex
// serializes the rebuilds of this one proxy.
type proxy struct {
	node *corev3.Node

	mu         sync.Mutex
	listeners  []string // LDS names (gRPC)
	generation int64    // of the index last published from
	gone       bool     // disconnected: publish nothing more
}

// buildState is what one rebuild translates from, read together under mu.
type buildState struct {
	index      translator.Index
	memo       *cache.Memo
	generation int64
	// authenticated is the SPIFFE ID the proxy proved, if any.
	authenticated string
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
	// Tokens, when set, also accepts a proxy that shows no client
	// certificate but a Kubernetes service-account token (bearer) whose
	// service account is its pod's.
	Tokens TokenReviewer
}

// TokenReviewer tells whom a service-account token belongs to
// (kubeauth.Reviewer asks the API server).
type TokenReviewer interface {
	Review(ctx context.Context, token string) (account.Identity, error)
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
		tokens:           o.Tokens,
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
	r.updating.Lock()
	defer r.updating.Unlock()
	// From the previous index and memo: what a proxy gets for itself and
	// did not change is neither rebuilt nor encoded again.
	start := time.Now()
	r.mu.Lock()
	prevIndex, prevMemo := r.index, r.memo
	r.mu.Unlock()
	index := translator.NewIndexFrom(snap, r.translatorOptions, prevIndex)
	memo := cache.NewMemoFrom(prevMemo)
	indexed := time.Now()
	r.mu.Lock()
	r.mesh = snap
	r.index = index
	r.memo = memo
	r.generation++
	r.mu.Unlock()
	r.stats.updates.Add(1)
	proxies, pushed := r.rebuildAll(ctx)
	rebuilt := time.Now()
	if proxies == 0 {
		r.warm()
	}
	// index: the mesh indexed for translation; rebuild: every proxy
	// translated and its changes handed to its stream (not yet ACKed).
	r.log.Info("mesh updated", zap.Int("services", len(snap.Services)), zap.Int("proxies", proxies),
		zap.Int("pushed", pushed), zap.Duration("index", indexed.Sub(start)), zap.Duration("rebuild", rebuilt.Sub(indexed)))
}

// counters are the live Stats, updated from parallel rebuilds and read
// without the runner's lock (metrics scrapes must not wait for an update).
type counters struct {
	updates, publishes, translateErrors atomic.Int64
}

// rebuildAll rebuilds every connected proxy, on as many goroutines as
// there are CPUs (translation and hashing are independent per proxy; what
// proxies share is built once, see translator/memo.go and cache.Memo), and
// returns how many proxies it rebuilt and how many were pushed something.
func (r *Runner) rebuildAll(ctx context.Context) (rebuilt, pushedTo int) {
	r.mu.Lock()
	all := make([]*proxy, 0, len(r.proxies))
	for _, p := range r.proxies {
		all = append(all, p)
	}
	r.mu.Unlock()
	proxies := make(chan *proxy)
	var pushed atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < max(1, min(runtime.GOMAXPROCS(0), len(all))); w++ {
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
	for _, p := range all {
		proxies <- p
	}
	close(proxies)
	wg.Wait()
	return len(all), int(pushed.Load())
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
	p := &proxy{node: node}
	r.mu.Lock()
	r.proxies[node.GetId()] = p
	px := r.index.NewProxy(node, r.defaultNamespace)
	r.mu.Unlock()
	if px.Flavor == translator.FlavorGRPC &&
		px.Workload != nil && px.Workload.Labels[translator.TLSModeLabel] == "istio" {
		r.log.Warn("a proxyless gRPC workload is labeled as having a sidecar (security.istio.io/tlsMode: istio): "+
			"under PERMISSIVE, clients will send it mTLS, which a proxyless server accepts only under STRICT",
			zap.String("proxy", node.GetId()))
	}
	if _, err := r.rebuildAside(p); err != nil {
		// Publish an empty but valid snapshot so that the proxy is answered
		// and sees nothing rather than hanging; the error is logged. Not
		// over a good snapshot a concurrent update published meanwhile.
		p.mu.Lock()
		if !p.gone && r.cache.Get(node.GetId()) == nil {
			empty, _ := cache.NewSnapshot(nil)
			_, _ = r.cache.Publish(context.Background(), node.GetId(), empty)
		}
		p.mu.Unlock()
	}
	return nil
}

// Listeners rebuilds a node whose LDS subscription changed (xds.Hooks).
func (r *Runner) Listeners(node *corev3.Node, names []string) {
	r.mu.Lock()
	p := r.proxies[node.GetId()]
	r.mu.Unlock()
	if p == nil {
		return
	}
	p.mu.Lock()
	p.listeners = names
	p.mu.Unlock()
	_, _ = r.rebuildAside(p)
}

// rebuildAside is rebuild for a caller on a proxy's stream goroutine
// (Connect, Listeners): the rebuild runs on a goroutine of its own, and
// the caller waits for it.
//
// A stream goroutine lives as long as its proxy stays connected, and
// spends that time waiting for the next request, with about 4.3 KiB of
// its stack in use (gRPC's frames, mostly). Translating and hashing a
// proxy's configuration goes 8–16 KiB deeper. Run on the stream goroutine,
// it grows the stack to 16 KiB, and the runtime shrinks a stack only when
// less than a quarter of it is in use: 4.3 KiB of 16 is not, so every
// connected proxy would hold 16 KiB of stack for as long as it stays.
// A goroutine that ends gives its grown stack back; the stream goroutine
// keeps 8 KiB. At 500 proxies that is 4 MiB less.
func (r *Runner) rebuildAside(p *proxy) (changed bool, err error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		changed, err = r.rebuild(context.Background(), p)
	}()
	<-done
	return changed, err
}

// Disconnect forgets a node whose last stream closed (xds.Hooks).
func (r *Runner) Disconnect(nodeID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.proxies[nodeID]
	delete(r.proxies, nodeID)
	delete(r.identities, nodeID)
	if p != nil {
		// Wait for a rebuild in flight, and stop any later one, so that
		// nothing is published for the node after it is forgotten.
		// (Rebuilds never take r.mu while holding p.mu.)
		p.mu.Lock()
		p.gone = true
		p.mu.Unlock()
	}
	r.cache.Forget(nodeID)
}

// state returns what a rebuild of a node translates from.
func (r *Runner) state(nodeID string) buildState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return buildState{index: r.index, memo: r.memo, generation: r.generation, authenticated: r.identities[nodeID]}
}

// snapshot translates px from st and checks the result.
func (st buildState) snapshot(px translator.Proxy) (*cache.Snapshot, error) {
	res, err := st.index.Translate(px)
	if err != nil {
		return nil, err
	}
	defer res.Recycle() // the snapshot keeps the messages, not the lists
	return cache.NewSnapshotFrom(res, sharedRuns(res), st.memo)
}

// rebuild translates, checks and publishes one proxy's snapshot. On any
// error the proxy keeps what it has. Rebuilds of one proxy are serialized,
// and one that would publish from an older mesh snapshot than the last
// published does nothing (a connect that raced a mesh update).
func (r *Runner) rebuild(ctx context.Context, p *proxy) (changed bool, err error) {
	defer r.release.busy()
	st := r.state(p.node.GetId())
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone || st.generation < p.generation {
		return false, nil
	}
	p.generation = st.generation
	px := st.index.NewProxy(p.node, r.defaultNamespace)
	px.ListenerNames = p.listeners
	if err := r.addCertificate(&px, st.authenticated); err != nil {
		r.stats.translateErrors.Add(1)
		r.log.Error("cannot issue the workload certificate; the proxy keeps its last good configuration",
			zap.String("proxy", px.ID), zap.Error(err))
		return false, err
	}
	snap, err := st.snapshot(px)
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
	r.stats.translateErrors.Add(1)
	r.log.Error("configuration for proxy refused; it keeps its last good configuration",
		zap.String("proxy", px.ID), zap.Error(err))
	return false, err
}

// Versions returns the version of each resource type in the snapshot
// published for a proxy (type URL -> version), nil if it has none.
func (r *Runner) Versions(nodeID string) map[string]string {
	if s := r.cache.Get(nodeID); s != nil {
		return s.Versions()
	}
	return nil
}

// sharedRuns passes the translator's marks of shared runs to the cache.
func sharedRuns(res *translator.Resources) map[string][]cache.Run {
	var out map[string][]cache.Run
	for _, t := range cache.Types {
		runs := res.SharedRuns(t)
		if len(runs) == 0 {
			continue
		}
		if out == nil {
			out = make(map[string][]cache.Run, len(cache.Types))
		}
		list := make([]cache.Run, len(runs))
		for i, run := range runs {
			list[i] = cache.Run{Key: run.Key, Start: run.Start, End: run.End}
		}
		out[t] = list
	}
	return out
}
