package gossip

import "time"

// Retention bounds of Config.Retention, and so of MaxAge, which follows it.
const (
	// DefaultRetention is Config.Retention (and MaxAge) when neither is set.
	DefaultRetention = 10 * time.Minute
	// MaxRetention is the longest Config.Retention: a week. The log is
	// bounded by bytes as well (msglog.DefaultMaxBytes), and the seen filter
	// forgets what the log evicted for its byte bound (Core.evicted), so
	// neither disk nor memory grows with the retention itself.
	MaxRetention = 7 * 24 * time.Hour
)

// defaultMaxAge is MaxAge when it is not set: the retention, so that every
// message the log may still repair is accepted, and no older one.
func defaultMaxAge(retention time.Duration) time.Duration {
	if retention > 0 {
		return retention
	}
	return DefaultRetention
}
