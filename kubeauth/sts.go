package kubeauth

import (
	"encoding/json"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// The token exchange (RFC 8693) that gRPC's STS call credentials speak.
//
// Envoy cannot send a token that changes on disk as an xDS header by
// itself, but its Google gRPC client can fetch one from a Security Token
// Service: it reads the projected token file, POSTs it here, and sends back
// what it gets as "authorization: Bearer ..." on the xDS stream, refreshing
// before expires_in runs out. minimesh checks the subject token with
// TokenReview and hands the same token back: the xDS server reviews it
// again, so nothing here is trusted on its own.
const (
	grantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeJWT           = "urn:ietf:params:oauth:token-type:jwt"
	tokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
)

// STSPath is where the token exchange endpoint is served.
const STSPath = "/token"

// stsLifetime is the expires_in of exchanged tokens: the client comes back
// that often, so a rotated projected token is picked up within it.
const stsLifetime = 5 * time.Minute

// NewSTSHandler serves the token exchange for the tokens r accepts.
func NewSTSHandler(r *Reviewer, log *zap.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			stsError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
			return
		}
		if err := req.ParseForm(); err != nil {
			stsError(w, http.StatusBadRequest, "invalid_request", err.Error())
			return
		}
		switch {
		case req.PostForm.Get("grant_type") != grantTypeTokenExchange:
			stsError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be "+grantTypeTokenExchange)
			return
		case req.PostForm.Get("subject_token_type") != tokenTypeJWT:
			stsError(w, http.StatusBadRequest, "invalid_request", "subject_token_type must be "+tokenTypeJWT)
			return
		}
		token := req.PostForm.Get("subject_token")
		id, err := r.Review(req.Context(), token)
		if err != nil {
			log.Warn("token exchange refused", zap.String("remote", req.RemoteAddr), zap.Error(err))
			stsError(w, http.StatusUnauthorized, "invalid_grant", err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(map[string]any{
			"access_token":      token,
			"issued_token_type": tokenTypeAccessToken,
			"token_type":        "Bearer",
			"expires_in":        int(stsLifetime / time.Second),
		})
		log.Debug("token exchanged", zap.String("service_account", id.String()))
	})
}

// stsError writes an OAuth 2.0 error response (RFC 6749 section 5.2).
func stsError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}
