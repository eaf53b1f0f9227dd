package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/productsmanager/exportplatform/pkg/config"
)

func TestConfig(t *testing.T) {
	t.Parallel()
	env := func(kv ...string) Config {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		e := config.New(func(k string) string { return m[k] })
		c := ConfigFrom(e)
		if err := e.Err(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	long := strings.Repeat("s", 32)
	for _, tt := range []struct {
		name string
		c    Config
		want string // substring of the error; "" for valid
	}{
		{"nothing", env(), "neither JWT_SECRET nor JWT_JWKS_URL"},
		{"blank secret", env("JWT_SECRET", ""), "neither JWT_SECRET nor JWT_JWKS_URL"},
		{"dev mode", env("AUTH_DEV_MODE", "true"), ""},
		{"public dev secret", env("JWT_SECRET", DevSecret), "public local-dev-secret"},
		{"short secret", env("JWT_SECRET", "hunter2"), "at least 32"},
		{"long secret", env("JWT_SECRET", long), ""},
		{"jwks", env("JWT_JWKS_URL", "https://id.example.com/.well-known/jwks.json"), ""},
		{"jwks not a URL", env("JWT_JWKS_URL", "id.example.com/jwks"), "not an http(s) URL"},
		{"no lifetime", env("JWT_SECRET", long, "JWT_MAX_TTL", "0s"), "JWT_MAX_TTL"},
	} {
		err := tt.c.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: error %v, want one saying %q", tt.name, err, tt.want)
		}
	}
	if c := env("AUTH_DEV_MODE", "true"); c.Secret != DevSecret {
		t.Errorf("dev mode secret %q", c.Secret)
	}
	if c := env(); c.MaxTTL != 24*time.Hour {
		t.Errorf("default JWT_MAX_TTL %s", c.MaxTTL)
	}
	if s := slogString(env("JWT_SECRET", long)); strings.Contains(s, long) {
		t.Errorf("the secret is logged: %s", s)
	}
}

func slogString(c Config) string {
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "auth", c)
	return b.String()
}

// jwksServer serves a JWK Set whose keys a test can rotate, counting fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []map[string]string
	fetches int
}

func newJWKSServer(t *testing.T) *jwksServer {
	s := &jwksServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.fetches++
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": s.keys})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(keys ...map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, k *rsa.PublicKey) map[string]string {
	return map[string]string{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
		"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(kid string, k *ecdsa.PublicKey) map[string]string {
	pub, err := k.Bytes() // uncompressed point: 0x04 || X || Y
	if err != nil {
		panic(err)
	}
	return map[string]string{"kty": "EC", "kid": kid, "alg": "ES256", "use": "sig", "crv": "P-256",
		"x": b64(pub[1:33]), "y": b64(pub[33:])}
}

func signKID(t *testing.T, m jwt.SigningMethod, kid string, key any, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestJWKSVerifier: RS256 and ES256 tokens are checked against a JWK Set served over HTTP; a
// token naming a key the set did not have fetches the set again (rotation); HS256, none, a
// key not in the set, a wrong issuer or audience and an overlong lifetime are refused.
func TestJWKSVerifier(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv := newJWKSServer(t)
	srv.serve(rsaJWK("k1", &rsaKey.PublicKey), ecJWK("e1", &ecKey.PublicKey))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := NewVerifier(ctx, Config{JWKSURL: srv.URL, Issuer: "https://id.example.com", Audience: "exports",
		MaxTTL: 24 * time.Hour, JWKSRefresh: time.Hour}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "alice", "permissions": []string{PermReadExports}, "iss": "https://id.example.com",
			"aud": []string{"exports"}, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		if edit != nil {
			edit(c)
		}
		return c
	}
	ok := func(name, token string) {
		t.Helper()
		if p, err := v.Verify(token); err != nil || p.Subject != "alice" || !p.Has(PermReadExports) {
			t.Errorf("%s: %+v, %v", name, p, err)
		}
	}
	refused := func(name, token string) {
		t.Helper()
		if _, err := v.Verify(token); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: accepted (err %v)", name, err)
		}
	}
	ok("RS256", signKID(t, jwt.SigningMethodRS256, "k1", rsaKey, claims(nil)))
	ok("ES256", signKID(t, jwt.SigningMethodES256, "e1", ecKey, claims(nil)))
	refused("HS256 without a secret", signKID(t, jwt.SigningMethodHS256, "", []byte(strings.Repeat("k", 32)), claims(nil)))
	refused("alg none", signKID(t, jwt.SigningMethodNone, "", jwt.UnsafeAllowNoneSignatureType, claims(nil)))
	refused("another key under a known kid", signKID(t, jwt.SigningMethodRS256, "k1", rotated, claims(nil)))
	refused("wrong issuer", signKID(t, jwt.SigningMethodRS256, "k1", rsaKey, claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })))
	refused("no issuer", signKID(t, jwt.SigningMethodRS256, "k1", rsaKey, claims(func(c jwt.MapClaims) { delete(c, "iss") })))
	refused("wrong audience", signKID(t, jwt.SigningMethodRS256, "k1", rsaKey, claims(func(c jwt.MapClaims) { c["aud"] = "billing" })))
	refused("year 9999", signKID(t, jwt.SigningMethodRS256, "k1", rsaKey, claims(func(c jwt.MapClaims) {
		c["exp"] = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	})))
	refused("25 h without iat", signKID(t, jwt.SigningMethodRS256, "k1", rsaKey, claims(func(c jwt.MapClaims) {
		delete(c, "iat")
		c["exp"] = now.Add(25 * time.Hour).Unix()
	})))
	ok("23 h", signKID(t, jwt.SigningMethodRS256, "k1", rsaKey, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(23 * time.Hour).Unix() })))

	// The issuer rotates: the set now holds k2 only. A k2 token fetches the set again at once.
	srv.serve(rsaJWK("k2", &rotated.PublicKey))
	ok("RS256 with the rotated key", signKID(t, jwt.SigningMethodRS256, "k2", rotated, claims(nil)))
}

// TestMaxTTL: the HS256 verifier of NewVerifier bounds the lifetime too.
func TestMaxTTL(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("s", 32)
	v, err := NewVerifier(t.Context(), Config{Secret: secret, MaxTTL: time.Hour, JWKSRefresh: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	long, err := Mint([]byte(secret), Principal{Subject: "alice"}, 2*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(long); !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), "more than") {
		t.Errorf("a 2 h token with a 1 h bound: %v", err)
	}
	short, err := Mint([]byte(secret), Principal{Subject: "alice"}, 30*time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(short)
	if err != nil || !p.Expires.Equal(now.Add(30*time.Minute).Truncate(time.Second)) {
		t.Errorf("a 30 min token: %+v %v", p, err)
	}
}
