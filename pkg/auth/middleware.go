package auth

import (
	"encoding/json"
	"errors"
	"net/http"
)

// MsgInvalidToken is the message of every 401 for a token that was sent: which check failed
// is logged by the caller, never told to the client.
const MsgInvalidToken = "invalid or expired token"

// Error codes Require passes to its ErrorWriter.
const (
	CodeUnauthenticated  = "unauthenticated"
	CodePermissionDenied = "permission_denied"
)

// ErrorWriter renders an error response, so each service keeps its own JSON error shape.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, status int, code, message string)

// Require returns middleware that lets a request through only with a valid token holding perm,
// and stores its Principal in the request context (see FromContext). An empty perm asks for a
// valid token only. allowQuery also accepts the access_token query parameter (WebSocket
// upgrades). Failures go to onError: 401 CodeUnauthenticated for a missing or invalid token,
// 403 CodePermissionDenied naming the missing permission. A nil onError writes the CONTRACT §3
// shape {"error": {"code", "message"}}.
//
// The token is not removed from the URL: anything logging request URLs behind this middleware
// must redact access_token.
func (v *Verifier) Require(perm string, allowQuery bool, onError ErrorWriter) func(http.Handler) http.Handler {
	if onError == nil {
		onError = writeError
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := v.authenticate(r, allowQuery)
			if err != nil {
				// RFC 6750 §3: a 401 names the scheme; error="invalid_token" only when one was sent.
				challenge := `Bearer realm="exports"`
				msg := "missing bearer token"
				if !errors.Is(err, ErrMissingToken) {
					challenge += `, error="invalid_token"`
					msg = MsgInvalidToken
					if v.log != nil {
						v.log.Info("token refused", "path", r.URL.Path, "err", err)
					}
				}
				w.Header().Set("WWW-Authenticate", challenge)
				onError(w, r, http.StatusUnauthorized, CodeUnauthenticated, msg)
				return
			}
			if perm != "" && !p.Has(perm) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="exports", error="insufficient_scope"`)
				onError(w, r, http.StatusForbidden, CodePermissionDenied, "missing permission "+perm)
				return
			}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		})
	}
}

func (v *Verifier) authenticate(r *http.Request, allowQuery bool) (Principal, error) {
	token, err := TokenFromRequest(r, allowQuery)
	if err != nil {
		return Principal{}, err
	}
	return v.Verify(token)
}

func writeError(w http.ResponseWriter, _ *http.Request, status int, code, message string) {
	type body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]body{"error": {Code: code, Message: message}})
}
