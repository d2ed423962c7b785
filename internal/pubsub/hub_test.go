package pubsub

import (
	"errors"
	"testing"
	"time"
)

func ins(doc string, ts int64, data string) func() []Event {
	return func() []Event {
		return []Event{{Op: OpInsert, Collection: "c", Doc: doc, TS: ts, Data: []byte(data)}}
	}
}

func TestNothingRecordedWithoutSubscribers(t *testing.T) {
	h := New(1<<20, time.Minute)
	built := false
	h.Publish(1, func() []Event { built = true; return nil })
	if built {
		t.Fatal("events built with nobody subscribed")
	}
	if st := h.Stats(); st.Batches != 0 {
		t.Fatalf("recorded %d batches", st.Batches)
	}
	// A cursor from before recording started cannot resume.
	if err := h.Subscribe(0); !errors.Is(err, ErrFellBehind) {
		t.Fatalf("resume from before recording: %v", err)
	}
}

func TestReadFromCursorAndCopies(t *testing.T) {
	h := New(1<<20, time.Minute)
	h.Publish(1, nil)
	if err := h.Subscribe(1); err != nil {
		t.Fatal(err)
	}
	data := []byte("abc")
	doc := []byte("d1")
	h.Publish(2, func() []Event {
		return []Event{{Op: OpInsert, Collection: "c", Doc: string(doc), TS: 5, Data: data}}
	})
	data[0] = 'X' // the caller reuses its buffer
	h.Publish(3, ins("d2", 6, "def"))
	h.Publish(4, nil) // a change without events (API keys)
	got, wake, err := h.Read(1, 10, nil)
	if err != nil || len(got) != 2 || got[0].Seq != 2 || got[1].Seq != 3 {
		t.Fatalf("read: %v %v", got, err)
	}
	if string(got[0].Events[0].Data) != "abc" || got[0].Events[0].Doc != "d1" {
		t.Fatalf("event not copied: %+v", got[0].Events[0])
	}
	if got, _, _ := h.Read(2, 10, nil); len(got) != 1 || got[0].Seq != 3 {
		t.Fatalf("read after 2: %v", got)
	}
	if got, _, _ := h.Read(3, 1, nil); len(got) != 0 {
		t.Fatalf("read after 3: %v", got)
	}
	select {
	case <-wake:
		t.Fatal("woken without a publish")
	default:
	}
	_, wake, _ = h.Read(4, 10, nil)
	h.Publish(5, ins("d1", 7, "x"))
	select {
	case <-wake:
	case <-time.After(time.Second):
		t.Fatal("publish did not wake readers")
	}
}

func TestEvictionMakesOldCursorsFallBehind(t *testing.T) {
	h := New(600, time.Minute)
	if err := h.Subscribe(0); err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 20; seq++ {
		h.Publish(seq, ins("d", int64(seq), "0123456789012345678901234567890123456789"))
	}
	if _, _, err := h.Read(0, 10, nil); !errors.Is(err, ErrFellBehind) {
		t.Fatalf("reading evicted history: %v", err)
	}
	st := h.Stats()
	if st.HistoryBytes > 600+200 || st.Evicted == 0 {
		t.Fatalf("budget not kept: %+v", st)
	}
	got, _, err := h.Read(19, 10, nil)
	if err != nil || len(got) != 1 || got[0].Seq != 20 {
		t.Fatalf("recent history: %v %v", got, err)
	}
	// Resuming from an evicted cursor is refused; from a kept one it works.
	if err := h.Subscribe(1); !errors.Is(err, ErrFellBehind) {
		t.Fatalf("subscribe from evicted cursor: %v", err)
	}
	if err := h.Subscribe(19); err != nil {
		t.Fatalf("subscribe from kept cursor: %v", err)
	}
	if err := h.Subscribe(99); !errors.Is(err, ErrFellBehind) {
		t.Fatalf("cursor from the future: %v", err)
	}
}

func TestRecordingStopsAfterRetention(t *testing.T) {
	h := New(1<<20, time.Minute)
	now := time.Unix(1000, 0)
	h.now = func() time.Time { return now }
	if err := h.Subscribe(0); err != nil {
		t.Fatal(err)
	}
	h.Publish(1, ins("d", 1, "a"))
	h.Unsubscribe()
	now = now.Add(30 * time.Second)
	h.Publish(2, ins("d", 2, "b")) // still within retention: recorded for a resume
	if err := h.Subscribe(1); err != nil {
		t.Fatalf("resume within retention: %v", err)
	}
	h.Unsubscribe()
	now = now.Add(2 * time.Minute)
	built := false
	h.Publish(3, func() []Event { built = true; return nil })
	if built || h.Stats().Batches != 0 {
		t.Fatal("still recording after the retention window")
	}
	if err := h.Subscribe(2); !errors.Is(err, ErrFellBehind) {
		t.Fatalf("resume across a recording gap: %v", err)
	}
}
