package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var uiScreenshot = flag.String("ui-screenshot", "", "also write the status page's screenshot to this `file`")

// chromiumPath finds a Chromium or Chrome to drive, or skips the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium in PATH (chromium, chromium-browser, google-chrome): the status page's browser test needs one; on Debian: apt-get install -y chromium")
	return ""
}

// browser is a headless Chromium for a test, ended when the test ends,
// pass or fail. It collects its tabs' console errors and warnings and
// their uncaught exceptions (a refusal by the Content-Security-Policy is
// one).
type browser struct {
	ctx      context.Context // of the browser's first tab
	mu       sync.Mutex
	problems []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.WindowSize(1280, 1000),
		chromedp.UserDataDir(t.TempDir()),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc) // kills the browser and waits for it
	ctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancelTimeout)
	require.NoError(t, chromedp.Do(ctx), "starting Chromium")
	b := &browser{ctx: ctx}
	b.watch(t, ctx)
	return b
}

// tab opens a new tab: a new page, with a sessionStorage of its own.
func (b *browser) tab(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	require.NoError(t, chromedp.Do(ctx), "opening a tab")
	b.watch(t, ctx)
	return ctx
}

// watch collects the problems the tab of ctx logs.
func (b *browser) watch(t *testing.T, ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	messages := chromedp.Console(ctx)
	read := make(chan struct{})
	go func() {
		defer close(read)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Source == "network" && strings.Contains(m.Text, "status of 401") {
				continue // the test's first load, before the token is given
			}
			switch m.Type {
			case chromedp.ConsoleError, chromedp.ConsoleWarning, chromedp.ConsoleException:
				b.mu.Lock()
				b.problems = append(b.problems, fmt.Sprintf("%s %s:%d: %s", m.Type, m.URL, m.Line+1, m.Text))
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-read })
}

func (b *browser) seen() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// waitJS waits until the JavaScript expression is true in the page.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond),
			chromedp.WithPollingTimeout(time.Until(deadline))))
		// A poll begun as a navigation replaced the page's JavaScript
		// context fails so; the new page is polled again.
		if err != nil && strings.Contains(err.Error(), "Cannot find context with specified id") && time.Now().Before(deadline) {
			continue
		}
		require.NoError(t, err, "waiting for %s (%s)", what, expr)
		return
	}
}

// The status page in headless Chromium, on a real agent with a real peer
// and an API token: the token typed once into the form, or given in the
// URL fragment (then taken out of the address bar); the page shows the
// node's name and its peer's address, live charts, and a message
// published on the peer during the test in its tail. The screenshot is
// written under the test's temp dir, and to -ui-screenshot if given (how
// docs/ui.png is made).
func TestE2EStatusPageInChromium(t *testing.T) {
	t.Parallel()
	b := newBrowser(t) // first: it skips without Chromium
	ctx := b.ctx
	hearsayBinary(t)
	const token = "ui-test-token"
	c := newCluster(t, 2)
	passphrase := filepath.Join(t.TempDir(), "passphrase")
	require.NoError(t, os.WriteFile(passphrase, []byte("status page test passphrase\n"), 0o600))
	flags := append(c.peersFlag(), "--interval", "50ms", "--passphrase-file", passphrase)
	agent := c.start(t, 0, "web-1", append(flags, "--api-token", token)...)
	peer := c.start(t, 1, "web-2", flags...)
	page := "http://" + agent.api + "/ui/"

	// Without a token the page asks for one; typed into the form, it works.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(page)))
	waitJS(t, ctx, "the token form", `!document.getElementById("auth").hidden`)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("auth-token"), token),
		chromedp.Click(chromedp.CSS("#auth-form button"))))
	waitJS(t, ctx, "the node's name", `document.getElementById("node-name").textContent === "web-1"`)

	// A first load with the token in the fragment, in a new tab (whose
	// sessionStorage is empty).
	ctx = b.tab(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(page+"#token="+url.QueryEscape(token))))
	waitJS(t, ctx, "the node's name", `document.getElementById("node-name").textContent === "web-1"`)
	waitJS(t, ctx, "the peer's address", fmt.Sprintf(`document.getElementById("peers").textContent.includes(%q)`, peer.gossip))
	waitJS(t, ctx, "the token out of the address bar, kept in the tab", fmt.Sprintf(
		`location.hash === "" && sessionStorage.getItem("hearsay-api-token") === %q`, token))
	waitJS(t, ctx, "the tail live", `document.getElementById("tail-state").textContent.startsWith("live")`)

	// Messages published during the test: a steady flow on the peer, for
	// the charts, then a few on the peer (they come over gossip) and on the
	// agent itself, for the tail.
	flow := startPublisher(peer.api, "sensors.temp", 50*time.Millisecond)
	defer flow.halt()
	waitJS(t, ctx, "the delivery chart drawn", `series.delivered.length >= 3 && document.querySelector("#chart-delivered path.line") !== null`)
	postMessage(t, peer.api, "", "orders.created", `{"order": 42, "items": 3, "total": "19.90 EUR"}`)
	postMessage(t, peer.api, "", "orders.shipped", `{"order": 41, "carrier": "post"}`)
	postMessage(t, agent.api, token, "metrics.cpu", "load=0.42")
	postMessage(t, peer.api, "", "files.blob", "\x00\x01\x02binary\xff")
	waitJS(t, ctx, "the messages in the tail", `(() => {
		const t = document.getElementById("tail").textContent;
		return t.includes('"order": 42') && t.includes("orders.shipped") && t.includes("this node") && t.includes("hex 00 01 02");
	})()`)
	text := func(id string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
		require.NoError(t, err, "#%s", id)
		return s
	}
	assert.Equal(t, "web-1", text("node-name"))
	assert.Contains(t, text("peers"), peer.gossip)
	assert.Contains(t, text("log-bytes"), "of 1.0 GiB", "the log's fill, against its bound")
	var keys struct{ Keys []struct{ ID string } }
	getJSONWithToken(t, agent.api, token, "/v1/keys", &keys)
	require.Len(t, keys.Keys, 1)
	assert.Equal(t, keys.Keys[0].ID+" (primary)", text("keys"), "the key's ID, and nothing of the key")

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	shot := filepath.Join(t.TempDir(), "ui.png")
	require.NoError(t, os.WriteFile(shot, png, 0o600))
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))
	if *uiScreenshot != "" {
		require.NoError(t, os.WriteFile(*uiScreenshot, png, 0o644))
	}
	assert.Empty(t, b.seen(), "the page's console errors and exceptions (a CSP refusal is one)")
}

// postMessage publishes a message over HTTP, with token if not empty.
func postMessage(t *testing.T, api, token, topic, payload string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+api+"/v1/messages?topic="+url.QueryEscape(topic), strings.NewReader(payload))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
}

// getJSONWithToken GETs an API path with the token and decodes the answer.
func getJSONWithToken(t *testing.T, api, token, path string, v any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+api+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}
