// Package kubeauth authenticates proxies on Kubernetes by their
// service-account tokens.
//
// An injected sidecar holds a projected service-account token for the
// audience "minimesh" (kubelet rotates it). The xDS server receives it as a
// bearer token and asks the API server who it belongs to (TokenReview): the
// answer, "system:serviceaccount:NS:SA", must match the namespace and
// service account of the pod the proxy's node ID names. Envoy sends the
// token through gRPC's STS call credentials, so this package also serves
// the small RFC 8693 token-exchange endpoint that Envoy calls (sts.go).
package kubeauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/minimesh/minimesh/kubeauth/account"
)

// Audience is the audience minimesh's tokens are requested for (see
// account.Audience).
const Audience = account.Audience

// Identity is the service account a token belongs to.
type Identity = account.Identity

// Reviewer checks tokens with the TokenReview API and remembers the answers
// for a short while, so that a proxy reconnecting or opening its second
// stream costs no API call.
type Reviewer struct {
	client    kubernetes.Interface
	audiences []string
	ttl       time.Duration
	now       func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]review
}

type review struct {
	id      Identity
	err     error
	expires time.Time
}

// NewReviewer returns a Reviewer that accepts tokens for Audience.
// Answers are kept for a minute: a revoked token (its pod deleted) works at
// most that much longer.
func NewReviewer(client kubernetes.Interface) *Reviewer {
	return &Reviewer{client: client, audiences: []string{Audience}, ttl: time.Minute, now: time.Now,
		cache: map[[32]byte]review{}}
}

// Review returns the service account token belongs to, or why it is refused.
func (r *Reviewer) Review(ctx context.Context, token string) (Identity, error) {
	if token == "" {
		return Identity{}, errors.New("no token")
	}
	exp, err := jwtExpiry(token)
	if err != nil {
		// Not even shaped like a service-account token: refused without
		// asking the API server, so junk cannot make minimesh flood it.
		return Identity{}, err
	}
	key := sha256.Sum256([]byte(token))
	now := r.now()
	r.mu.Lock()
	if c, ok := r.cache[key]; ok && now.Before(c.expires) {
		r.mu.Unlock()
		return c.id, c.err
	}
	r.mu.Unlock()

	id, err := r.ask(ctx, token)
	var apiErr *apiError
	if errors.As(err, &apiErr) {
		return id, err // the API server did not answer: ask again next time
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.cache) > 10000 {
		clear(r.cache) // crude bound; a cold cache only costs API calls
	}
	expires := now.Add(r.ttl)
	if err == nil && exp.Before(expires) {
		expires = exp // an accepted token is not trusted past its own expiry
	}
	r.cache[key] = review{id: id, err: err, expires: expires}
	return id, err
}

// jwtExpiry returns the "exp" of a JWT's payload, read without checking
// the signature: it only bounds how long an answer of the API server is
// remembered, and shapes that are no JWT at all are refused early. The API
// server does the real checks.
func jwtExpiry(token string) (time.Time, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, errors.New("token is not a JWT (want header.payload.signature)")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, fmt.Errorf("token is not a JWT: payload: %w", err)
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return time.Time{}, fmt.Errorf("token is not a JWT: payload: %w", err)
	}
	if claims.Exp == 0 {
		return time.Time{}, errors.New("token has no expiry (exp); projected service-account tokens always have one")
	}
	return time.Unix(claims.Exp, 0), nil
}

// apiError is a failure to reach the API server, as opposed to a refusal.
type apiError struct{ err error }

func (e *apiError) Error() string { return "TokenReview: " + e.err.Error() }
func (e *apiError) Unwrap() error { return e.err }

func (r *Reviewer) ask(ctx context.Context, token string) (Identity, error) {
	tr, err := r.client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: r.audiences},
	}, metav1.CreateOptions{})
	if err != nil {
		return Identity{}, &apiError{err}
	}
	st := tr.Status
	if !st.Authenticated {
		if st.Error != "" {
			return Identity{}, fmt.Errorf("token refused by the API server: %s", st.Error)
		}
		return Identity{}, errors.New("token refused by the API server")
	}
	if !audienceGranted(st.Audiences, r.audiences) {
		return Identity{}, fmt.Errorf("token is not for audience %q", Audience)
	}
	return parseServiceAccount(st.User.Username)
}

// audienceGranted reports whether the review says the token is valid for
// one of want. An API server that ignores audiences returns none; that is
// refused too, since the token could be for anyone.
func audienceGranted(got, want []string) bool {
	for _, g := range got {
		for _, w := range want {
			if g == w {
				return true
			}
		}
	}
	return false
}

// parseServiceAccount reads "system:serviceaccount:NS:SA".
func parseServiceAccount(user string) (Identity, error) {
	rest, ok := strings.CutPrefix(user, "system:serviceaccount:")
	ns, sa, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || ns == "" || sa == "" || strings.Contains(sa, ":") {
		return Identity{}, fmt.Errorf("token belongs to %q, which is not a service account", user)
	}
	return Identity{Namespace: ns, ServiceAccount: sa}, nil
}
