package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/hearsay-io/hearsay/client"
	"github.com/hearsay-io/hearsay/node"
)

// exampleAgent starts an agent on 127.0.0.1 for an example and returns its
// API address: what "hearsay agent" serves on 127.0.0.1:7601 by default.
func exampleAgent() (addr string, stop func()) {
	a, err := startAgent(node.Config{Name: "example"}, node.APIConfig{}, "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	return a.addr, a.stop
}

func Example() {
	addr, stop := exampleAgent()
	defer stop()
	ctx := context.Background()

	agent, err := client.New("http://"+addr, client.WithPublishRetries(3))
	if err != nil {
		log.Fatal(err)
	}
	sub, err := agent.Subscribe(ctx, "orders.>")
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()

	if _, err := agent.Publish(ctx, "orders.created", []byte(`{"order": 42}`)); err != nil {
		log.Fatal(err)
	}
	m, err := sub.Next()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %s\n", m.Topic, m.Payload)
	// Output: orders.created: {"order": 42}
}

func ExampleClient_Publish() {
	addr, stop := exampleAgent()
	defer stop()

	agent, err := client.New(addr)
	if err != nil {
		log.Fatal(err)
	}
	id, err := agent.Publish(context.Background(), "clock.tick", []byte(time.Now().String()))
	var apiErr *client.APIError
	switch {
	case errors.Is(err, client.ErrBackpressure) && errors.As(err, &apiErr):
		fmt.Println("busy: retry in", apiErr.RetryAfter)
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println("published, ID of", len(id), "hex digits")
	}
	// Output: published, ID of 32 hex digits
}

// A subscription that resumes where an earlier one stopped, as a process
// that keeps the last ID it handled would after a restart.
func ExampleClient_Subscribe_resume() {
	addr, stop := exampleAgent()
	defer stop()
	ctx := context.Background()
	agent, err := client.New(addr)
	if err != nil {
		log.Fatal(err)
	}

	first, err := agent.Subscribe(ctx, "jobs.*")
	if err != nil {
		log.Fatal(err)
	}
	for _, job := range []string{"one", "two", "three"} {
		if _, err := agent.Publish(ctx, "jobs.new", []byte(job)); err != nil {
			log.Fatal(err)
		}
	}
	m, err := first.Next()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("handled", string(m.Payload))
	first.Close() // the process stops here, having kept first.LastID()

	again, err := agent.Subscribe(ctx, "jobs.*", client.After(first.LastID()))
	if err != nil {
		log.Fatal(err)
	}
	defer again.Close()
	for range 2 {
		m, err := again.Next()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("handled", string(m.Payload))
	}
	// Output:
	// handled one
	// handled two
	// handled three
}

func ExampleClient_Status() {
	addr, stop := exampleAgent()
	defer stop()

	agent, err := client.New(addr)
	if err != nil {
		log.Fatal(err)
	}
	st, err := agent.Status(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Name, st.Filter, st.Encrypted)
	// Output: example memory false
}
