package auth

import (
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// AccessClaims are the claims of an access token: iss, sub (user id), sid, ver (the user's
// token_version when issued), email_verified (when issued), amr (how the session signed in), iat,
// exp, jti.
type AccessClaims struct {
	SessionID     string   `json:"sid"`
	Version       int64    `json:"ver"`
	EmailVerified bool     `json:"email_verified"`
	AMR           []string `json:"amr"`
	jwt.RegisteredClaims
}

// How a session signed in, as its access tokens' amr claim says (RFC 8176 values; "rec" for a
// recovery code is ours), kept on the session space-separated.
const (
	AMRPassword         = "pwd"
	AMRPasswordOTP      = "pwd otp"
	AMRPasswordRecovery = "pwd rec"
	AMRPasswordPasskey  = "pwd hwk"
	AMRPasskey          = "hwk"
)

func (s *Service) signAccess(userID, sessionID string, version int64, verified bool, amr string, now time.Time) (string, time.Time, error) {
	methods := strings.Fields(amr)
	if len(methods) == 0 {
		methods = []string{AMRPassword} // sessions from before amr was kept
	}
	key := s.keys.Current()
	jti := make([]byte, 16)
	if _, err := s.rand.Read(jti); err != nil {
		return "", time.Time{}, err
	}
	expires := now.Add(s.cfg.AccessTTL)
	claims := AccessClaims{
		SessionID:     sessionID,
		Version:       version,
		EmailVerified: verified,
		AMR:           methods,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.cfg.Issuer,
			Subject:   userID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(expires),
			ID:        base64.RawURLEncoding.EncodeToString(jti),
		},
	}
	token := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	token.Header["kid"] = key.ID
	signed, err := token.SignedString(key.Private)
	if err != nil {
		return "", time.Time{}, err
	}
	// A token just signed here needs no signature check when it comes back (a page right after
	// its silent refresh, an app's first call after sign-in).
	s.verified.put(signed, &claims)
	return signed, expires, nil
}

// MaxClockSkew is how far ahead of this instance's clock an access token's iat may be: instances
// whose clocks differ a little must accept each other's fresh tokens. Expiry gets no leeway.
const MaxClockSkew = time.Minute

// parseAccess checks an access token's signature, algorithm, issuer and expiry, not revocation.
func (s *Service) parseAccess(raw string) (*AccessClaims, error) {
	if c, ok := s.verified.get(raw, s.now()); ok {
		return c, nil
	}
	var claims AccessClaims
	_, err := jwt.ParseWithClaims(raw, &claims, s.verificationKey,
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(s.cfg.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.now),
	)
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, ErrTokenExpired
	default:
		return nil, ErrInvalidToken
	}
	if claims.Subject == "" || claims.SessionID == "" || claims.Version < 1 {
		return nil, ErrInvalidToken
	}
	// iat may be a little ahead of this instance's clock: another instance signed it.
	if claims.IssuedAt == nil || claims.IssuedAt.After(s.now().Add(MaxClockSkew)) {
		return nil, ErrInvalidToken
	}
	s.verified.put(raw, &claims)
	return &claims, nil
}

func (s *Service) verificationKey(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	if key, ok := s.keys.Lookup(kid); ok {
		return key.Public, nil
	}
	// A key added by another instance or by `gatehouse keys rotate`: load the keys once more.
	if key, ok := s.reloadForKey(kid); ok {
		return key.Public, nil
	}
	return nil, ErrInvalidToken
}
