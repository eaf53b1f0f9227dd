package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/productsmanager/exportplatform/pkg/config"
)

// DevSecret is the local stack's public signing secret. Only the explicit dev mode
// (AUTH_DEV_MODE=true, set by dev/env.sh) accepts it; anything else refuses to start with it.
const DevSecret = "local-dev-secret"

// minSecretLen is the shortest HS256 secret accepted outside dev mode (RFC 7518 §3.2: a key
// at least as long as the hash, 256 bits).
const minSecretLen = 32

// Config is how tokens are checked (CONTRACT §2), read from the environment by ConfigFrom.
type Config struct {
	Secret   string        // JWT_SECRET: HS256 tokens
	JWKSURL  string        // JWT_JWKS_URL: RS256/ES256 tokens, keys fetched from this JWK Set
	Issuer   string        // JWT_ISSUER: when set, iss must equal it
	Audience string        // JWT_AUDIENCE: when set, aud must hold it
	MaxTTL   time.Duration // JWT_MAX_TTL: a token lives at most this long (exp - iat); 24 h
	// JWKSRefresh is how often the JWK Set is fetched again (JWT_JWKS_REFRESH, 10 min); a token
	// naming an unknown key fetches it at once (at most every 30 s), so a rotation is seen
	// without waiting.
	JWKSRefresh time.Duration
	// DevMode (AUTH_DEV_MODE) is the local stack: with no secret and no JWKS, DevSecret.
	DevMode bool
}

// ConfigFrom reads the settings (errors are collected by env).
func ConfigFrom(env *config.Env) Config {
	c := Config{
		Secret:      env.String("JWT_SECRET", ""),
		JWKSURL:     env.String("JWT_JWKS_URL", ""),
		Issuer:      env.String("JWT_ISSUER", ""),
		Audience:    env.String("JWT_AUDIENCE", ""),
		MaxTTL:      env.Duration("JWT_MAX_TTL", 24*time.Hour),
		JWKSRefresh: env.Duration("JWT_JWKS_REFRESH", 10*time.Minute),
		DevMode:     env.Bool("AUTH_DEV_MODE", false),
	}
	if c.Secret == "" && c.JWKSURL == "" && c.DevMode {
		c.Secret = DevSecret
	}
	return c
}

// Validate refuses a configuration that would accept forged tokens: no key at all, the public
// dev secret or a short one outside dev mode, a JWKS URL that is not http(s).
func (c Config) Validate() error {
	var errs []error
	switch {
	case c.Secret == "" && c.JWKSURL == "":
		errs = append(errs, errors.New("neither JWT_SECRET nor JWT_JWKS_URL is set (the local stack sets AUTH_DEV_MODE=true for its public dev secret)"))
	case c.Secret != "" && !c.DevMode && c.Secret == DevSecret:
		errs = append(errs, errors.New("JWT_SECRET is the public local-dev-secret; set a secret of your own (or AUTH_DEV_MODE=true on a developer machine)"))
	case c.Secret != "" && !c.DevMode && len(c.Secret) < minSecretLen:
		errs = append(errs, fmt.Errorf("JWT_SECRET is %d bytes; at least %d are needed", len(c.Secret), minSecretLen))
	}
	if c.JWKSURL != "" {
		if u, err := url.Parse(c.JWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("JWT_JWKS_URL %q is not an http(s) URL", c.JWKSURL))
		}
	}
	if c.MaxTTL <= 0 {
		errs = append(errs, errors.New("JWT_MAX_TTL must be positive"))
	}
	if c.JWKSRefresh < time.Second {
		errs = append(errs, errors.New("JWT_JWKS_REFRESH must be at least 1s"))
	}
	return errors.Join(errs...)
}

// LogValue shows the settings without the secret.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Bool("hs256", c.Secret != ""), slog.String("jwks_url", c.JWKSURL),
		slog.String("issuer", c.Issuer), slog.String("audience", c.Audience),
		slog.String("max_ttl", c.MaxTTL.String()), slog.Bool("dev_mode", c.DevMode),
	)
}

// NewVerifier builds the verifier c describes: HS256 with the secret, RS256/ES256 with the
// keys of the JWK Set (fetched now, refreshed in the background until ctx ends), or both, the
// token's alg choosing. iss and aud are checked when configured, and no token lives longer
// than MaxTTL.
func NewVerifier(ctx context.Context, c Config, log *slog.Logger) (*Verifier, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var jwks keyfunc.Keyfunc
	if c.JWKSURL != "" {
		var err error
		jwks, err = keyfunc.NewDefaultOverrideCtx(ctx, []string{c.JWKSURL}, keyfunc.Override{
			HTTPTimeout:       5 * time.Second,
			RefreshInterval:   c.JWKSRefresh,
			RefreshUnknownKID: rate.NewLimiter(rate.Every(30*time.Second), 1),
			RateLimitWaitMax:  time.Second,
			RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
				return func(_ context.Context, err error) {
					log.Warn("refreshing the JWK Set failed; the keys fetched before stay in use", "url", u, "err", err)
				}
			},
		})
		if err != nil {
			return nil, fmt.Errorf("JWT_JWKS_URL: %w", err)
		}
	}
	v, err := newVerifier(verifierOptions{secret: []byte(c.Secret), jwks: jwks, issuer: c.Issuer, audience: c.Audience,
		maxTTL: c.MaxTTL, now: time.Now})
	if err != nil {
		return nil, err
	}
	v.log = log
	return v, nil
}

type verifierOptions struct {
	secret           []byte
	jwks             keyfunc.Keyfunc
	issuer, audience string
	maxTTL           time.Duration
	now              func() time.Time
}

// asymmetric are the algorithms a JWK Set's keys may sign with.
var asymmetric = []string{jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg()}

func newVerifier(o verifierOptions) (*Verifier, error) {
	var methods []string
	if len(o.secret) > 0 {
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if o.jwks != nil {
		methods = append(methods, asymmetric...)
	}
	if len(methods) == 0 {
		return nil, errors.New("auth: no key to verify tokens with")
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(o.now),
	}
	if o.issuer != "" {
		opts = append(opts, jwt.WithIssuer(o.issuer))
	}
	if o.audience != "" {
		opts = append(opts, jwt.WithAudience(o.audience))
	}
	secret := append([]byte(nil), o.secret...)
	return &Verifier{
		parser: jwt.NewParser(opts...),
		maxTTL: o.maxTTL,
		now:    o.now,
		keyFunc: func(t *jwt.Token) (any, error) {
			// WithValidMethods already pins the algorithms; checking again here means a change
			// to the parser options can never hand the HMAC secret to another method, nor an
			// HMAC token to a public key.
			switch t.Method {
			case jwt.SigningMethodHS256:
				if len(secret) == 0 {
					return nil, errors.New("HS256 tokens are not accepted")
				}
				return secret, nil
			case jwt.SigningMethodRS256, jwt.SigningMethodES256:
				if o.jwks == nil {
					return nil, fmt.Errorf("%v tokens are not accepted", t.Header["alg"])
				}
				return o.jwks.Keyfunc(t)
			}
			return nil, fmt.Errorf("unexpected signing method %v", t.Header["alg"])
		},
	}, nil
}
