package filter_test

import (
	"fmt"
	"time"

	"github.com/hearsay-io/hearsay/filter"
)

func ExampleMemory() {
	const maxAge = 10 * time.Minute
	seen := filter.NewMemory(filter.MemoryConfig{MaxEntries: 1000})
	defer seen.Close()

	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	msg := filter.ID{0x01, 0x02} // in practice, the message's 16-byte ID

	// A message is delivered only the first time its ID is added. Its ID
	// must be remembered as long as the message is young enough to be
	// accepted: until its creation time plus MaxAge.
	created := now
	for range 2 {
		added, err := seen.Add(msg, created.Add(maxAge))
		if err != nil {
			fmt.Println("not accepted:", err) // e.g. filter.ErrFull: offer it again later
			continue
		}
		if added {
			fmt.Println("new: deliver it")
		} else {
			fmt.Println("seen: drop it")
		}
	}

	// The caller prunes regularly; expired IDs make room for new ones.
	removed, _ := seen.Prune(now.Add(maxAge + time.Second))
	fmt.Println("pruned:", removed, "held:", seen.Len())
	// Output:
	// new: deliver it
	// seen: drop it
	// pruned: 1 held: 0
}
