// Package xds is minimesh's gRPC xDS server: the Aggregated Discovery
// Service, state of the world and delta, answering from the cache. It owns
// the protocol side: node identification, per-proxy ACK/NACK and version
// tracking, keepalive and limits, and not re-sending a rejected version.
//
// xds imports the cache's go-control-plane interface and Envoy's API
// types (and the cache package for type names); it knows nothing of the mesh
// model, the translator or watchers.
package xds

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/minimesh/minimesh/cache"
)

var errNoNodeID = status.Error(codes.InvalidArgument, "the first request of a stream must carry a node with an id (\"<workload>.<namespace>\")")

// Options tune the gRPC server.
type Options struct {
	// TLS secures the connections and authenticates clients by their
	// certificates; nil means plaintext, where nothing is authenticated.
	TLS *tls.Config
	// Secrets are the only SDS secret names proxies may ask for; nil: any.
	Secrets []string
	// MaxConcurrentStreams per connection (default 100000).
	MaxConcurrentStreams uint32
	// KeepaliveTime is how often the server pings an idle connection to
	// find dead proxies (default 30 s); KeepaliveTimeout how long it waits
	// for the answer (default 10 s).
	KeepaliveTime, KeepaliveTimeout time.Duration
	// Activity, if set, is called for every request a stream reads (an
	// ACK ends a push): the runner waits for a quiet moment to collect
	// memory (runner/memory.go). It must not block.
	Activity func()
}

// Server is the xDS gRPC server.
type Server struct {
	grpc    *grpc.Server
	Tracker *Tracker
	Metrics *Metrics
	log     *zap.Logger
}

// NewServer returns a server answering from c and reporting to hooks.
func NewServer(c *cache.Cache, hooks Hooks, metrics *Metrics, log *zap.Logger, o Options) *Server {
	if o.MaxConcurrentStreams == 0 {
		o.MaxConcurrentStreams = 100000
	}
	if o.KeepaliveTime == 0 {
		o.KeepaliveTime = 30 * time.Second
	}
	if o.KeepaliveTimeout == 0 {
		o.KeepaliveTimeout = 10 * time.Second
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	tracker := NewTracker()
	cb := newCallbacks(hooks, tracker, metrics, log, o.Secrets)
	ads := adsServer{
		sotw:  &sotwServer{cache: c, callbacks: cb, tracker: tracker, activity: o.Activity},
		delta: &deltaServer{cache: c, callbacks: cb, activity: o.Activity},
	}

	opts := []grpc.ServerOption{
		grpc.MaxConcurrentStreams(o.MaxConcurrentStreams),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: o.KeepaliveTime, Timeout: o.KeepaliveTimeout}),
		// Proxies may ping as often as every 10 s without being cut off.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		// Responses whose resources are encoded once and shared are sent
		// without copying them (codec.go).
		grpc.ForceServerCodecV2(newSharedBytesCodec()),
	}
	if o.TLS != nil {
		opts = append(opts, grpc.Creds(auditedCreds{TransportCredentials: credentials.NewTLS(o.TLS), log: log, metrics: metrics}))
	}
	g := grpc.NewServer(opts...)
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, ads)
	return &Server{grpc: g, Tracker: tracker, Metrics: metrics, log: log}
}

// adsServer is the Aggregated Discovery Service: state-of-the-world
// streams (sotw.go) and delta streams (delta.go).
type adsServer struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
	sotw  *sotwServer
	delta *deltaServer
}

func (a adsServer) StreamAggregatedResources(s discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	return a.sotw.serve(s)
}

func (a adsServer) DeltaAggregatedResources(s discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	return a.delta.serve(s)
}

// Serve accepts connections on lis until Stop.
func (s *Server) Serve(lis net.Listener) error {
	err := s.grpc.Serve(lis)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Stop closes every stream and the listener. Proxies keep their config and
// reconnect to another replica (or to this one when it is back).
func (s *Server) Stop() { s.grpc.Stop() }

// isGRPC tells a proxyless gRPC client by its user agent.
func isGRPC(node *corev3.Node) bool {
	return strings.Contains(strings.ToLower(node.GetUserAgentName()), "grpc")
}
