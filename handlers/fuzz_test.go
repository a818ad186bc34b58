package handlers

// Fuzz targets for the parsers of outside input that live in the HTTP layer: JSON bodies, the
// `next` redirect target, X-Forwarded-For and X-Device-Id. Each checks a property, not just the
// absence of panics. Run one with
//
//	go test -run '^$' -fuzz '^FuzzSafeNext$' -fuzztime 15s ./handlers/
//
// Inputs that once failed are kept under testdata/fuzz/<Target>/ and run by every `go test`.

import (
	"encoding/json"
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeJSON: decodeJSON never panics, fails only with errBadJSON, and accepts nothing but a
// single JSON object (its doc comment and the contract: "anything else is a 400").
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{
		`{"email":"ann@example.com","password":"correct horse battery","device_name":"CLI"}`,
		`{}`, ` {"email":"a@b.co"} `, "{\"email\":\"a@b.co\"}\n",
		`{"email":`, `[1,2]`, `"string"`, `42`, `true`, ``, ` `,
		`{"email":"a@b.co"} x`, `{"email":"a@b.co"}{"email":"c@d.co"}`, `{"email":"a@b.co"} {}`,
		`{"email":1}`, `{"email":null}`, `{"EMAIL":"case@insensitive.co"}`, `{"email":"a","email":"b"}`,
		`{"email":"\ud800"}`, "{\"email\":\"\xff\xfe\"}", "\xef\xbb\xbf{}", `{"a":` + strings.Repeat(`[`, 20000),
		`{"device_name":"` + strings.Repeat("x", 4096) + `"}`, `{"password":"\u0000"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req loginRequest
		err := decodeJSON(body, &req)
		if err != nil {
			if !errors.Is(err, errBadJSON) {
				t.Fatalf("decodeJSON(%q) = %v, want errBadJSON", body, err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("decodeJSON accepted invalid JSON %q", body)
		}
		if trimmed := strings.TrimLeft(string(body), " \t\r\n"); !strings.HasPrefix(trimmed, "{") {
			t.Fatalf("decodeJSON accepted %q, which is not a JSON object", body)
		}
	})
}

// fuzzServer is just enough of a Server for safeNext: the portal's origin and two app origins.
func fuzzServer() *Server {
	base, _ := url.Parse("https://portal.example.com")
	return &Server{
		cfg:    Config{BaseURL: base, AppOrigins: []string{"https://app.example.com", "http://localhost:3000"}},
		origin: originOf(base),
	}
}

// FuzzSafeNext: the result is "/devices", the input itself when it is a path on the portal (one
// leading "/", no backslash, no control character), or a URL on the portal's or an app's origin.
func FuzzSafeNext(f *testing.F) {
	for _, seed := range []string{
		"", "/", "/devices", "/account?tab=password#top", "/a/b/../c", "/%2F%2Fevil.example", "/.evil.example",
		"https://app.example.com/cb?x=1", "HTTPS://APP.EXAMPLE.COM", "http://localhost:3000", "https://portal.example.com/devices",
		"//evil.example", "///evil.example", "/\\evil.example", "\\\\evil.example", "/\t/evil.example", "/\n/evil.example",
		"https://evil.example", "https://app.example.com@evil.example", "https://app.example.com.evil.example",
		"https://evil.example#@app.example.com", "https://evil.example?@app.example.com", "https://app.example.com:443/",
		"javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,hi", "http:/evil.example", "https:evil.example",
		"/\x00", "\x01/devices", " /devices", "/devices ", "https://app.example.com\\@evil.example",
		"https://user:pass@app.example.com/", "https://[::1]/", "https://app.example.com%2f@evil.example",
		"/\u2028/evil.example", "/\u00a0", "https://app.example.com/\u0085", strings.Repeat("/a", 1100),
	} {
		f.Add(seed)
	}
	s := fuzzServer()
	allowed := []string{s.origin, "https://app.example.com", "http://localhost:3000"}
	f.Fuzz(func(t *testing.T, next string) {
		got := s.safeNext(next)
		switch {
		case got == "/devices":
		case strings.HasPrefix(got, "/"):
			if got != next {
				t.Fatalf("safeNext(%q) = %q: a path must be passed through unchanged or refused", next, got)
			}
			if strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\") || fuzzHasControl(got) {
				t.Fatalf("safeNext(%q) = %q: not a plain path on the portal", next, got)
			}
			if u, err := url.Parse(got); err != nil || u.Host != "" || u.Scheme != "" {
				t.Fatalf("safeNext(%q) = %q parses with a host or scheme", next, got)
			}
		default:
			u, err := url.Parse(got)
			if err != nil || u.User != nil || strings.ContainsAny(got, "\\") || fuzzHasControl(got) {
				t.Fatalf("safeNext(%q) = %q: not a clean absolute URL", next, got)
			}
			onAllowed := false
			for _, o := range allowed {
				lower := strings.ToLower(got)
				if lower == o || strings.HasPrefix(lower, o+"/") || strings.HasPrefix(lower, o+"?") || strings.HasPrefix(lower, o+"#") {
					onAllowed = true
				}
			}
			if !onAllowed || !fuzzContains(allowed, strings.ToLower(u.Scheme+"://"+u.Host)) {
				t.Fatalf("safeNext(%q) = %q: an open redirect", next, got)
			}
		}
	})
}

func fuzzHasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

func fuzzContains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// FuzzClientIP: clientIP never panics; its answer is the peer (as given when the peer is no IP,
// normalised when it is one), or, when the peer is a trusted proxy, a valid IP taken from
// X-Forwarded-For. An untrusted peer's header is never believed.
func FuzzClientIP(f *testing.F) {
	for _, seed := range [][2]string{
		{"203.0.113.7", ""}, {"203.0.113.7", "198.51.100.1"}, {"10.0.0.2", "198.51.100.1"},
		{"10.0.0.2", "198.51.100.1, 10.0.0.9"}, {"10.0.0.2", "10.0.0.3, 10.0.0.4"}, {"10.0.0.2", "garbage, 10.0.0.9"},
		{"10.0.0.2", "198.51.100.1,garbage"}, {"10.0.0.2", " , ,"}, {"10.0.0.2", "::ffff:198.51.100.1"},
		{"::ffff:10.0.0.2", "198.51.100.1"}, {"::1", "2001:db8::1"}, {"::1", "fe80::1%eth0"}, {"10.0.0.2", "1.2.3.4:80"},
		{"10.0.0.2", "[2001:db8::1]"}, {"not-an-ip", "198.51.100.1"}, {"", ""}, {"10.0.0.2", strings.Repeat("10.0.0.1,", 500)},
		{"10.0.0.2", "198.51.100.1\x00"}, {"fd00::1", "01.02.03.04"},
	} {
		f.Add(seed[0], seed[1])
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("fd00::/8")}
	f.Fuzz(func(t *testing.T, peer, forwardedFor string) {
		got := clientIP(peer, forwardedFor, trusted)
		peerAddr, err := netip.ParseAddr(peer)
		if err != nil {
			if got != peer {
				t.Fatalf("clientIP(%q, %q) = %q; an unparsable peer is answered as is", peer, forwardedFor, got)
			}
			return
		}
		addr, err := netip.ParseAddr(got)
		if err != nil {
			t.Fatalf("clientIP(%q, %q) = %q, not an IP", peer, forwardedFor, got)
		}
		if got == peerAddr.Unmap().String() {
			return
		}
		if !isTrusted(peerAddr.Unmap(), trusted) {
			t.Fatalf("clientIP(%q, %q) = %q: believed X-Forwarded-For from an untrusted peer", peer, forwardedFor, got)
		}
		for _, hop := range strings.Split(forwardedFor, ",") {
			if h, err := netip.ParseAddr(strings.TrimSpace(hop)); err == nil && h.Unmap() == addr {
				return
			}
		}
		t.Fatalf("clientIP(%q, %q) = %q: neither the peer nor a hop of the header", peer, forwardedFor, got)
	})
}

// FuzzDeviceIDPattern: X-Device-Id and the device cookie are 8 to 128 of A-Z a-z 0-9 . _ : -,
// nothing else (no newline sneaking past "$", no multi-byte letters).
func FuzzDeviceIDPattern(f *testing.F) {
	for _, seed := range []string{
		"laptop-0001", "01HQ3Z9K4M:ios.app_1", "short", "12345678", strings.Repeat("a", 128), strings.Repeat("a", 129),
		"laptop-0001\n", "\nlaptop-0001", "laptop 0001", "<script>x", "laptop/0001", "ĺaptop-0001", "laptop-0001\x00",
		"ＡＢＣＤＥＦＧＨ", "../../../etc", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, id string) {
		want := len(id) >= 8 && len(id) <= 128
		for i := 0; i < len(id) && want; i++ {
			c := id[i]
			want = c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-'
		}
		if got := deviceIDPattern.MatchString(id); got != want {
			t.Fatalf("deviceIDPattern.MatchString(%q) = %v, want %v", id, got, want)
		}
		if want && !utf8.ValidString(id) {
			t.Fatalf("accepted invalid UTF-8 %q", id)
		}
	})
}
