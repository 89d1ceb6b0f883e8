package kubeauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/minimesh/minimesh/internal/kubetest"
)

func TestReviewAgainstAPIServer(t *testing.T) {
	env := kubetest.Start(t)
	env.Namespace(t, "demo")
	r := NewReviewer(env.Client(t))
	ctx := context.Background()

	id, err := r.Review(ctx, env.ServiceAccountToken(t, "demo", "echo", Audience))
	if err != nil {
		t.Fatalf("token of demo/echo for %q refused: %v", Audience, err)
	}
	if id != (Identity{Namespace: "demo", ServiceAccount: "echo"}) {
		t.Errorf("identity = %v, want demo/echo", id)
	}
	// A token for the API server's own audience is not for minimesh.
	if _, err := r.Review(ctx, env.ServiceAccountToken(t, "demo", "echo")); err == nil {
		t.Error("a token for another audience was accepted")
	}
	if _, err := r.Review(ctx, "not-a-token"); err == nil {
		t.Error("garbage accepted")
	}
	// A refusal is remembered; an answer is too (no second API call).
	r2 := NewReviewer(env.Client(t))
	tok := env.ServiceAccountToken(t, "demo", "client", Audience)
	for range 3 {
		if _, err := r2.Review(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if len(r2.cache) != 1 {
		t.Errorf("cache holds %d answers after 3 reviews of one token, want 1", len(r2.cache))
	}
}

func TestSTSExchange(t *testing.T) {
	env := kubetest.Start(t)
	env.Namespace(t, "demo")
	srv := httptest.NewServer(NewSTSHandler(NewReviewer(env.Client(t)), zap.NewNop()))
	defer srv.Close()
	token := env.ServiceAccountToken(t, "demo", "echo", Audience)

	// What gRPC's STS credentials POST.
	form := url.Values{
		"grant_type":         {grantTypeTokenExchange},
		"subject_token":      {token},
		"subject_token_type": {tokenTypeJWT},
		"audience":           {"minimesh"},
	}
	resp, err := http.PostForm(srv.URL+STSPath, form)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || body["access_token"] != token || body["token_type"] != "Bearer" {
		t.Fatalf("exchange: %d %v", resp.StatusCode, body)
	}
	if body["expires_in"].(float64) <= 0 {
		t.Errorf("expires_in = %v", body["expires_in"])
	}

	form.Set("subject_token", env.ServiceAccountToken(t, "demo", "echo")) // wrong audience
	resp, err = http.PostForm(srv.URL+STSPath, form)
	if err != nil {
		t.Fatal(err)
	}
	body = map[string]any{}
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || body["error"] != "invalid_grant" {
		t.Errorf("wrong audience: %d %v, want 401 invalid_grant", resp.StatusCode, body)
	}
	resp, err = http.Post(srv.URL+STSPath, "application/x-www-form-urlencoded", strings.NewReader("grant_type=password"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("wrong grant type: %d, want 400", resp.StatusCode)
	}
}

func TestParseServiceAccount(t *testing.T) {
	for user, ok := range map[string]bool{
		"system:serviceaccount:demo:echo": true,
		"system:serviceaccount:demo":      false,
		"kubernetes-admin":                false,
		"system:serviceaccount::echo":     false,
		"system:serviceaccount:a:b:c":     false,
	} {
		if _, err := parseServiceAccount(user); (err == nil) != ok {
			t.Errorf("parseServiceAccount(%q) err = %v, want ok=%v", user, err, ok)
		}
	}
}

func TestJWTExpiry(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	if exp, err := jwtExpiry(enc(`{"alg":"RS256"}`) + "." + enc(`{"exp":1900000000}`) + ".sig"); err != nil || exp.Unix() != 1900000000 {
		t.Errorf("a JWT's exp: %v, %v", exp, err)
	}
	for _, bad := range []string{"junk", "a.b", "a.!!!.c", enc("{}") + "." + enc(`{"sub":"x"}`) + ".sig"} {
		if _, err := jwtExpiry(bad); err == nil {
			t.Errorf("jwtExpiry(%q) accepted it", bad)
		}
	}
}
