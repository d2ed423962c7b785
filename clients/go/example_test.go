package fluxiondb_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math"
	"os"
	"time"

	fluxiondb "github.com/volandoo/fluxiondb/clients/go"
)

// This example starts a real server, so its output is checked.
func Example() {
	url, stop := fluxiondb.StartExampleServer()
	defer stop()

	ctx := context.Background()
	c, err := fluxiondb.Dial(ctx, url, fluxiondb.MasterKeyForTest)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	err = c.Insert(ctx,
		fluxiondb.InsertRecord{Col: "sensors", Doc: "device-1", TS: 1000, Data: `{"t":21.5}`},
		fluxiondb.InsertRecord{Col: "sensors", Doc: "device-1", TS: 2000, Data: `{"t":22.5}`},
		fluxiondb.InsertRecord{Col: "sensors", Doc: "device-2", TS: 9007199254740993, Data: `{"t":19.0}`},
	)
	if err != nil {
		log.Fatal(err)
	}
	latest, err := c.Latest(ctx, fluxiondb.LatestQuery{Col: "sensors", TS: math.MaxInt64})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(latest["device-1"].TS, latest["device-1"].Data)
	fmt.Println(latest["device-2"].TS)

	history, err := c.History(ctx, fluxiondb.HistoryQuery{Col: "sensors", Doc: "device-1", From: 0, To: 5000})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(history), "records")

	_, err = c.Latest(ctx, fluxiondb.LatestQuery{TS: 1}) // no collection
	fmt.Println(errors.Is(err, fluxiondb.ErrInvalidRequest))
	// Output:
	// 2000 {"t":22.5}
	// 9007199254740993
	// 2 records
	// true
}

// Options for a production client: a label, timeouts, a reconnect policy
// and a logger (the client logs nothing without one).
func ExampleDial() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := fluxiondb.Dial(ctx, "ws://localhost:8080", os.Getenv("FLUXIONDB_API_KEY"),
		fluxiondb.WithConnectionName("ingest-1"),
		fluxiondb.WithRequestTimeout(5*time.Second),
		fluxiondb.WithReconnectPolicy(fluxiondb.ReconnectPolicy{MinDelay: 200 * time.Millisecond, MaxDelay: 10 * time.Second}),
		fluxiondb.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))),
	)
	if errors.Is(err, fluxiondb.ErrUnauthenticated) {
		log.Fatal("the server refused the API key")
	}
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
}

// Server errors are classified with errors.Is and read with errors.As.
func ExampleServerError() {
	ctx := context.Background()
	c := fluxiondb.NewClient("ws://localhost:8080", "readonly-key")
	defer c.Close()

	err := c.Insert(ctx, fluxiondb.InsertRecord{Col: "c", Doc: "d", TS: 1, Data: "x"})
	switch {
	case errors.Is(err, fluxiondb.ErrPermissionDenied):
		fmt.Println("this key may not write")
	case errors.Is(err, fluxiondb.ErrUnavailable):
		fmt.Println("not durable: safe to retry")
	case errors.Is(err, fluxiondb.ErrConnectionLost):
		fmt.Println("connection lost: the write may or may not have been applied")
	}
	var se *fluxiondb.ServerError
	if errors.As(err, &se) {
		fmt.Println(se.Code, se.Message, se.RequestID)
	}
}

// A BatchWriter turns many small writes into large ins requests.
func ExampleClient_NewBatchWriter() {
	ctx := context.Background()
	c := fluxiondb.NewClient("ws://localhost:8080", os.Getenv("FLUXIONDB_API_KEY"))
	defer c.Close()

	bw := c.NewBatchWriter(
		fluxiondb.WithBatchSize(5000),
		fluxiondb.WithFlushInterval(20*time.Millisecond),
		fluxiondb.WithErrorHandler(func(err error, records []fluxiondb.InsertRecord) {
			log.Printf("%d records not stored: %v", len(records), err)
		}),
	)
	for i := range 100_000 {
		// Write blocks when the queue is full (back-pressure).
		if err := bw.Write(ctx, fluxiondb.InsertRecord{Col: "ticks", Doc: "EURUSD", TS: int64(i), Data: "1.0842"}); err != nil {
			log.Fatal(err)
		}
	}
	if err := bw.Close(ctx); err != nil { // flushes, then returns failed batches' errors
		log.Print(err)
	}
}

// The names of the official clients still work; they are deprecated
// wrappers over the context-taking methods.
func ExampleClient_InsertSingleDocumentRecord() {
	client := fluxiondb.NewClient("ws://localhost:8080", "YOUR_SECRET_KEY")
	if err := client.Connect(); err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	now := time.Now().Unix()
	_ = client.InsertSingleDocumentRecord(fluxiondb.LTDBInsertMessageRequest{
		TS: now, Key: "device-1", Data: `{"temperature":22.5}`, Collection: "sensors",
	})
	latest, _ := client.FetchLatestDocumentRecords(fluxiondb.LTDBFetchSessionsParams{Collection: "sensors", TS: now})
	fmt.Println(latest)
}

func ExampleClient_KVFind() {
	ctx := context.Background()
	c := fluxiondb.NewClient("ws://localhost:8080", os.Getenv("FLUXIONDB_API_KEY"))
	defer c.Close()
	_ = c.KVSet(ctx, "config", "env.region", "eu-west")
	values, err := c.KVFind(ctx, "config", `/^env\./`) // a /regex/ or a literal key
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(values)
}

// A live subscription: the current state first (Snapshot), then every
// change as it happens. The subscription resumes by itself after a
// reconnect; ResubscribeWithSnapshot makes it start over with an OpReset
// event, instead of ending, if changes were lost meanwhile.
func ExampleClient_Subscribe() {
	url, stop := fluxiondb.StartExampleServer()
	defer stop()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // cancelling ctx also ends the subscription
	c, err := fluxiondb.Dial(ctx, url, fluxiondb.MasterKeyForTest)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	_ = c.Insert(ctx, fluxiondb.InsertRecord{Col: "sensors", Doc: "device-1", TS: 1000, Data: `{"t":21.5}`})

	sub, err := c.Subscribe(ctx, fluxiondb.SubscribeQuery{Col: "sensors", Doc: "/^device-/", Snapshot: true},
		fluxiondb.ResubscribeWithSnapshot())
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	fmt.Println("snapshot:", sub.Snapshot()["device-1"].Data)

	_ = c.Insert(ctx, fluxiondb.InsertRecord{Col: "sensors", Doc: "device-1", TS: 2000, Data: `{"t":22.5}`})
	_ = c.Insert(ctx, fluxiondb.InsertRecord{Col: "sensors", Doc: "other", TS: 2000, Data: `{}`}) // not selected
	_ = c.RemoveDocument(ctx, "sensors", "device-1")

	for ev, err := range sub.All() {
		if err != nil {
			log.Fatal(err) // e.g. errors.Is(err, fluxiondb.ErrSlowSubscriber)
		}
		switch ev.Op {
		case fluxiondb.OpInsert:
			fmt.Println("insert", ev.Doc, ev.TS, ev.Data)
		case fluxiondb.OpDeleteDocument:
			fmt.Println("removed", ev.Doc)
		case fluxiondb.OpReset:
			fmt.Println("start over from", len(ev.Records), "documents")
		}
		if ev.Op == fluxiondb.OpDeleteDocument {
			break
		}
	}
	// Output:
	// snapshot: {"t":21.5}
	// insert device-1 2000 {"t":22.5}
	// removed device-1
}
