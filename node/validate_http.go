package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/hearsay-io/hearsay/gossip"
)

// HTTPValidator returns a Validator that POSTs each message, as the JSON of
// an SSE message event's data field (MessageJSON), to url and reads the
// verdict from the status: 2xx accept, 422 reject, 409 ignore. Any other
// status, or no answer, is no verdict (the message waits and is asked
// again). client nil: http.DefaultClient; the call's deadline is the
// context's (Config.ValidateTimeout). A message published here is asked
// about before it has an ID and sequence number: its id is empty.
func HTTPValidator(url string, client *http.Client) Validator {
	if client == nil {
		client = http.DefaultClient
	}
	return func(ctx context.Context, m gossip.Message) (gossip.Verdict, error) {
		j := NewMessageJSON(m)
		if m.ID == (gossip.MessageID{}) {
			j.ID = ""
		}
		body, err := json.Marshal(j)
		if err != nil {
			return 0, fmt.Errorf("validator: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return 0, fmt.Errorf("validator: %w", err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, fmt.Errorf("validator: %w", err)
		}
		// Drained (a little) so that the connection is reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		switch {
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			return gossip.VerdictAccept, nil
		case resp.StatusCode == http.StatusUnprocessableEntity:
			return gossip.VerdictReject, nil
		case resp.StatusCode == http.StatusConflict:
			return gossip.VerdictIgnore, nil
		}
		return 0, fmt.Errorf("validator: %s answered %s", url, resp.Status)
	}
}
