// Command example shows the FluxionDB Go client end to end: connect, insert
// through a BatchWriter, query the latest records and one document's
// history, use the key-value store, and handle errors.
//
//	go run ./example -url ws://localhost:8080 -key "$FLUXIONDB_API_KEY"
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"time"

	fluxiondb "github.com/volandoo/fluxiondb/clients/go"
)

func main() {
	url := flag.String("url", "ws://localhost:8080", "server URL")
	key := flag.String("key", os.Getenv("FLUXIONDB_API_KEY"), "API key (default $FLUXIONDB_API_KEY)")
	n := flag.Int("n", 10000, "records to insert")
	verbose := flag.Bool("v", false, "log connection events")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *url, *key, *n, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, url, key string, n int, verbose bool) error {
	opts := []fluxiondb.Option{fluxiondb.WithConnectionName("go-example")}
	if verbose {
		opts = append(opts, fluxiondb.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	}
	dialCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := fluxiondb.Dial(dialCtx, url, key, opts...)
	if errors.Is(err, fluxiondb.ErrUnauthenticated) {
		return fmt.Errorf("the server refused the API key: %w", err)
	}
	if err != nil {
		return err
	}
	defer c.Close()

	// Ingest: a BatchWriter groups records into large requests.
	start := time.Now()
	base := time.Now().UnixMilli()
	bw := c.NewBatchWriter()
	for i := range n {
		rec := fluxiondb.InsertRecord{
			Col:  "example-sensors",
			Doc:  fmt.Sprintf("device-%d", i%10),
			TS:   base + int64(i),
			Data: fmt.Sprintf(`{"seq":%d,"temperature":%.1f}`, i, 20+float64(i%50)/10),
		}
		if err := bw.Write(ctx, rec); err != nil {
			return err
		}
	}
	if err := bw.Close(ctx); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	elapsed := time.Since(start)
	fmt.Printf("inserted %d records in %v (%.0f records/s)\n", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())

	latest, err := c.Latest(ctx, fluxiondb.LatestQuery{Col: "example-sensors", TS: math.MaxInt64})
	if err != nil {
		return err
	}
	fmt.Printf("latest of %d devices; device-0: %s\n", len(latest), latest["device-0"].Data)

	history, err := c.History(ctx, fluxiondb.HistoryQuery{Col: "example-sensors", Doc: "device-1", To: math.MaxInt64, Reverse: true, Limit: 3})
	if err != nil {
		return err
	}
	fmt.Println("newest 3 records of device-1:")
	for _, r := range history {
		fmt.Printf("  %d %s\n", r.TS, r.Data)
	}

	if err := c.KVSet(ctx, "example-sensors", "unit", "celsius"); err != nil {
		return err
	}
	unit, err := c.KVGet(ctx, "example-sensors", "unit")
	if err != nil {
		return err
	}
	fmt.Println("unit:", unit)

	// A rejected request is an error you can classify.
	_, err = c.History(ctx, fluxiondb.HistoryQuery{Col: "example-sensors", Doc: "device-1", From: 10, To: 5})
	var se *fluxiondb.ServerError
	if errors.As(err, &se) {
		fmt.Printf("rejected as expected: code=%s message=%q invalid=%v\n", se.Code, se.Message, errors.Is(err, fluxiondb.ErrInvalidRequest))
	}

	return c.RemoveCollection(ctx, "example-sensors")
}
