package auth_test

// Fuzz targets for the parsers of outside input in the auth domain: refresh tokens (the refresh
// cookie), access tokens (Authorization: Bearer and the page access cookie), emails, device names
// and User-Agent headers. Run one with
//
//	go test -run '^$' -fuzz '^FuzzRefresh$' -fuzztime 15s ./services/auth/
//
// Inputs that once failed are kept under testdata/fuzz/<Target>/ and run by every `go test`.

import (
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"encoding/base64"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"gatehouse/models"
	"gatehouse/models/testdb"
	"gatehouse/services/auth"
	"gatehouse/services/clock"
)

// fuzzEnv is one SQLite database and service shared by every input of a fuzz run. Its randomness
// is seeded, so that the tokens it issues, and with them any saved failing input, are the same in
// every run (signing keys excepted: Go ignores custom randomness for key generation).
type fuzzEnv struct {
	db    *testdb.DB
	svc   *auth.Service
	keys  *auth.KeyRing
	clock *clock.Manual
	ctx   context.Context
}

func newFuzzEnv(f *testing.F) *fuzzEnv {
	f.Helper()
	db := testdb.SQLite(f)
	c := clock.NewManual(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	rnd := rand.NewChaCha8([32]byte{'g', 'a', 't', 'e', 'h', 'o', 'u', 's', 'e'})
	keys, err := auth.OpenKeyRing(f.TempDir(), rnd, c.Now())
	if err != nil {
		f.Fatal(err)
	}
	pw, err := auth.NewPasswords(fastPasswords, crand.Reader, 4, time.Minute)
	if err != nil {
		f.Fatal(err)
	}
	svc := auth.New(testConfig, auth.Deps{Store: db.Store, Keys: keys, Passwords: pw, Now: c.Now, Rand: rnd})
	return &fuzzEnv{db: db, svc: svc, keys: keys, clock: c, ctx: context.Background()}
}

func (e *fuzzEnv) user(f *testing.F, email string) *models.User {
	f.Helper()
	u, err := e.svc.CreateUser(e.ctx, email, "Fuzz", testPassword)
	if err != nil {
		f.Fatal(err)
	}
	return u
}

func (e *fuzzEnv) signIn(f *testing.F, email, device string) *auth.Issued {
	f.Helper()
	issued, err := e.svc.SignIn(e.ctx, email, testPassword, auth.Client{DeviceID: device, UserAgent: "Fuzz/1.0", IP: "192.0.2.1"})
	if err != nil {
		f.Fatal(err)
	}
	return issued
}

// dbState is every row a refresh or logout could touch.
type dbState struct {
	Users    []models.User
	Sessions []models.DeviceSession
	Tokens   []models.RefreshToken
	Events   []models.SecurityEvent
}

func (e *fuzzEnv) state(t *testing.T) dbState {
	t.Helper()
	var s dbState
	db := e.db.Store.DB()
	for _, q := range []struct {
		dst   any
		order string
	}{{&s.Users, "id"}, {&s.Sessions, "id"}, {&s.Tokens, "token_hash"}, {&s.Events, "id"}} {
		if err := db.Order(q.order).Find(q.dst).Error; err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// FuzzRefresh: Refresh and Logout with any string that the fixture did not issue answer
// ErrInvalidToken (Logout: nil), never panic, and change no row. The fixture holds a live token,
// a rotated one (past the grace window: presenting it would be a replay) and a signed-out one, so
// that near misses of real tokens are tried.
func FuzzRefresh(f *testing.F) {
	e := newFuzzEnv(f)
	e.user(f, "ann@example.com")
	first := e.signIn(f, "ann@example.com", "laptop-0001")
	second, err := e.svc.Refresh(e.ctx, first.RefreshToken, auth.Client{IP: "192.0.2.1"})
	if err != nil {
		f.Fatal(err)
	}
	phone := e.signIn(f, "ann@example.com", "phone-00001")
	if err := e.svc.SignOutDevice(e.ctx, phone.UserID, phone.SessionID, ""); err != nil {
		f.Fatal(err)
	}
	e.clock.Advance(time.Minute) // first is out of its grace window
	issued := map[string]bool{first.RefreshToken: true, second.RefreshToken: true, phone.RefreshToken: true}

	live := second.RefreshToken
	secret := live[len("ghr_"):]
	raw, _ := base64.RawURLEncoding.DecodeString(secret)
	for _, seed := range [][2]string{
		{"", ""}, {"garbage", ""}, {"ghr_", ""}, {"ghr_" + strings.Repeat("A", 43), ""}, {"ghr_" + strings.Repeat("A", 43), "laptop-0001"},
		{live[:len(live)-1], ""}, {live + "A", ""}, {live[:len(live)-1] + "B", "laptop-0001"}, {"GHR_" + secret, ""},
		{"ghr_" + base64.URLEncoding.EncodeToString(raw), ""}, {"ghr_" + base64.RawStdEncoding.EncodeToString(raw), ""},
		{" " + live, ""}, {live + "\n", ""}, {live + "\x00", ""}, {"ghr_" + strings.Repeat("_", 43), ""}, {"ghr_" + strings.Repeat("-", 43), ""},
		{first.RefreshToken[:len(first.RefreshToken)-1] + "Q", "laptop-0001"}, {strings.Repeat("ghr_", 12), ""},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, token, deviceID string) {
		if issued[token] {
			t.Skip("a token the fixture issued: its outcomes are the rotation tests' business")
		}
		before := e.state(t)
		if _, err := e.svc.Refresh(e.ctx, token, auth.Client{DeviceID: deviceID, DeviceName: "Fuzz", IP: "192.0.2.66"}); !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("Refresh(%q, device %q) = %v, want ErrInvalidToken", token, deviceID, err)
		}
		if err := e.svc.Logout(e.ctx, token, "192.0.2.66"); err != nil {
			t.Fatalf("Logout(%q) = %v, want nil", token, err)
		}
		if after := e.state(t); !reflect.DeepEqual(before, after) {
			t.Fatalf("Refresh or Logout of %q changed rows", token)
		}
	})
}

// FuzzVerify: Verify never panics; it accepts a token only when its signed content is one the
// fixture signed and expects accepted, and every refusal is ErrInvalidToken, ErrTokenExpired or
// ErrSessionRevoked. The seeds include tokens signed with the real key but with bad claims, so
// that each claim check is reached, and their expected refusals are checked too.
func FuzzVerify(f *testing.F) {
	e := newFuzzEnv(f)
	ann := e.user(f, "ann@example.com")
	bob := e.user(f, "bob@example.com")
	laptop := e.signIn(f, "ann@example.com", "laptop-0001")
	phone := e.signIn(f, "ann@example.com", "phone-00001")
	if err := e.svc.SignOutDevice(e.ctx, ann.ID, phone.SessionID, ""); err != nil {
		f.Fatal(err)
	}
	now := e.clock.Now()
	key := e.keys.Current()
	sign := func(method jwt.SigningMethod, k any, kid string, claims jwt.MapClaims) string {
		token := jwt.NewWithClaims(method, claims)
		if kid != "" {
			token.Header["kid"] = kid
		}
		signed, err := token.SignedString(k)
		if err != nil {
			f.Fatal(err)
		}
		return signed
	}
	claims := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": testConfig.Issuer, "sub": ann.ID, "sid": laptop.SessionID, "ver": 1,
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": "fuzz"}
		change(c)
		return c
	}
	ours := func(change func(jwt.MapClaims)) string {
		return sign(jwt.SigningMethodEdDSA, key.Private, key.ID, claims(change))
	}
	_, foreignKey, err := ed25519.GenerateKey(crand.Reader)
	if err != nil {
		f.Fatal(err)
	}

	// exact maps each seed to Verify's answer for it; acceptable holds the signed part
	// (header.payload) of every token signed with the real key that Verify should accept.
	exact, acceptable := map[string]error{}, map[string]bool{laptop.AccessToken[:strings.LastIndexByte(laptop.AccessToken, '.')]: true}
	add := func(token string, want error) {
		exact[token] = want
		f.Add(token)
	}
	add(laptop.AccessToken, nil)
	add(phone.AccessToken, auth.ErrSessionRevoked)
	signedByUs := ours(func(jwt.MapClaims) {})
	acceptable[signedPart(signedByUs)] = true
	add(signedByUs, nil)
	add(ours(func(c jwt.MapClaims) { c["ver"] = 0 }), auth.ErrInvalidToken)
	add(ours(func(c jwt.MapClaims) { delete(c, "ver") }), auth.ErrInvalidToken)
	add(ours(func(c jwt.MapClaims) { c["ver"] = "1" }), auth.ErrInvalidToken)
	add(ours(func(c jwt.MapClaims) { delete(c, "sid") }), auth.ErrInvalidToken)
	add(ours(func(c jwt.MapClaims) { c["sid"] = "no-such-session" }), auth.ErrInvalidToken)
	add(ours(func(c jwt.MapClaims) { c["sid"] = "' OR '1'='1" }), auth.ErrInvalidToken)
	add(ours(func(c jwt.MapClaims) { delete(c, "sub") }), auth.ErrInvalidToken)
	add(ours(func(c jwt.MapClaims) { c["sub"] = bob.ID }), auth.ErrInvalidToken)
	add(ours(func(c jwt.MapClaims) { delete(c, "exp") }), auth.ErrInvalidToken)
	add(ours(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Second).Unix() }), auth.ErrTokenExpired)
	add(ours(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Hour).Unix() }), auth.ErrInvalidToken)
	add(ours(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() }), auth.ErrInvalidToken)
	add(ours(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }), auth.ErrInvalidToken)
	add(ours(func(c jwt.MapClaims) { delete(c, "iss") }), auth.ErrInvalidToken)
	add(sign(jwt.SigningMethodEdDSA, key.Private, "no-such-kid", claims(func(jwt.MapClaims) {})), auth.ErrInvalidToken)
	add(sign(jwt.SigningMethodEdDSA, key.Private, "", claims(func(jwt.MapClaims) {})), auth.ErrInvalidToken)
	add(sign(jwt.SigningMethodEdDSA, key.Private, "../../../../etc/passwd", claims(func(jwt.MapClaims) {})), auth.ErrInvalidToken)
	add(sign(jwt.SigningMethodEdDSA, foreignKey, key.ID, claims(func(jwt.MapClaims) {})), auth.ErrInvalidToken)
	add(sign(jwt.SigningMethodHS256, []byte(key.Public), key.ID, claims(func(jwt.MapClaims) {})), auth.ErrInvalidToken)
	add(sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, key.ID, claims(func(jwt.MapClaims) {})), auth.ErrInvalidToken)
	parts := strings.Split(laptop.AccessToken, ".")
	for _, seed := range []string{
		"", "garbage", "a.b.c", "..", parts[0] + "." + parts[1] + ".", parts[0] + "." + parts[1], laptop.AccessToken + ".x",
		parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])), "Bearer " + laptop.AccessToken, laptop.AccessToken + " ",
		strings.ToUpper(laptop.AccessToken), parts[0] + ".e30." + parts[2], "eyJhbGciOiJub25lIn0.e30.",
	} {
		f.Add(seed)
	}

	f.Fuzz(func(t *testing.T, raw string) {
		_, err := e.svc.Verify(e.ctx, raw)
		want, seeded := exact[raw]
		switch {
		case err == nil && !acceptable[signedPart(raw)]:
			t.Fatalf("Verify accepted %q, whose content the fixture never signed as acceptable", raw)
		case seeded && !errors.Is(err, want):
			t.Fatalf("Verify(%q) = %v, want %v", raw, err, want)
		case err != nil && !errors.Is(err, auth.ErrInvalidToken) && !errors.Is(err, auth.ErrTokenExpired) && !errors.Is(err, auth.ErrSessionRevoked):
			t.Fatalf("Verify(%q) = %v: not a token error", raw, err)
		}
	})
}

// signedPart is the header and payload of a compact JWT: what its signature covers.
func signedPart(token string) string {
	if i := strings.LastIndexByte(token, '.'); i >= 0 {
		return token[:i]
	}
	return token
}

// FuzzNormalizeEmail: a normalised email is a fixed point (normalising it again gives itself),
// is trimmed, lower case and at most 254 bytes; ASCII case never changes the outcome.
func FuzzNormalizeEmail(f *testing.F) {
	for _, seed := range []string{
		"ann@example.com", " Ann@Example.COM ", "ANN@EXAMPLE.COM", "a.b+tag@sub.example.co.uk", "ann@localhost", "ann@example",
		"@example.com", "ann@", "ann", "", " ", "ann@@example.com", "ann@exa mple.com", `"ann smith"@example.com`, "Ann <ann@example.com>",
		"ann@example.com (comment)", "ann@[192.0.2.1]", "ann@example.com.", "ann..b@example.com", ".ann@example.com", "ann@-example.com",
		"ann\x00@example.com", "ann\n@example.com", "ann@example.com\r\nBcc: x@example.com", "ännä@exämple.com", "ÄNNÄ@EXÄMPLE.COM",
		"\u212aate@example.com", "stra\u00dfe@example.com", "\u0130stanbul@example.com", "ann@example.com\u00a0", "\u0085ann@example.com",
		strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".com", strings.Repeat("a", 250) + "@e.co", "=?utf-8?q?ann?=@example.com",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		email, err := auth.NormalizeEmail(raw)
		if err != nil {
			var invalid *auth.ValidationError
			if !errors.As(err, &invalid) || invalid.Field != "email" {
				t.Fatalf("NormalizeEmail(%q) = %v, want a ValidationError on email", raw, err)
			}
		} else {
			again, err := auth.NormalizeEmail(email)
			if err != nil || again != email {
				t.Fatalf("NormalizeEmail(%q) = %q, but normalising that gives %q, %v", raw, email, again, err)
			}
			if email != strings.TrimSpace(email) || email != strings.ToLower(email) || len(email) > 254 || !strings.Contains(email, "@") || !utf8.ValidString(email) {
				t.Fatalf("NormalizeEmail(%q) = %q: not trimmed, lower case, valid and short", raw, email)
			}
		}
		if isASCII(raw) {
			upper, uerr := auth.NormalizeEmail(strings.ToUpper(raw))
			if (uerr == nil) != (err == nil) || upper != email {
				t.Fatalf("NormalizeEmail is case-sensitive: %q → %q, %v but %q → %q, %v", raw, email, err, strings.ToUpper(raw), upper, uerr)
			}
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// FuzzValidateDeviceName: an accepted name is trimmed, valid UTF-8, 1 to 64 characters with no
// control character (Unicode category Cc: C0, DEL and C1), and accepted again unchanged.
func FuzzValidateDeviceName(f *testing.F) {
	for _, seed := range []string{
		"Ann's laptop", "  padded  ", "", " ", "x", strings.Repeat("x", 64), strings.Repeat("x", 65), strings.Repeat("é", 64),
		strings.Repeat("é", 65), "tab\there", "new\nline", "nul\x00", "del\x7f", "\xff\xfe",
		"emoji 💻", "rtl \u202eoverride", "zero\u200bwidth", "<script>alert(1)</script>", "\u2028", "\u00a0nbsp\u00a0",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		name, err := auth.ValidateDeviceName("name", raw)
		if err != nil {
			var invalid *auth.ValidationError
			if !errors.As(err, &invalid) || invalid.Field != "name" {
				t.Fatalf("ValidateDeviceName(%q) = %v, want a ValidationError on name", raw, err)
			}
			return
		}
		checkDeviceName(t, raw, name)
	})
}

func checkDeviceName(t *testing.T, raw, name string) {
	t.Helper()
	if n := utf8.RuneCountInString(name); n < 1 || n > 64 || !utf8.ValidString(name) || name != strings.TrimSpace(name) {
		t.Fatalf("device name %q (from %q): not 1 to 64 trimmed characters of valid UTF-8", name, raw)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			t.Fatalf("device name %q (from %q) holds control character %U", name, raw, r)
		}
	}
	if again, err := auth.ValidateDeviceName("name", name); err != nil || again != name {
		t.Fatalf("device name %q is not accepted again unchanged: %q, %v", name, again, err)
	}
}

// FuzzDescribeUserAgent: any User-Agent header yields a browser and OS without panicking, and the
// device name derived from it (the name a session gets when the client gives none) obeys the same
// rules as a name the user types, whatever the header held.
func FuzzDescribeUserAgent(f *testing.F) {
	for _, seed := range []string{
		"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
		"curl/8.5.0", "Gatehouse-iOS/2.3 (iPhone; iOS 17.2)", "", " ", "(", ")", "((((", "Mozilla/5.0 (", "/", "a/", "/1",
		"Mozilla/5.0 (\x00; \x01) Evil\x7f/1", "\u202eFirefox/1.0", "Firefox/121.0\r\nX-Injected: 1", "\xff\xfe/1.0",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, ua string) {
		auth.DescribeUserAgent(ua)
		switch kind := auth.DescribeDeviceKind(ua); kind {
		case auth.DevicePhone, auth.DeviceTablet, auth.DeviceComputer, auth.DeviceApp:
		default:
			t.Fatalf("DescribeDeviceKind(%q) = %q, not a kind the page can draw", ua, kind)
		}
		checkDeviceName(t, ua, auth.DefaultDeviceName(ua))
	})
}
