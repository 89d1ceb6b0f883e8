// Package envoysim is a simulated Envoy xDS client: it opens one ADS
// stream (state of the world or delta), subscribes the way Envoy does
// (clusters and listeners as wildcards, then the endpoints, route
// configurations and SDS secrets they name), validates every resource it
// receives with Envoy's own rules, and ACKs or NACKs like Envoy.
//
// It stands in for Envoy, which cannot run here, in end-to-end tests and
// load tests. It checks what Envoy would reject on arrival; it does not
// forward traffic.
package envoysim

import (
	"context"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
)

// Config describes the simulated Envoy.
type Config struct {
	NodeID string
	Delta  bool // delta xDS instead of state of the world
	// Metadata is the node metadata (for example NAMESPACE).
	Metadata map[string]string
	// Decoder, if set, is shared with other simulated Envoys: each distinct
	// resource content is decoded and validated once (see Decoder).
	Decoder *Decoder
	// OnUpdate, if set, is called with every response once it has been
	// ACKed or NACKed, from the stream's goroutine, with no lock held (it
	// may call the Envoy's methods). Updates() is then not buffered.
	OnUpdate func(Update)
}

// Update is one response the simulated Envoy received.
type Update struct {
	TypeURL string
	Version string   // SotW version_info, or delta system_version_info
	Names   []string // resources added or updated, in response order (shared with other Envoys: read only)
	Removed []string // delta only
	NACK    string   // non-empty if the response was rejected
	Bytes   int      // size of the DiscoveryResponse (proto.Size)
	At      time.Time
	// Acked is when the ACK (or NACK) of this response was sent.
	Acked time.Time
}

// Stats counts what one simulated Envoy received.
type Stats struct {
	Responses int
	NACKs     int
	Bytes     int64 // sum of the responses' sizes
}

// Envoy is one simulated Envoy.
type Envoy struct {
	cfg  Config
	node *corev3.Node

	mu        sync.Mutex
	resources map[string]map[string]*resource // type -> name -> resource
	shared    map[string]*indexed             // types whose map is shared with other Envoys (read only)
	typeVer   map[string]string               // type -> last accepted version (SotW)
	subs      map[string][]string             // EDS/RDS/SDS names subscribed
	updates   chan Update
	problems  []string
	stats     Stats
}

// New returns a simulated Envoy; call Run to connect it.
func New(cfg Config) *Envoy {
	node := &corev3.Node{Id: cfg.NodeID, UserAgentName: "envoy", Cluster: "sim"}
	if len(cfg.Metadata) > 0 {
		node.Metadata = structOf(cfg.Metadata)
	}
	buffer := 1024
	if cfg.OnUpdate != nil {
		buffer = 0
	}
	return &Envoy{
		cfg: cfg, node: node,
		resources: map[string]map[string]*resource{},
		shared:    map[string]*indexed{},
		typeVer:   map[string]string{},
		subs:      map[string][]string{},
		updates:   make(chan Update, buffer),
	}
}

// NodeID is the Envoy's node ID.
func (e *Envoy) NodeID() string { return e.cfg.NodeID }

// Updates delivers every response received, in order. Reading it is
// optional: updates are dropped when nobody reads.
func (e *Envoy) Updates() <-chan Update { return e.updates }

// Stats returns what the Envoy received so far.
func (e *Envoy) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

// Run opens the ADS stream on conn and serves it until ctx ends or the
// stream fails.
func (e *Envoy) Run(ctx context.Context, conn grpc.ClientConnInterface) error {
	client := discoveryv3.NewAggregatedDiscoveryServiceClient(conn)
	if e.cfg.Delta {
		stream, err := client.DeltaAggregatedResources(ctx, grpc.ForceCodecV2(newResponseCodec(e.cfg.Decoder)))
		if err != nil {
			return err
		}
		return e.runDelta(stream)
	}
	stream, err := client.StreamAggregatedResources(ctx, grpc.ForceCodecV2(newResponseCodec(e.cfg.Decoder)))
	if err != nil {
		return err
	}
	return e.runSotW(stream)
}

// runSotW subscribes CDS and LDS as wildcards and follows their references.
func (e *Envoy) runSotW(stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient) error {
	first := true
	var names requestNames
	send := func(typeURL, version, nonce string, subscribed []string, nack string) error {
		req := &discoveryv3.DiscoveryRequest{TypeUrl: typeURL, VersionInfo: version, ResponseNonce: nonce}
		if first {
			req.Node, first = e.node, false
		}
		if nack != "" {
			req.ErrorDetail = &status.Status{Code: 3, Message: nack}
		}
		return stream.SendMsg(&sotwRequest{req: req, names: names.encoded(typeURL, subscribed)})
	}
	for _, t := range []string{resourcev3.ClusterType, resourcev3.ListenerType} {
		if err := send(t, "", "", nil, ""); err != nil {
			return err
		}
	}
	nonces := map[string]string{}
	for {
		resp := &sotwResponse{}
		if err := stream.RecvMsg(resp); err != nil {
			return err
		}
		at := time.Now()
		t := resp.typeURL
		nonces[t] = resp.nonce
		var (
			u       Update
			version string
			follow  []subscription
		)
		e.cfg.Decoder.work(func() {
			x, nack := e.collect(resp.resources)
			u = Update{TypeURL: t, Version: resp.version, Names: x.getNames(), NACK: nack, Bytes: resp.size, At: at}
			version = resp.version
			e.mu.Lock()
			e.count(u)
			if nack == "" {
				e.replace(t, x)
				e.typeVer[t] = version
			} else {
				version = e.typeVer[t]
			}
			follow = e.followReferences(t)
			e.mu.Unlock()
		})
		nack := u.NACK
		// Envoy's order: a new cluster list may change what endpoints are
		// needed; subscribe to those before acknowledging the clusters.
		for _, f := range follow {
			e.mu.Lock()
			v := e.typeVer[f.typeURL]
			e.mu.Unlock()
			if err := send(f.typeURL, v, nonces[f.typeURL], f.names, ""); err != nil {
				return err
			}
		}
		if err := send(t, version, resp.nonce, e.subscribed(t), nack); err != nil {
			return err
		}
		u.Acked = time.Now()
		e.cfg.Decoder.work(func() { e.deliver(u) })
	}
}

// runDelta does the same over the incremental protocol.
func (e *Envoy) runDelta(stream discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient) error {
	first := true
	send := func(req *discoveryv3.DeltaDiscoveryRequest) error {
		if first {
			req.Node, first = e.node, false
		}
		return stream.Send(req)
	}
	for _, t := range []string{resourcev3.ClusterType, resourcev3.ListenerType} {
		if err := send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: t}); err != nil {
			return err
		}
	}
	for {
		resp := &deltaResponse{}
		if err := stream.RecvMsg(resp); err != nil {
			return err
		}
		at := time.Now()
		t := resp.typeURL
		var (
			u      Update
			nack   string
			follow []subscription
		)
		e.cfg.Decoder.work(func() {
			var x *indexed
			if x, nack = e.collect(resp.resources); nack == "" && resp.misnamed != "" {
				e.problem(resp.misnamed)
				x, nack = nil, resp.misnamed
			}
			u = Update{TypeURL: t, Version: resp.version, Names: x.getNames(),
				Removed: resp.removed, NACK: nack, Bytes: resp.size, At: at}
			e.mu.Lock()
			defer e.mu.Unlock()
			e.count(u)
			if nack != "" {
				return
			}
			if e.resources[t] == nil {
				e.install(t, x)
			} else if len(x.names) > 0 {
				maps.Copy(e.own(t), x.byName)
			}
			if len(resp.removed) > 0 {
				m := e.own(t)
				for _, name := range resp.removed {
					delete(m, name)
				}
			}
			old := map[string][]string{}
			for k, v := range e.subs {
				old[k] = v
			}
			follow = e.followReferences(t)
			for i := range follow {
				follow[i].unsubscribe = minus(old[follow[i].typeURL], follow[i].names)
				follow[i].names = minus(follow[i].names, old[follow[i].typeURL])
			}
		})
		for _, f := range follow {
			if len(f.names) == 0 && len(f.unsubscribe) == 0 {
				continue
			}
			if err := send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: f.typeURL,
				ResourceNamesSubscribe: f.names, ResourceNamesUnsubscribe: f.unsubscribe}); err != nil {
				return err
			}
		}
		ack := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: t, ResponseNonce: resp.nonce}
		if nack != "" {
			ack.ErrorDetail = &status.Status{Code: 3, Message: nack}
		}
		if err := send(ack); err != nil {
			return err
		}
		u.Acked = time.Now()
		e.cfg.Decoder.work(func() { e.deliver(u) })
	}
}

// count adds a response to the stats. Must hold e.mu.
func (e *Envoy) count(u Update) {
	e.stats.Responses++
	e.stats.Bytes += int64(u.Bytes)
	if u.NACK != "" {
		e.stats.NACKs++ // the reason is in problems already
	}
}

// subscription is a change of the names subscribed for one type.
type subscription struct {
	typeURL     string
	names       []string
	unsubscribe []string
}

// followReferences recomputes the EDS names (from EDS clusters), RDS names
// (from listeners) and SDS names (from the TLS contexts of both) after
// clusters or listeners changed, and returns the subscriptions that
// changed. Must hold e.mu.
func (e *Envoy) followReferences(typeURL string) []subscription {
	var out []subscription
	set := func(target string, names []string) {
		if !slices.IsSorted(names) { // (a shared list is sorted already, and read only)
			sort.Strings(names)
		}
		names = slices.Compact(names) // (writes nothing when there is no duplicate)
		if slices.Equal(names, e.subs[target]) {
			return
		}
		e.subs[target] = names
		// Envoy drops what it no longer subscribes to.
		var drop []string
		for name := range e.resources[target] {
			if _, ok := slices.BinarySearch(names, name); !ok {
				drop = append(drop, name)
			}
		}
		if len(drop) > 0 {
			m := e.own(target)
			for _, name := range drop {
				delete(m, name)
			}
		}
		out = append(out, subscription{typeURL: target, names: names})
	}
	switch typeURL {
	case resourcev3.ClusterType:
		if x := e.shared[typeURL]; x != nil {
			set(resourcev3.EndpointType, x.edsNames()) // worked out once for every Envoy sharing x
			break
		}
		set(resourcev3.EndpointType, edsNamesOf(e.resources[typeURL]))
	case resourcev3.ListenerType:
		var names []string
		for _, r := range e.resources[typeURL] {
			names = append(names, r.rds...)
		}
		set(resourcev3.RouteType, names)
	default:
		return nil
	}
	// Envoy asks for secrets when a cluster or listener using them is
	// created, after the endpoints or route configurations.
	var secrets []string
	for _, t := range []string{resourcev3.ClusterType, resourcev3.ListenerType} {
		for _, r := range e.resources[t] {
			secrets = append(secrets, r.sds...)
		}
	}
	if len(secrets) > 0 || len(e.subs[resourcev3.SecretType]) > 0 {
		set(resourcev3.SecretType, secrets)
	}
	return out
}

func (e *Envoy) subscribed(typeURL string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.subs[typeURL]
}

// replace installs what a SotW response sends. Listeners and clusters come
// whole: what a response does not list is removed. Endpoint sets, route
// configurations and secrets come only when they change: Envoy keeps the
// ones a response does not list, as long as it subscribes to them. Must
// hold e.mu.
func (e *Envoy) replace(typeURL string, x *indexed) {
	if typeURL == resourcev3.ListenerType || typeURL == resourcev3.ClusterType || e.resources[typeURL] == nil {
		// (For the other types, followReferences drops the ones no
		// longer subscribed to.)
		e.install(typeURL, x)
		return
	}
	if len(x.names) > 0 {
		maps.Copy(e.own(typeURL), x.byName)
	}
}

func (e *Envoy) deliver(u Update) {
	if e.cfg.OnUpdate != nil {
		e.cfg.OnUpdate(u)
	}
	select {
	case e.updates <- u:
	default:
	}
}

// collect checks decoded resources and indexes them by name; the NACK
// text is set if any is invalid or two have one name. A large response
// that other Envoys received too is indexed once, and the index shared
// (read only: see own).
func (e *Envoy) collect(decoded []*resource) (*indexed, string) {
	shared, key, share := e.cfg.Decoder.indexedAs(decoded)
	if shared != nil {
		return shared, ""
	}
	x := &indexed{byName: make(map[string]*resource, len(decoded)), names: make([]string, 0, len(decoded))}
	for _, r := range decoded {
		if r.err != "" {
			e.problem(r.err)
			return nil, r.err
		}
		if _, dup := x.byName[r.name]; dup {
			msg := "duplicate resource name " + r.name
			e.problem(msg)
			return nil, msg
		}
		x.byName[r.name] = r
		x.names = append(x.names, r.name)
	}
	if share {
		e.cfg.Decoder.keepIndexed(key, decoded, x)
	}
	return x, ""
}

// install makes x what the Envoy holds of a type, shared if x is.
// Must hold e.mu.
func (e *Envoy) install(typeURL string, x *indexed) {
	e.resources[typeURL] = x.byName
	if x.shared {
		e.shared[typeURL] = x
	} else {
		delete(e.shared, typeURL)
	}
}

// own returns the Envoy's map of a type, copying it first if it is shared
// with other Envoys, so that it can be changed. Must hold e.mu.
func (e *Envoy) own(typeURL string) map[string]*resource {
	if e.shared[typeURL] != nil {
		e.resources[typeURL] = maps.Clone(e.resources[typeURL])
		delete(e.shared, typeURL)
	}
	return e.resources[typeURL]
}

func (e *Envoy) problem(p string) {
	e.mu.Lock()
	e.problems = append(e.problems, p)
	e.mu.Unlock()
}

// Problems lists everything Envoy would have rejected so far.
func (e *Envoy) Problems() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.problems...)
}
