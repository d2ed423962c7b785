package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},                                     // no scenario
		{"ingest"},                             // no target
		{"ingest", "-noop", "-url", "ws://x"},  // two targets
		{"ingest", "-url", "ws://127.0.0.1:1"}, // no key
		{"ingest", "-noop", "-bogus"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2 (stderr %s)", args, code, errb.String())
		}
	}
}

func TestNoopJSON(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"qdoc", "-noop", "-q", "-json", "-requests", "40", "-docs", "5", "-depth", "50", "-k", "10"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var res struct {
		Target   string
		Measured struct {
			Kinds []struct {
				Kind     string
				Requests int64
				Records  int64
			}
		}
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("json: %v\n%s", err, out.String())
	}
	if res.Target != "noop" || len(res.Measured.Kinds) != 1 || res.Measured.Kinds[0].Requests != 40 || res.Measured.Kinds[0].Records != 400 {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(errb.String(), "summary: qdoc qdoc") {
		t.Errorf("no summary line on stderr:\n%s", errb.String())
	}
}

func TestFanoutNotYet(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"fanout", "-noop"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "issue 8") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}
