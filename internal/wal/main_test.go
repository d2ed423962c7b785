package wal

import (
	"log/slog"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.DiscardHandler)

func openT(t testing.TB, dir string, opts Options) *Log {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return l
}

// replayAll collects every frame from fromSeq.
func replayAll(t testing.TB, l *Log, fromSeq uint64) (seqs []uint64, payloads []string) {
	t.Helper()
	err := l.Replay(fromSeq, func(seq uint64, p []byte) error {
		seqs = append(seqs, seq)
		payloads = append(payloads, string(p))
		return nil
	})
	if err != nil {
		t.Fatalf("Replay(%d): %v", fromSeq, err)
	}
	return seqs, payloads
}
