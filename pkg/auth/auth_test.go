package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var (
	testSecret = []byte("test-secret")
	testNow    = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func fixedVerifier(t *testing.T) *Verifier {
	t.Helper()
	v, err := newHS256Verifier(testSecret, func() time.Time { return testNow })
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// sign signs claims with method and key through the jwt library.
func sign(t *testing.T, method jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatalf("signing: %v", err)
	}
	return s
}

// forge builds a token by hand: any header, any payload, an HMAC-SHA256 signature with secret.
// It produces what the library refuses to: tokens whose header lies about the algorithm.
func forge(header, payload string, secret []byte) string {
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

// good returns valid claims for testNow, with overrides applied (a nil value deletes the claim).
func good(overrides map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub":         "alice",
		"name":        "Alice",
		"permissions": []string{PermReadExports},
		"iat":         testNow.Unix(),
		"exp":         testNow.Add(time.Hour).Unix(),
	}
	for k, v := range overrides {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func TestNewHS256VerifierRejectsEmptySecret(t *testing.T) {
	t.Parallel()
	for _, secret := range [][]byte{nil, {}} {
		if _, err := NewHS256Verifier(secret); err == nil {
			t.Errorf("NewHS256Verifier(%q) = nil error, want one", secret)
		}
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	alice := Principal{Subject: "alice", Name: "Alice", Permissions: []string{PermReadExports}}
	valid := sign(t, jwt.SigningMethodHS256, testSecret, good(nil))
	parts := strings.Split(valid, ".")
	tamperedPayload := base64.RawURLEncoding.EncodeToString(
		[]byte(`{"sub":"mallory","permissions":["READ_EXPORTS","WRITE_EXPORTS"],"exp":9999999999}`))

	tests := []struct {
		name    string
		token   string
		want    Principal
		wantErr error // the auth sentinel
		reason  error // the jwt error explaining it, when there is one
	}{
		{name: "valid", token: valid, want: alice},
		{
			name:  "name and permissions optional",
			token: sign(t, jwt.SigningMethodHS256, testSecret, good(map[string]any{"name": nil, "permissions": nil})),
			want:  Principal{Subject: "alice"},
		},
		{
			name:  "permissions null",
			token: forge(`{"alg":"HS256","typ":"JWT"}`, `{"sub":"alice","permissions":null,"exp":1900000000}`, testSecret),
			want:  Principal{Subject: "alice"},
		},
		{
			name:  "expired within leeway",
			token: sign(t, jwt.SigningMethodHS256, testSecret, good(map[string]any{"exp": testNow.Add(-Leeway / 2).Unix()})),
			want:  alice,
		},
		{name: "empty", token: "", wantErr: ErrMissingToken},
		{name: "not a jwt", token: "not-a-jwt", wantErr: ErrInvalidToken, reason: jwt.ErrTokenMalformed},
		{name: "two segments", token: parts[0] + "." + parts[1], wantErr: ErrInvalidToken, reason: jwt.ErrTokenMalformed},
		{name: "garbage segments", token: "a.b.c", wantErr: ErrInvalidToken, reason: jwt.ErrTokenMalformed},
		{name: "payload not json", token: forge(`{"alg":"HS256"}`, `not json`, testSecret), wantErr: ErrInvalidToken, reason: jwt.ErrTokenMalformed},
		{name: "too long", token: valid + strings.Repeat("A", maxTokenLen), wantErr: ErrInvalidToken},
		{
			name:    "wrong secret",
			token:   sign(t, jwt.SigningMethodHS256, []byte("other-secret"), good(nil)),
			wantErr: ErrInvalidToken, reason: jwt.ErrTokenSignatureInvalid,
		},
		{
			name:    "tampered payload",
			token:   parts[0] + "." + tamperedPayload + "." + parts[2],
			wantErr: ErrInvalidToken, reason: jwt.ErrTokenSignatureInvalid,
		},
		{name: "signature stripped", token: parts[0] + "." + parts[1] + ".", wantErr: ErrInvalidToken, reason: jwt.ErrTokenSignatureInvalid},
		{
			name:    "alg none",
			token:   sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good(nil)),
			wantErr: ErrInvalidToken, reason: jwt.ErrTokenSignatureInvalid,
		},
		{
			name:    "alg none forged with a signature",
			token:   forge(`{"alg":"none","typ":"JWT"}`, `{"sub":"alice","exp":1900000000}`, testSecret),
			wantErr: ErrInvalidToken, reason: jwt.ErrTokenSignatureInvalid,
		},
		{
			name:    "HS384 with the right secret",
			token:   sign(t, jwt.SigningMethodHS384, testSecret, good(nil)),
			wantErr: ErrInvalidToken, reason: jwt.ErrTokenSignatureInvalid,
		},
		{
			name:    "HS512 with the right secret",
			token:   sign(t, jwt.SigningMethodHS512, testSecret, good(nil)),
			wantErr: ErrInvalidToken, reason: jwt.ErrTokenSignatureInvalid,
		},
		{
			name:    "RS256 properly signed",
			token:   sign(t, jwt.SigningMethodRS256, rsaKey, good(nil)),
			wantErr: ErrInvalidToken, reason: jwt.ErrTokenSignatureInvalid,
		},
		{
			// The algorithm-confusion attack: header says RS256, signature is HMAC with the secret.
			name:    "RS256 header with HMAC signature",
			token:   forge(`{"alg":"RS256","typ":"JWT"}`, `{"sub":"alice","permissions":["WRITE_EXPORTS"],"exp":1900000000}`, testSecret),
			wantErr: ErrInvalidToken, reason: jwt.ErrTokenSignatureInvalid,
		},
		{
			name:    "lowercase alg",
			token:   forge(`{"alg":"hs256","typ":"JWT"}`, `{"sub":"alice","exp":1900000000}`, testSecret),
			wantErr: ErrInvalidToken, reason: jwt.ErrTokenUnverifiable,
		},
		{
			name:    "missing exp",
			token:   sign(t, jwt.SigningMethodHS256, testSecret, good(map[string]any{"exp": nil})),
			wantErr: ErrInvalidToken, reason: jwt.ErrTokenRequiredClaimMissing,
		},
		{
			name:    "exp not a number",
			token:   sign(t, jwt.SigningMethodHS256, testSecret, good(map[string]any{"exp": "tomorrow"})),
			wantErr: ErrInvalidToken, reason: jwt.ErrTokenMalformed,
		},
		{
			name:    "expired",
			token:   sign(t, jwt.SigningMethodHS256, testSecret, good(map[string]any{"exp": testNow.Add(-time.Minute).Unix()})),
			wantErr: ErrInvalidToken, reason: jwt.ErrTokenExpired,
		},
		{
			name:    "not valid yet",
			token:   sign(t, jwt.SigningMethodHS256, testSecret, good(map[string]any{"nbf": testNow.Add(time.Hour).Unix()})),
			wantErr: ErrInvalidToken, reason: jwt.ErrTokenNotValidYet,
		},
		{
			name:    "missing sub",
			token:   sign(t, jwt.SigningMethodHS256, testSecret, good(map[string]any{"sub": nil})),
			wantErr: ErrInvalidToken,
		},
		{
			name:    "empty sub",
			token:   sign(t, jwt.SigningMethodHS256, testSecret, good(map[string]any{"sub": ""})),
			wantErr: ErrInvalidToken,
		},
		{
			name:    "sub not a string",
			token:   sign(t, jwt.SigningMethodHS256, testSecret, good(map[string]any{"sub": 42})),
			wantErr: ErrInvalidToken, reason: jwt.ErrTokenMalformed,
		},
		{
			name:    "permissions a string",
			token:   sign(t, jwt.SigningMethodHS256, testSecret, good(map[string]any{"permissions": "READ_EXPORTS"})),
			wantErr: ErrInvalidToken, reason: jwt.ErrTokenMalformed,
		},
		{
			name:    "permissions with a number",
			token:   sign(t, jwt.SigningMethodHS256, testSecret, good(map[string]any{"permissions": []any{"READ_EXPORTS", 1}})),
			wantErr: ErrInvalidToken, reason: jwt.ErrTokenMalformed,
		},
		{
			name:    "permissions an object",
			token:   sign(t, jwt.SigningMethodHS256, testSecret, good(map[string]any{"permissions": map[string]bool{"READ_EXPORTS": true}})),
			wantErr: ErrInvalidToken, reason: jwt.ErrTokenMalformed,
		},
	}
	v := fixedVerifier(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := v.Verify(tt.token)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Verify() error = %v, want %v", err, tt.wantErr)
				}
				if tt.reason != nil && !errors.Is(err, tt.reason) {
					t.Errorf("Verify() error = %v, want reason %v", err, tt.reason)
				}
				if got.Subject != "" || got.Permissions != nil {
					t.Errorf("Verify() = %+v on error, want zero Principal", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify() error = %v", err)
			}
			if !equalPrincipal(got, tt.want) {
				t.Errorf("Verify() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func equalPrincipal(a, b Principal) bool {
	return a.Subject == b.Subject && a.Name == b.Name && strings.Join(a.Permissions, ",") == strings.Join(b.Permissions, ",")
}

func TestVerifierCopiesSecret(t *testing.T) {
	t.Parallel()
	secret := []byte("mutable-secret")
	v, err := newHS256Verifier(secret, func() time.Time { return testNow })
	if err != nil {
		t.Fatal(err)
	}
	token, err := Mint(secret, Principal{Subject: "alice"}, time.Hour, testNow)
	if err != nil {
		t.Fatal(err)
	}
	secret[0] = 'X'
	if _, err := v.Verify(token); err != nil {
		t.Errorf("Verify() after caller changed its secret slice: %v", err)
	}
}

func TestPrincipalHas(t *testing.T) {
	t.Parallel()
	p := Principal{Subject: "alice", Permissions: []string{PermReadExports}}
	tests := []struct {
		name string
		perm string
		want bool
	}{
		{name: "held", perm: PermReadExports, want: true},
		{name: "not held", perm: PermWriteExports, want: false},
		{name: "case matters", perm: "read_exports", want: false},
		{name: "empty", perm: "", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := p.Has(tt.perm); got != tt.want {
				t.Errorf("Has(%q) = %v, want %v", tt.perm, got, tt.want)
			}
		})
	}
}

func TestMintVerifyRoundtrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    Principal
		want Principal
	}{
		{
			name: "full",
			p:    Principal{Subject: "alice", Name: "Alice Martin", Permissions: []string{PermReadExports, PermWriteExports}},
			want: Principal{Subject: "alice", Name: "Alice Martin", Permissions: []string{PermReadExports, PermWriteExports}},
		},
		{name: "no name, no permissions", p: Principal{Subject: "bob"}, want: Principal{Subject: "bob", Permissions: []string{}}},
		{name: "unicode", p: Principal{Subject: "zoé", Name: "Zoé 🚀"}, want: Principal{Subject: "zoé", Name: "Zoé 🚀"}},
	}
	v := fixedVerifier(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			token, err := Mint(testSecret, tt.p, time.Hour, testNow)
			if err != nil {
				t.Fatalf("Mint() error = %v", err)
			}
			got, err := v.Verify(token)
			if err != nil {
				t.Fatalf("Verify() error = %v", err)
			}
			if !equalPrincipal(got, tt.want) {
				t.Errorf("Verify(Mint()) = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestMintClaims(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    Principal
		want map[string]any
	}{
		{
			name: "full",
			p:    Principal{Subject: "alice", Name: "Alice", Permissions: []string{PermReadExports}},
			want: map[string]any{
				"sub": "alice", "name": "Alice", "permissions": []any{"READ_EXPORTS"},
				"iat": float64(testNow.Unix()), "exp": float64(testNow.Add(time.Hour).Unix()),
			},
		},
		{
			name: "name omitted, permissions an empty array",
			p:    Principal{Subject: "bob"},
			want: map[string]any{
				"sub": "bob", "permissions": []any{},
				"iat": float64(testNow.Unix()), "exp": float64(testNow.Add(time.Hour).Unix()),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			token, err := Mint(testSecret, tt.p, time.Hour, testNow)
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(token, ".")
			header, _ := base64.RawURLEncoding.DecodeString(parts[0])
			if got := string(header); got != `{"alg":"HS256","typ":"JWT"}` {
				t.Errorf("header = %s", got)
			}
			payload, err := base64.RawURLEncoding.DecodeString(parts[1])
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(payload, &got); err != nil {
				t.Fatal(err)
			}
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(tt.want)
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("claims = %s, want %s", gotJSON, wantJSON)
			}
		})
	}
}

func TestMintErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		secret []byte
		p      Principal
		ttl    time.Duration
	}{
		{name: "empty secret", secret: nil, p: Principal{Subject: "alice"}, ttl: time.Hour},
		{name: "empty subject", secret: testSecret, p: Principal{}, ttl: time.Hour},
		{name: "zero ttl", secret: testSecret, p: Principal{Subject: "alice"}, ttl: 0},
		{name: "negative ttl", secret: testSecret, p: Principal{Subject: "alice"}, ttl: -time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if token, err := Mint(tt.secret, tt.p, tt.ttl, testNow); err == nil {
				t.Errorf("Mint() = %q, want an error", token)
			}
		})
	}
}

func TestTokenFromRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		header     string
		query      string
		allowQuery bool
		want       string
		wantErr    error
	}{
		{name: "bearer header", header: "Bearer abc", want: "abc"},
		{name: "lowercase scheme", header: "bearer abc", want: "abc"},
		{name: "uppercase scheme", header: "BEARER abc", want: "abc"},
		{name: "extra spaces", header: "  Bearer   abc  ", want: "abc"},
		{name: "header wins over query", header: "Bearer abc", query: "access_token=xyz", allowQuery: true, want: "abc"},
		{name: "query allowed", query: "access_token=xyz", allowQuery: true, want: "xyz"},
		{name: "query not allowed", query: "access_token=xyz", wantErr: ErrMissingToken},
		{name: "empty query allowed", query: "access_token=", allowQuery: true, wantErr: ErrMissingToken},
		{name: "nothing", wantErr: ErrMissingToken},
		{name: "nothing, query allowed", allowQuery: true, wantErr: ErrMissingToken},
		{name: "basic scheme", header: "Basic YWxpY2U6cHc=", wantErr: ErrInvalidToken},
		{name: "scheme only", header: "Bearer", wantErr: ErrInvalidToken},
		{name: "scheme and spaces", header: "Bearer   ", wantErr: ErrInvalidToken},
		{name: "token without scheme", header: "abc", wantErr: ErrInvalidToken},
		{name: "bad header does not fall back to query", header: "Basic x", query: "access_token=xyz", allowQuery: true, wantErr: ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/api/v1/exports/ws?"+tt.query, nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			got, err := TokenFromRequest(r, tt.allowQuery)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("TokenFromRequest() error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("TokenFromRequest() error = %v", err)
			}
			if got != tt.want {
				t.Errorf("TokenFromRequest() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestContext(t *testing.T) {
	t.Parallel()
	if _, ok := FromContext(t.Context()); ok {
		t.Error("FromContext(empty) ok = true")
	}
	want := Principal{Subject: "alice", Permissions: []string{PermReadExports}}
	got, ok := FromContext(WithPrincipal(t.Context(), want))
	if !ok || !equalPrincipal(got, want) {
		t.Errorf("FromContext() = %+v, %v; want %+v, true", got, ok, want)
	}
}

func TestRequire(t *testing.T) {
	t.Parallel()
	v := fixedVerifier(t)
	mint := func(perms ...string) string {
		token, err := Mint(testSecret, Principal{Subject: "alice", Permissions: perms}, time.Hour, testNow)
		if err != nil {
			t.Fatal(err)
		}
		return token
	}
	reader, writer := mint(PermReadExports), mint(PermReadExports, PermWriteExports)
	expired, err := Mint(testSecret, Principal{Subject: "alice", Permissions: []string{PermReadExports}}, time.Hour, testNow.Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name        string
		perm        string
		allowQuery  bool
		header      string
		query       string
		want        int    // status
		wantCode    string // error code given to the ErrorWriter
		wantMessage string // substring of the message
		wantAuth    string // WWW-Authenticate substring
	}{
		{name: "no token", perm: PermReadExports, want: 401, wantCode: CodeUnauthenticated, wantMessage: "missing bearer token", wantAuth: `Bearer realm="exports"`},
		{name: "garbage token", perm: PermReadExports, header: "Bearer nope", want: 401, wantCode: CodeUnauthenticated, wantMessage: MsgInvalidToken, wantAuth: `error="invalid_token"`},
		{name: "expired token", perm: PermReadExports, header: "Bearer " + expired, want: 401, wantCode: CodeUnauthenticated, wantMessage: MsgInvalidToken, wantAuth: `error="invalid_token"`},
		{name: "basic auth", perm: PermReadExports, header: "Basic YWxpY2U6cHc=", want: 401, wantCode: CodeUnauthenticated, wantAuth: `error="invalid_token"`},
		{name: "lacking permission", perm: PermWriteExports, header: "Bearer " + reader, want: 403, wantCode: CodePermissionDenied, wantMessage: PermWriteExports, wantAuth: `error="insufficient_scope"`},
		{name: "holding permission", perm: PermReadExports, header: "Bearer " + reader, want: 200},
		{name: "holding both", perm: PermWriteExports, header: "Bearer " + writer, want: 200},
		{name: "authentication only", perm: "", header: "Bearer " + mint(), want: 200},
		{name: "query token allowed", perm: PermReadExports, allowQuery: true, query: "access_token=" + reader, want: 200},
		{name: "query token refused", perm: PermReadExports, query: "access_token=" + reader, want: 401, wantCode: CodeUnauthenticated},
		{name: "query token lacking permission", perm: PermWriteExports, allowQuery: true, query: "access_token=" + reader, want: 403, wantCode: CodePermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var gotCode, gotMessage string
			onError := func(w http.ResponseWriter, r *http.Request, status int, code, message string) {
				gotCode, gotMessage = code, message
				w.WriteHeader(status)
			}
			var seen Principal
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				p, ok := FromContext(r.Context())
				if !ok {
					t.Error("handler: no Principal in context")
				}
				seen = p
				w.WriteHeader(http.StatusOK)
			})
			h := v.Require(tt.perm, tt.allowQuery, onError)(next)

			r := httptest.NewRequest(http.MethodGet, "/api/v1/exports?"+tt.query, nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)

			if w.Code != tt.want {
				t.Fatalf("status = %d, want %d (code %q, message %q)", w.Code, tt.want, gotCode, gotMessage)
			}
			if gotCode != tt.wantCode {
				t.Errorf("code = %q, want %q", gotCode, tt.wantCode)
			}
			if !strings.Contains(gotMessage, tt.wantMessage) {
				t.Errorf("message = %q, want it to contain %q", gotMessage, tt.wantMessage)
			}
			if got := w.Header().Get("WWW-Authenticate"); !strings.Contains(got, tt.wantAuth) {
				t.Errorf("WWW-Authenticate = %q, want it to contain %q", got, tt.wantAuth)
			}
			if tt.want == http.StatusOK && seen.Subject != "alice" {
				t.Errorf("handler saw Principal %+v, want subject alice", seen)
			}
		})
	}
}

func TestRequireDefaultErrorWriter(t *testing.T) {
	t.Parallel()
	v := fixedVerifier(t)
	reader, err := Mint(testSecret, Principal{Subject: "alice", Permissions: []string{PermReadExports}}, time.Hour, testNow)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		header string
		want   string
		status int
	}{
		{name: "401", status: 401, want: `{"error":{"code":"unauthenticated","message":"missing bearer token"}}`},
		{name: "403", header: "Bearer " + reader, status: 403, want: `{"error":{"code":"permission_denied","message":"missing permission WRITE_EXPORTS"}}`},
	}
	h := v.Require(PermWriteExports, false, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("handler reached")
	}))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/api/v1/exports/csv/products", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Errorf("status = %d, want %d", w.Code, tt.status)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if got := strings.TrimSpace(w.Body.String()); got != tt.want {
				t.Errorf("body = %s, want %s", got, tt.want)
			}
		})
	}
}
