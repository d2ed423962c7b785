package fluxiondb_test

import (
	"fmt"
	"log"
	"testing"
	"time"

	fluxiondb "github.com/volandoo/fluxiondb/clients/go"
)

// seedExample is the Go example of the design document (seed/README.md),
// unchanged except that the URL and key are parameters and the result is
// returned for the test to check.
func seedExample(url, key string) map[string]fluxiondb.LTDBRecordResponse {
	client := fluxiondb.NewClient(url, key)
	if err := client.Connect(); err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	now := time.Now().Unix()
	_ = client.InsertSingleDocumentRecord(fluxiondb.LTDBInsertMessageRequest{
		TS:         now,
		Key:        "device-1",
		Data:       `{"temperature":22.5}`,
		Collection: "sensors",
	})

	latest, _ := client.FetchLatestDocumentRecords(fluxiondb.LTDBFetchSessionsParams{
		Collection: "sensors",
		TS:         now,
	})

	fmt.Println(latest)
	return latest
}

func TestSeedExample(t *testing.T) {
	url := fluxiondb.StartServerForTest(t)
	before := time.Now().Unix()
	latest := seedExample(url, fluxiondb.MasterKeyForTest)
	r, ok := latest["device-1"]
	if !ok || r.Data != `{"temperature":22.5}` || r.TS < before || r.TS > time.Now().Unix() {
		t.Fatalf("latest = %v; want device-1 with the inserted record", latest)
	}
}
