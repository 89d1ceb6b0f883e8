package runner

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/minimesh/minimesh/certs"
)

// serverTLS is the xDS server's TLS: a server certificate from the mesh CA
// (re-issued before it expires), and a client certificate from the same CA
// required of every proxy, whose SPIFFE ID the xDS server then checks
// against the node the proxy claims to be.
//
// With tokens (Kubernetes), a client certificate is optional: a proxy
// without one must then show a service-account token, which Authorize
// checks.
func serverTLS(ca *certs.CA, addr net.Addr, names []string, tokens bool) (*tls.Config, error) {
	dns := append([]string{"localhost"}, names...)
	if host, err := os.Hostname(); err == nil && host != "" {
		dns = append(dns, host)
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if tcp, ok := addr.(*net.TCPAddr); ok && !tcp.IP.IsUnspecified() && !tcp.IP.IsLoopback() {
		ips = append(ips, tcp.IP)
	}
	sc := &serverCert{issue: func() (*certs.Cert, error) { return ca.IssueServer("minimesh", dns, ips) }}
	if _, err := sc.get(); err != nil {
		return nil, fmt.Errorf("xDS server certificate: %w", err)
	}
	clientAuth := tls.RequireAnyClientCert
	if tokens {
		clientAuth = tls.RequestClientCert
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return sc.get()
		},
		// Verification is ours (not Go's RequireAndVerifyClientCert) so that
		// a refusal says why: foreign CA, expired, no SPIFFE ID.
		ClientAuth: clientAuth,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				if tokens {
					return nil // Authorize wants a token instead
				}
				return errors.New("no client certificate")
			}
			chain := make([]*x509.Certificate, 0, len(raw))
			for _, der := range raw {
				c, err := x509.ParseCertificate(der)
				if err != nil {
					return fmt.Errorf("client certificate: %w", err)
				}
				chain = append(chain, c)
			}
			_, err := ca.Verify(chain, x509.ExtKeyUsageClientAuth)
			return err
		},
	}, nil
}

// serverCert holds the xDS server's certificate and renews it when due.
type serverCert struct {
	issue func() (*certs.Cert, error)
	mu    sync.Mutex
	cert  *certs.Cert
	tls   *tls.Certificate
}

func (s *serverCert) get() (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cert != nil && time.Now().Before(s.cert.RefreshAt()) {
		return s.tls, nil
	}
	c, err := s.issue()
	if err != nil {
		if s.tls != nil {
			return s.tls, nil // keep serving the current one while it is valid
		}
		return nil, err
	}
	t, err := c.TLSCertificate()
	if err != nil {
		return nil, err
	}
	s.cert, s.tls = c, &t
	return s.tls, nil
}
