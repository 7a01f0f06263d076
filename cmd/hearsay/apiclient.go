package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// apiFlags are the flags of the commands that talk to an agent. They read
// HEARSAY_API and HEARSAY_API_TOKEN, like the agent's own, so one
// environment serves both.
func apiFlags() []cli.Flag {
	return []cli.Flag{
		stringFlag("api", "127.0.0.1:7601", "the agent's API: `HOST:PORT`, an http:// URL, or unix:/PATH"),
		stringFlag("api-token", "", "bearer `TOKEN` the agent's API requires (agent --api-token)"),
	}
}

// requestTimeout bounds every API request but the event stream.
const requestTimeout = 30 * time.Second

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// apiClient talks to an agent's local HTTP API.
type apiClient struct {
	base  *url.URL
	http  *http.Client
	token string
}

func newAPIClient(c *cli.Context) (*apiClient, error) {
	// No client timeout: it would cut event streams. Requests carry their
	// own deadline instead.
	client := &apiClient{http: &http.Client{}, token: flagValue(c, "api-token")}
	if path, ok := strings.CutPrefix(flagValue(c, "api"), "unix:"); ok {
		if path == "" {
			return nil, flagErrorf("api", "unix: needs a path, as in unix:/run/hearsay.sock")
		}
		client.base = &url.URL{Scheme: "http", Host: "hearsay"}
		client.http.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}}
		return client, nil
	}
	base, err := apiURLValue(c, "api")
	if err != nil {
		return nil, err
	}
	client.base = base
	return client, nil
}

func (a *apiClient) url(path string, query url.Values) string {
	u := *a.base
	u.Path += path
	u.RawQuery = query.Encode()
	return u.String()
}

// do sends a request and returns the answer, whatever its status.
func (a *apiClient) do(ctx context.Context, method, path string, query url.Values, body io.Reader) (*http.Response, error) {
	req, err := a.newRequest(ctx, method, path, query, body)
	if err != nil {
		return nil, err
	}
	return a.send(req)
}

func (a *apiClient) newRequest(ctx context.Context, method, path string, query url.Values, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, a.url(path, query), body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	return req, nil
}

func (a *apiClient) send(req *http.Request) (*http.Response, error) {
	resp, err := a.http.Do(req)
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, ctxErr
		}
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err // it repeats the URL
		}
		return nil, fmt.Errorf("cannot reach the agent at %s (is hearsay agent running? see --api): %w", a.base, err)
	}
	return resp, nil
}

// getJSON GETs path and returns the body of a 200 answer.
func (a *apiClient) getJSON(ctx context.Context, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := a.do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, answerError(resp)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the answer to GET %s: %w", path, err)
	}
	return body, nil
}

// answerError turns an unsuccessful answer into an error carrying the
// agent's own message: the "error" of its JSON body, or the body's text.
func answerError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return fmt.Errorf("agent answered %d: %s", resp.StatusCode, msg)
}
