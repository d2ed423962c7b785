package server

import (
	"reflect"
	"testing"

	"github.com/volandoo/fluxiondb/internal/pubsub"
)

func TestCoalesce(t *testing.T) {
	ins := func(doc string, ts int64) pubsub.Event {
		return pubsub.Event{Op: pubsub.OpInsert, Collection: "c", Doc: doc, TS: ts}
	}
	dcol := pubsub.Event{Op: pubsub.OpDeleteCollection, Collection: "c"}
	ddocAll := func(doc string) pubsub.Event { return pubsub.Event{Op: pubsub.OpDeleteDoc, Doc: doc} }
	for _, tc := range []struct {
		name   string
		in     []pubsub.Event
		wantOf []pubsub.Event
	}{
		{"latest per document, first slot", []pubsub.Event{ins("a", 1), ins("b", 1), ins("a", 2)}, []pubsub.Event{ins("a", 2), ins("b", 1)}},
		{"dcol supersedes what came before", []pubsub.Event{ins("a", 2), ins("b", 1), dcol, ins("a", 3)}, []pubsub.Event{dcol, ins("a", 3)}},
		{"ddoc of every collection is the document's event", []pubsub.Event{ins("a", 2), ddocAll("a"), ins("b", 1)}, []pubsub.Event{ddocAll("a"), ins("b", 1)}},
		{"insert after ddoc of every collection", []pubsub.Event{ins("a", 2), ddocAll("a"), ins("a", 3)}, []pubsub.Event{ins("a", 3)}},
	} {
		var pending []pubsub.Event
		index := map[string]int{}
		for i := range tc.in {
			pending = coalesce(pending, index, &tc.in[i])
		}
		if !reflect.DeepEqual(pending, tc.wantOf) {
			t.Errorf("%s: coalesced %v, want %v", tc.name, pending, tc.wantOf)
		}
	}
}
