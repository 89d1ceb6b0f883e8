package translator

// Small constructors for TLS: SDS secrets, transport sockets, and the TLS
// contexts of Envoy (certificates over SDS) and proxyless gRPC
// (certificate provider instances: gRPC reads certificate files itself and
// does not speak SDS).

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// tlsTransportSocketName is the transport socket name both Envoy and gRPC
// recognise for TLS.
const tlsTransportSocketName = "envoy.transport_sockets.tls"

// certificateProviderInstance is the certificate provider a gRPC bootstrap
// written by minimesh names ("certificate_providers": {"default": ...}).
const certificateProviderInstance = "default"

// WorkloadCertSecret is the SDS secret "default": a workload's certificate
// chain and private key.
func WorkloadCertSecret(chainPEM, keyPEM []byte) *tlsv3.Secret {
	return &tlsv3.Secret{
		Name: SecretWorkloadCert,
		Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: inlineBytes(chainPEM),
			PrivateKey:       inlineBytes(keyPEM),
		}},
	}
}

// RootCASecret is the SDS secret "ROOTCA": the mesh's trust bundle.
func RootCASecret(bundlePEM []byte) *tlsv3.Secret {
	return &tlsv3.Secret{
		Name: SecretRootCA,
		Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: inlineBytes(bundlePEM),
		}},
	}
}

func inlineBytes(b []byte) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b}}
}

func fileSource(path string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: path}}
}

// sdsSecret refers to an SDS secret fetched over the ADS stream.
func sdsSecret(name string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: adsConfigSource()}
}

// providerInstance refers to a certificate of gRPC's certificate provider.
func providerInstance(certificate string) *tlsv3.CertificateProviderPluginInstance {
	return &tlsv3.CertificateProviderPluginInstance{InstanceName: certificateProviderInstance, CertificateName: certificate}
}

// meshTLSContext is the common part of mesh mTLS: our workload certificate,
// and the mesh roots to verify the peer, matching one of sans if given.
func meshTLSContext(flavor Flavor, sans []string, alpn ...string) *tlsv3.CommonTlsContext {
	if flavor == FlavorGRPC {
		vc := &tlsv3.CertificateValidationContext{CaCertificateProviderInstance: providerInstance(SecretRootCA)}
		for _, san := range sans {
			// gRPC matches this (deprecated in Envoy) field, on clients only.
			vc.MatchSubjectAltNames = append(vc.MatchSubjectAltNames, exactMatcher(san))
		}
		return &tlsv3.CommonTlsContext{
			TlsCertificateProviderInstance: providerInstance(SecretWorkloadCert),
			ValidationContextType:          &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: vc},
		}
	}
	vc := &tlsv3.CertificateValidationContext{}
	for _, san := range sans {
		vc.MatchTypedSubjectAltNames = append(vc.MatchTypedSubjectAltNames, &tlsv3.SubjectAltNameMatcher{
			SanType: tlsv3.SubjectAltNameMatcher_URI, Matcher: exactMatcher(san),
		})
	}
	return &tlsv3.CommonTlsContext{
		AlpnProtocols:                  alpn,
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sdsSecret(SecretWorkloadCert)},
		ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{
			CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
				DefaultValidationContext:         vc,
				ValidationContextSdsSecretConfig: sdsSecret(SecretRootCA),
			},
		},
	}
}

func exactMatcher(s string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s}}
}

// DownstreamMTLS is the server side of mesh mTLS: a client certificate that
// chains to the mesh roots is required.
func DownstreamMTLS(flavor Flavor) *tlsv3.DownstreamTlsContext {
	return &tlsv3.DownstreamTlsContext{
		CommonTlsContext:         meshTLSContext(flavor, nil, "h2", "http/1.1"),
		RequireClientCertificate: wrapperspb.Bool(true),
	}
}

// UpstreamMTLS is the client side of mesh mTLS: present our workload
// certificate, and accept only a server whose SPIFFE ID is one of sans.
func UpstreamMTLS(flavor Flavor, sni string, sans []string) *tlsv3.UpstreamTlsContext {
	ctx := &tlsv3.UpstreamTlsContext{CommonTlsContext: meshTLSContext(flavor, sans)}
	if flavor == FlavorEnvoy {
		ctx.Sni = sni
		ctx.CommonTlsContext.AlpnProtocols = []string{"h2", "http/1.1"}
	}
	return ctx
}

// UpstreamFileTLS is DestinationRule SIMPLE or MUTUAL TLS with certificate
// files on the proxy's disk.
func UpstreamFileTLS(sni, caFile, certFile, keyFile string, sans []string, skipVerify bool) *tlsv3.UpstreamTlsContext {
	common := &tlsv3.CommonTlsContext{}
	if certFile != "" {
		common.TlsCertificates = []*tlsv3.TlsCertificate{{CertificateChain: fileSource(certFile), PrivateKey: fileSource(keyFile)}}
	}
	if !skipVerify && (caFile != "" || len(sans) > 0) {
		vc := &tlsv3.CertificateValidationContext{}
		if caFile != "" {
			vc.TrustedCa = fileSource(caFile)
		}
		for _, san := range sans {
			for _, t := range []tlsv3.SubjectAltNameMatcher_SanType{tlsv3.SubjectAltNameMatcher_DNS, tlsv3.SubjectAltNameMatcher_URI} {
				vc.MatchTypedSubjectAltNames = append(vc.MatchTypedSubjectAltNames, &tlsv3.SubjectAltNameMatcher{SanType: t, Matcher: exactMatcher(san)})
			}
		}
		common.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: vc}
	}
	return &tlsv3.UpstreamTlsContext{Sni: sni, CommonTlsContext: common}
}

// TransportSocket wraps a TLS context as a transport socket.
func TransportSocket(ctx proto.Message) (*corev3.TransportSocket, error) {
	a, err := anyOf(ctx)
	if err != nil {
		return nil, err
	}
	return &corev3.TransportSocket{Name: tlsTransportSocketName, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: a}}, nil
}
