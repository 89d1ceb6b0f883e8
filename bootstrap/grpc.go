package bootstrap

import (
	"encoding/json"
	"fmt"
)

// grpcServerListenerTemplate names the listener a proxyless gRPC server asks
// for: %s becomes the address it listens on ("10.0.0.1:50051"). The
// translator must name server listeners the same way.
const grpcServerListenerTemplate = "grpc/server?xds.resource.listening_address=%s"

// GRPCOptions describes one proxyless gRPC process's bootstrap.
type GRPCOptions struct {
	// NodeID is "<workload>.<namespace>", as for Envoy. Required.
	NodeID string
	// XDSAddress is the "host:port" of minimesh's xDS server.
	XDSAddress string
}

// grpcBootstrap is the JSON file gRPC's xDS support (gRPC-Go, C-core,
// grpc-js) reads from the file named by GRPC_XDS_BOOTSTRAP. Only the fields
// minimesh sets are here.
type grpcBootstrap struct {
	XDSServers                         []grpcXDSServer `json:"xds_servers"`
	Node                               grpcNode        `json:"node"`
	ServerListenerResourceNameTemplate string          `json:"server_listener_resource_name_template"`
}

// grpcXDSServer is one xDS server and how to reach it.
type grpcXDSServer struct {
	ServerURI      string             `json:"server_uri"`
	ChannelCreds   []grpcChannelCreds `json:"channel_creds"`
	ServerFeatures []string           `json:"server_features"`
}

// grpcChannelCreds names the credentials for the channel to an xDS server.
type grpcChannelCreds struct {
	Type string `json:"type"`
}

// grpcNode is the node the process presents to minimesh.
type grpcNode struct {
	ID       string            `json:"id"`
	Metadata map[string]string `json:"metadata"`
	Locality struct{}          `json:"locality"`
}

// GRPC returns the xDS bootstrap for a proxyless gRPC client or server, as
// indented JSON. The channel to minimesh is plaintext for now.
func GRPC(o GRPCOptions) ([]byte, error) {
	node, err := parseNodeID(o.NodeID)
	if err != nil {
		return nil, err
	}
	xds, err := parseAddress("xDS address", o.XDSAddress)
	if err != nil {
		return nil, err
	}
	b := grpcBootstrap{
		XDSServers: []grpcXDSServer{{
			ServerURI:      xds.String(),
			ChannelCreds:   []grpcChannelCreds{{Type: "insecure"}},
			ServerFeatures: []string{"xds_v3"},
		}},
		Node: grpcNode{
			ID:       node.ID,
			Metadata: map[string]string{NamespaceMetadataKey: node.Namespace},
		},
		ServerListenerResourceNameTemplate: grpcServerListenerTemplate,
	}
	out, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("grpc bootstrap for node %s: %w", o.NodeID, err)
	}
	return append(out, '\n'), nil
}
