package e2e

import (
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/playwright-community/playwright-go"
)

// infraPage is a tiny form that works with and without JavaScript: with JS the
// button fills the <output> in place, without JS the form is submitted and
// the server renders the greeting (and sets a cookie).
const infraPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>infra</title>
<style>body{font-family:sans-serif;margin:2rem} output{display:block;margin-top:1rem;font-weight:bold}</style>
</head><body>
<h1>Infra check</h1>
<form action="/greet" method="get" id="f">
  <label for="name">Your name</label>
  <input id="name" name="name" autocomplete="off">
  <button type="submit">Greet</button>
</form>
<output id="result" role="status">%s</output>
<script>
document.getElementById('f').addEventListener('submit', function (e) {
  e.preventDefault();
  document.getElementById('result').textContent =
    'Hello, ' + document.getElementById('name').value + '! (js)';
});
</script>
</body></html>`

func newInfraServer(t testing.TB) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, infraPage, "")
	})
	mux.HandleFunc("GET /greet", func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("name")
		http.SetCookie(w, &http.Cookie{Name: "greeted", Value: "yes", Path: "/", HttpOnly: true})
		fmt.Fprintf(w, infraPage, "Hello, "+html.EscapeString(name)+"! (server)")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func TestInfra(t *testing.T) {
	browser := newBrowser(t)
	srv := newInfraServer(t)

	t.Run("fill by label, click by role", func(t *testing.T) {
		d := newDevice(t, browser)
		if _, err := d.Page.Goto(srv.URL); err != nil {
			t.Fatalf("goto: %v", err)
		}
		if err := d.Page.GetByLabel("Your name").Fill("Ada"); err != nil {
			t.Fatalf("fill: %v", err)
		}
		if err := d.Page.GetByRole("button", playwright.PageGetByRoleOptions{Name: "Greet"}).Click(); err != nil {
			t.Fatalf("click: %v", err)
		}
		result := d.Page.GetByRole("status")
		if err := expect.Locator(result).ToHaveText("Hello, Ada! (js)"); err != nil {
			t.Fatalf("result: %v", err)
		}
		text, err := result.TextContent()
		if err != nil || text != "Hello, Ada! (js)" {
			t.Fatalf("result text = %q, %v", text, err)
		}
		path := saveArtifactScreenshot(t, d.Page, "greeted")
		if st, err := os.Stat(path); err != nil || st.Size() == 0 {
			t.Fatalf("screenshot %s: %v", path, err)
		}
		t.Logf("screenshot: %s", path)
	})

	t.Run("javascript disabled, keyboard, own cookie jar", func(t *testing.T) {
		noJS := newDevice(t, browser, withName("nojs"), withJavaScriptDisabled())
		other := newDevice(t, browser, withName("other"))
		for _, d := range []*device{noJS, other} {
			if _, err := d.Page.Goto(srv.URL); err != nil {
				t.Fatalf("%s goto: %v", d.Name, err)
			}
		}
		if err := noJS.Page.GetByLabel("Your name").Fill("Bob"); err != nil {
			t.Fatalf("fill: %v", err)
		}
		// Enter in the field submits the form natively (no JS involved).
		if err := noJS.Page.Keyboard().Press("Enter"); err != nil {
			t.Fatalf("press: %v", err)
		}
		if err := expect.Page(noJS.Page).ToHaveURL(srv.URL + "/greet?name=Bob"); err != nil {
			t.Fatalf("url: %v", err)
		}
		if err := expect.Locator(noJS.Page.GetByRole("status")).ToHaveText("Hello, Bob! (server)"); err != nil {
			t.Fatalf("result: %v", err)
		}
		cookies, err := noJS.Context.Cookies(srv.URL)
		if err != nil || len(cookies) != 1 || cookies[0].Name != "greeted" {
			t.Fatalf("nojs cookies = %+v, %v", cookies, err)
		}
		if cookies, err := other.Context.Cookies(); err != nil || len(cookies) != 0 {
			t.Fatalf("other device shares cookies: %+v, %v", cookies, err)
		}
	})
}
