package client

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestRetryDelay(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	assert.Equal(t, time.Duration(0), retryDelay("", now), "no Retry-After: do not retry")
	assert.Equal(t, 2*time.Second, retryDelay("2", now))
	assert.Equal(t, minRetryDelay, retryDelay("0", now))
	assert.Equal(t, maxRetryDelay, retryDelay("3600", now))
	assert.Equal(t, 3*time.Second, retryDelay(now.Add(3*time.Second).Format(http.TimeFormat), now))
	assert.Equal(t, defaultRetryDelay, retryDelay("soon", now))
}
