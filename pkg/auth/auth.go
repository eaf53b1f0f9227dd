// Package auth verifies the bearer tokens of CONTRACT §3 and turns them into a Principal that
// handlers can ask for permissions.
//
// A token is a JWT carrying sub (the user id, required), name (optional), permissions (an array
// of strings) and exp (required). The verifier pins the algorithms: HS256 with a secret,
// RS256/ES256 with the keys of a JWK Set (NewVerifier, from Config), whatever the token's header
// claims, so "none", other HMAC sizes and the RS256-with-an-HMAC-secret confusion are all
// refused before any key is used. Expiry is mandatory, checked with a small leeway for clock
// skew; a token may not live longer than Config.MaxTTL; iss and aud are checked when configured.
//
// Every rejection wraps ErrInvalidToken (or ErrMissingToken when there is nothing to check), so
// callers branch on those two sentinels and log the wrapped reason. Require is the HTTP
// middleware: 401 for a missing or invalid token (the body never says why: the reason would
// help a forger), 403 for a valid token lacking the permission, with the body left to the
// caller's ErrorWriter.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The permissions of CONTRACT §3.
const (
	// PermReadExports covers every GET, the streams, downloads and the WebSocket.
	PermReadExports = "READ_EXPORTS"
	// PermWriteExports covers every POST, PUT and DELETE.
	PermWriteExports = "WRITE_EXPORTS"
	// PermManageExports sees and acts on every user's jobs, schedules and platforms, and reads
	// the audit; without it a user's reach is their own resources.
	PermManageExports = "MANAGE_EXPORTS"
)

// Leeway absorbs clock skew between the token issuer and this process when checking exp (and
// nbf, when present).
const Leeway = 30 * time.Second

// maxTokenLen bounds the work done on a token before its signature is checked; real tokens are a
// few hundred bytes.
const maxTokenLen = 8 << 10

// Sentinels callers branch on; Verify and TokenFromRequest wrap them with the reason.
var (
	// ErrMissingToken means the request carries no token at all.
	ErrMissingToken = errors.New("missing bearer token")
	// ErrInvalidToken means a token was given but cannot be trusted.
	ErrInvalidToken = errors.New("invalid token")
)

// Principal is the authenticated caller.
type Principal struct {
	Subject     string    // the sub claim: the user id
	Name        string    // the name claim, empty when absent
	Permissions []string  // the permissions claim
	Expires     time.Time // the exp claim
}

// Has reports whether p holds perm.
func (p Principal) Has(perm string) bool {
	return slices.Contains(p.Permissions, perm)
}

// Manager reports whether p holds MANAGE_EXPORTS: every user's resources are in reach.
func (p Principal) Manager() bool { return p.Has(PermManageExports) }

// Reaches reports whether p may see and act on a resource owned by owner (its own, or any with
// MANAGE_EXPORTS). A resource out of reach is answered as one that does not exist.
func (p Principal) Reaches(owner string) bool { return p.Subject == owner || p.Manager() }

// claims is the wire form of a token's payload. Permissions is a []string so that a
// permissions claim of any other shape fails decoding and the token is rejected as malformed.
type claims struct {
	Name        string   `json:"name,omitempty"`
	Permissions []string `json:"permissions"`
	jwt.RegisteredClaims
}

// Verifier checks tokens. It is safe for concurrent use.
type Verifier struct {
	parser  *jwt.Parser
	keyFunc jwt.Keyfunc
	maxTTL  time.Duration // 0: no bound
	now     func() time.Time
	log     *slog.Logger // where Require logs why a token was refused; nil: nowhere
}

// NewHS256Verifier returns a Verifier for tokens signed with HS256 and secret, with no bound on
// their lifetime and no iss or aud check (tests and tools; services use NewVerifier).
func NewHS256Verifier(secret []byte) (*Verifier, error) {
	return newHS256Verifier(secret, time.Now)
}

// newHS256Verifier lets tests fix the clock.
func newHS256Verifier(secret []byte, now func() time.Time) (*Verifier, error) {
	if len(secret) == 0 {
		return nil, errors.New("auth: empty HS256 secret")
	}
	return newVerifier(verifierOptions{secret: secret, now: now})
}

// Verify checks token's algorithm, signature, expiry and claims and returns its Principal.
// An empty token is ErrMissingToken; every other failure wraps ErrInvalidToken, and the jwt
// error giving the reason (jwt.ErrTokenExpired, ...) stays reachable through errors.Is.
func (v *Verifier) Verify(token string) (Principal, error) {
	if token == "" {
		return Principal{}, ErrMissingToken
	}
	if len(token) > maxTokenLen {
		return Principal{}, fmt.Errorf("%w: token longer than %d bytes", ErrInvalidToken, maxTokenLen)
	}
	var c claims
	if _, err := v.parser.ParseWithClaims(token, &c, v.keyFunc); err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if c.Subject == "" {
		return Principal{}, fmt.Errorf("%w: missing sub claim", ErrInvalidToken)
	}
	if v.maxTTL > 0 {
		// A token valid for years is a password that cannot be revoked: exp - iat (exp - now
		// for a token without iat) is bounded.
		from := v.now()
		if c.IssuedAt != nil {
			from = c.IssuedAt.Time
		}
		if life := c.ExpiresAt.Sub(from); life > v.maxTTL+Leeway {
			return Principal{}, fmt.Errorf("%w: token lives %s, more than the %s allowed", ErrInvalidToken, life.Round(time.Second), v.maxTTL)
		}
	}
	return Principal{Subject: c.Subject, Name: c.Name, Permissions: c.Permissions, Expires: c.ExpiresAt.Time}, nil
}

// Mint signs an HS256 token for p valid from now for ttl. It serves the dev token tool and
// tests; production tokens come from the identity provider.
func Mint(secret []byte, p Principal, ttl time.Duration, now time.Time) (string, error) {
	return MintFor(secret, p, ttl, now, "", "")
}

// MintFor is Mint with an issuer and an audience (empty: none).
func MintFor(secret []byte, p Principal, ttl time.Duration, now time.Time, issuer, audience string) (string, error) {
	switch {
	case len(secret) == 0:
		return "", errors.New("minting token: empty secret")
	case p.Subject == "":
		return "", errors.New("minting token: empty subject")
	case ttl <= 0:
		return "", fmt.Errorf("minting token: ttl %v is not positive", ttl)
	}
	perms := p.Permissions
	if perms == nil {
		perms = []string{} // an explicit empty array, not null
	}
	c := claims{
		Name:        p.Name,
		Permissions: perms,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   p.Subject,
			Issuer:    issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	if audience != "" {
		c.Audience = jwt.ClaimStrings{audience}
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("minting token: %w", err)
	}
	return s, nil
}

// TokenFromRequest returns the bearer token of r: the Authorization header ("Bearer <token>",
// scheme case-insensitive) or, when allowQuery is set, the access_token query parameter, which
// browsers need because their WebSocket API cannot set headers. The header wins when both are
// present. It returns ErrMissingToken when there is neither, and wraps ErrInvalidToken when the
// header is present but not a bearer token.
func TokenFromRequest(r *http.Request, allowQuery bool) (string, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", fmt.Errorf("%w: authorization header is not a bearer token", ErrInvalidToken)
		}
		token = strings.TrimSpace(token)
		if token == "" {
			return "", fmt.Errorf("%w: empty bearer token", ErrInvalidToken)
		}
		return token, nil
	}
	if allowQuery {
		if token := r.URL.Query().Get("access_token"); token != "" {
			return token, nil
		}
	}
	return "", ErrMissingToken
}

type principalKey struct{}

// WithPrincipal returns a copy of ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the Principal stored by WithPrincipal (and so by Require).
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
