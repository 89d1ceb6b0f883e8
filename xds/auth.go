package xds

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Peer is what the server knows of the client at the other end of a
// stream, from its TLS client certificate.
type Peer struct {
	// Authenticated is true when the stream came over TLS with a client
	// certificate that Options.VerifyClient accepted.
	Authenticated bool
	// SPIFFEID is the identity in that certificate
	// ("spiffe://cluster.local/ns/default/sa/my-app").
	SPIFFEID string
	// Address is the client's address, for logs.
	Address string
	// Token is the bearer token the client sent in its "authorization"
	// metadata (a Kubernetes service-account token), "" when none. The
	// xDS server does not check it: Hooks.Authorize does.
	Token string
}

// peerOf reads the client identity of a stream.
func peerOf(ctx context.Context) Peer {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return Peer{}
	}
	out := Peer{Address: p.Addr.String(), Token: bearerToken(ctx)}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return out
	}
	leaf := info.State.PeerCertificates[0]
	if len(leaf.URIs) == 1 {
		out.Authenticated = true
		out.SPIFFEID = leaf.URIs[0].String()
	}
	return out
}

// bearerToken returns the token of an "authorization: Bearer ..." header.
func bearerToken(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if scheme, token, ok := strings.Cut(v, " "); ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(token)
		}
	}
	return ""
}

// VerifyFunc checks a client's certificate chain (leaf first) and returns
// its SPIFFE ID, or an error saying why the client is refused.
type VerifyFunc func(chain []*x509.Certificate) (string, error)

// auditedCreds wraps TLS transport credentials so that every refused
// handshake (no certificate, a foreign CA, an expired certificate,
// plaintext on a TLS port) is logged and counted, not only dropped.
type auditedCreds struct {
	credentials.TransportCredentials
	log     *zap.Logger
	metrics *Metrics
}

func (c auditedCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	out, info, err := c.TransportCredentials.ServerHandshake(conn)
	if err != nil {
		reason := "tls_handshake"
		var rec tls.RecordHeaderError
		if errors.As(err, &rec) {
			reason = "not_tls"
		}
		c.metrics.refuse(reason)
		c.log.Warn("xDS connection refused", zap.String("remote", conn.RemoteAddr().String()),
			zap.String("reason", reason), zap.Error(err))
	}
	return out, info, err
}

func (c auditedCreds) Clone() credentials.TransportCredentials {
	return auditedCreds{TransportCredentials: c.TransportCredentials.Clone(), log: c.log, metrics: c.metrics}
}

// refused is the status a refused stream ends with.
func refused(format string, args ...any) error {
	return status.Errorf(codes.PermissionDenied, format, args...)
}
