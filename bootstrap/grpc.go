package bootstrap

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
)

// grpcServerListenerTemplate names the listener a proxyless gRPC server asks
// for: %s becomes the address it listens on ("10.0.0.1:50051"). The
// translator must name server listeners the same way.
const grpcServerListenerTemplate = "grpc/server?xds.resource.listening_address=%s"

// CertificateProviderInstance is the certificate provider instance that the
// gRPC bootstrap defines (with GRPCOptions.CertDir) and that the TLS
// contexts minimesh sends to gRPC refer to; the translator uses the same
// name.
const CertificateProviderInstance = "default"

// certRefreshInterval is how often gRPC re-reads the certificate files, so
// that a certificate written again by `minimesh certs issue` is picked up
// without a restart.
const certRefreshInterval = "10s"

// GRPCOptions describes one proxyless gRPC process's bootstrap.
type GRPCOptions struct {
	// NodeID is "<workload>.<namespace>", as for Envoy. Required.
	NodeID string
	// XDSAddress is the "host:port" of minimesh's xDS server.
	XDSAddress string
	// CertDir is the directory, as the gRPC process sees it, where
	// `minimesh certs issue --out` wrote the workload's key, chain and
	// roots. When set, the bootstrap defines the file_watcher certificate
	// provider instance "default" over these files, which the TLS settings
	// minimesh sends refer to for mTLS between workloads. Without it, gRPC
	// refuses (NACKs) every listener and cluster that asks for TLS.
	CertDir string
	// XDSTLS makes the process reach minimesh over mutual TLS with the
	// certificate files in CertDir (channel_creds "tls", gRFC A65), instead
	// of in plaintext. gRPC checks minimesh's certificate against the roots
	// there and against the host of XDSAddress (a DNS SAN for a name, an IP
	// SAN for an address). Needs CertDir.
	XDSTLS bool
}

// grpcBootstrap is the JSON file gRPC's xDS support (gRPC-Go, C-core,
// grpc-js) reads from the file named by GRPC_XDS_BOOTSTRAP. Only the fields
// minimesh sets are here.
type grpcBootstrap struct {
	XDSServers                         []grpcXDSServer             `json:"xds_servers"`
	Node                               grpcNode                    `json:"node"`
	CertificateProviders               map[string]grpcCertProvider `json:"certificate_providers,omitempty"`
	ServerListenerResourceNameTemplate string                      `json:"server_listener_resource_name_template"`
}

// grpcXDSServer is one xDS server and how to reach it.
type grpcXDSServer struct {
	ServerURI      string             `json:"server_uri"`
	ChannelCreds   []grpcChannelCreds `json:"channel_creds"`
	ServerFeatures []string           `json:"server_features"`
}

// grpcChannelCreds names the credentials for the channel to an xDS server:
// "insecure", or "tls" with the files of a file_watcher configuration.
type grpcChannelCreds struct {
	Type   string           `json:"type"`
	Config *grpcFileWatcher `json:"config,omitempty"`
}

// grpcCertProvider is a certificate provider instance.
type grpcCertProvider struct {
	PluginName string          `json:"plugin_name"`
	Config     grpcFileWatcher `json:"config"`
}

// grpcFileWatcher is the configuration of gRPC's file_watcher certificate
// provider; the "tls" channel credentials take the same fields.
type grpcFileWatcher struct {
	CertificateFile   string `json:"certificate_file"`
	PrivateKeyFile    string `json:"private_key_file"`
	CACertificateFile string `json:"ca_certificate_file"`
	RefreshInterval   string `json:"refresh_interval"`
}

// grpcNode is the node the process presents to minimesh.
type grpcNode struct {
	ID       string            `json:"id"`
	Metadata map[string]string `json:"metadata"`
	Locality struct{}          `json:"locality"`
}

// GRPC returns the xDS bootstrap for a proxyless gRPC client or server, as
// indented JSON.
func GRPC(o GRPCOptions) ([]byte, error) {
	node, err := parseNodeID(o.NodeID)
	if err != nil {
		return nil, err
	}
	xds, err := parseAddress("xDS address", o.XDSAddress)
	if err != nil {
		return nil, err
	}
	if o.XDSTLS && o.CertDir == "" {
		return nil, fmt.Errorf("grpc bootstrap for node %s: xDS over TLS needs the directory of the workload's certificate files", o.NodeID)
	}
	if err := checkCertDir(o.CertDir); err != nil {
		return nil, err
	}
	creds := grpcChannelCreds{Type: "insecure"}
	var providers map[string]grpcCertProvider
	if o.CertDir != "" {
		files := fileWatcher(o.CertDir)
		providers = map[string]grpcCertProvider{
			CertificateProviderInstance: {PluginName: "file_watcher", Config: files},
		}
		if o.XDSTLS {
			creds = grpcChannelCreds{Type: "tls", Config: &files}
		}
	}
	b := grpcBootstrap{
		XDSServers: []grpcXDSServer{{
			ServerURI:      xds.String(),
			ChannelCreds:   []grpcChannelCreds{creds},
			ServerFeatures: []string{"xds_v3"},
		}},
		Node: grpcNode{
			ID:       node.ID,
			Metadata: map[string]string{NamespaceMetadataKey: node.Namespace},
		},
		CertificateProviders:               providers,
		ServerListenerResourceNameTemplate: grpcServerListenerTemplate,
	}
	out, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("grpc bootstrap for node %s: %w", o.NodeID, err)
	}
	return append(out, '\n'), nil
}

// fileWatcher is the file_watcher configuration for the files in dir.
func fileWatcher(dir string) grpcFileWatcher {
	f := certFilesIn(dir)
	return grpcFileWatcher{
		CertificateFile:   f.Chain,
		PrivateKeyFile:    f.Key,
		CACertificateFile: f.Roots,
		RefreshInterval:   certRefreshInterval,
	}
}

// checkCertDir refuses a certificate directory name with control
// characters: it would break the comment lines of an Envoy bootstrap.
func checkCertDir(dir string) error {
	if strings.ContainsFunc(dir, unicode.IsControl) {
		return fmt.Errorf("certificate directory %q contains a control character", dir)
	}
	return nil
}
