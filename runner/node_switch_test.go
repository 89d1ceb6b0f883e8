package runner

import (
	"context"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// TestNodeIDCannotChangeMidStream: a client authorized as one node (here an
// out-of-mesh client with a certificate of its namespace) that then asks as
// another node on the same stream is refused, instead of getting that
// node's configuration and private key.
func TestNodeIDCannotChangeMidStream(t *testing.T) {
	cp, caDir, _ := secureCP(t)
	addr := cp.Addr.String()
	open := func(creds credentials.TransportCredentials) discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Cleanup(cancel)
		s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// victim connected
	victim := open(credentials.NewTLS(clientTLS(t, caDir, "my-app", nil)))
	victim.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "my-app-v1.default", UserAgentName: "envoy"}, TypeUrl: resourcev3.SecretType, ResourceNames: []string{"default"}})
	if _, err := victim.Recv(); err != nil {
		t.Fatal(err)
	}

	att := open(credentials.NewTLS(clientTLS(t, caDir, "intruder", nil)))
	if err := att.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "outsider.default", UserAgentName: "envoy"}, TypeUrl: resourcev3.ClusterType}); err != nil {
		t.Fatal(err)
	}
	if _, err := att.Recv(); err != nil {
		t.Fatalf("the client's own first request was refused: %v", err)
	}
	if err := att.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "my-app-v1.default", UserAgentName: "envoy"}, TypeUrl: resourcev3.SecretType, ResourceNames: []string{"default"}}); err != nil {
		t.Fatal(err)
	}
	r2, err := att.Recv()
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("asking as another node mid-stream: err = %v (response with %d resources), want PermissionDenied", err, len(r2.GetResources()))
	}
}
