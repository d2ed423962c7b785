package server

import (
	"strconv"
	"time"

	"github.com/volandoo/fluxiondb/internal/auth"
	"github.com/volandoo/fluxiondb/internal/db"
	"github.com/volandoo/fluxiondb/internal/engine"
	"github.com/volandoo/fluxiondb/internal/protocol"
)

// need is the scope each message requires (PROTOCOL.md §3, scope table).
var need = map[protocol.Type]auth.Scope{
	protocol.TypeQry: auth.ScopeReadOnly, protocol.TypeCols: auth.ScopeReadOnly,
	protocol.TypeQdoc: auth.ScopeReadOnly, protocol.TypeGval: auth.ScopeReadOnly,
	protocol.TypeGvalues: auth.ScopeReadOnly, protocol.TypeGvals: auth.ScopeReadOnly,
	protocol.TypeGkeys: auth.ScopeReadOnly, protocol.TypeConn: auth.ScopeReadOnly,
	protocol.TypeSub: auth.ScopeReadOnly, protocol.TypeUnsub: auth.ScopeReadOnly,
	protocol.TypeIns: auth.ScopeReadWrite, protocol.TypeSval: auth.ScopeReadWrite,
	protocol.TypeDdoc: auth.ScopeReadWriteDelete, protocol.TypeDcol: auth.ScopeReadWriteDelete,
	protocol.TypeDrec: auth.ScopeReadWriteDelete, protocol.TypeDmrec: auth.ScopeReadWriteDelete,
	protocol.TypeDrrng: auth.ScopeReadWriteDelete, protocol.TypeRval: auth.ScopeReadWriteDelete,
}

// reply is what handling one request produced: the encoded reply, and for a change the
// commit the reply must wait for before it is sent.
type reply struct {
	buf    *[]byte
	commit db.Commit
	id     []byte        // a copy of the request id, kept only when commit must be waited for
	typ    protocol.Type // the request's type, kept with id: its outcome is counted after the wait
	push   bool          // a frame that answers no request (ready, subscription events)
	failed bool          // an error reply
	start  func()        // run once the reply is queued (starts a subscription's pump)
}

// handle serves one decoded request and returns its reply in a pooled buffer.
func (c *conn) handle(r *protocol.Request) reply {
	out := c.replyBuf()
	commit, start, e := c.dispatch(r, out)
	if e != nil {
		*out = protocol.AppendError((*out)[:0], r.ID, e)
		c.srv.metrics.requestError(r.Type, e.Code)
		return reply{buf: out, failed: true}
	}
	if max := c.srv.cfg.MaxReplySize; int64(len(*out)) > max {
		// Every reply is held to --max-reply-size, not only the queries that stop building
		// early at it: a listing of KV values, collections or connections can be large too,
		// and a client sized for the limit must be able to count on it.
		e := &protocol.Error{Code: protocol.CodeTooLarge,
			Text: "the reply would be larger than " + sizeText(max) + " (--max-reply-size)"}
		*out = protocol.AppendError((*out)[:0], r.ID, e)
		c.srv.metrics.requestError(r.Type, e.Code)
		return reply{buf: out, failed: true}
	}
	rep := reply{buf: out, commit: commit, start: start}
	if commit != 0 {
		rep.id, rep.typ = append([]byte(nil), r.ID...), r.Type
	}
	return rep
}

// dispatch checks the scope, decodes the payload and runs the message. It appends a success
// reply to out, or returns an error (and out is discarded). start, when not nil, must run
// once the reply is queued.
func (c *conn) dispatch(r *protocol.Request, out *[]byte) (commit db.Commit, start func(), e *protocol.Error) {
	if r.Type == protocol.TypeSub || r.Type == protocol.TypeUnsub {
		if c.key.Scope() < need[r.Type] {
			return 0, nil, protocol.ErrPermissionDenied
		}
		if r.Type == protocol.TypeSub {
			*out, start, e = c.subscribe(r, (*out)[:0])
		} else {
			*out, e = c.unsubscribe(r, (*out)[:0])
		}
		return 0, start, e
	}
	commit, e = c.run(r, out)
	return commit, nil, e
}

// run serves every request/response message.
func (c *conn) run(r *protocol.Request, out *[]byte) (db.Commit, *protocol.Error) {
	d := c.srv.db
	if r.Type == protocol.TypeAuth {
		return 0, protocol.ErrAuthMessage
	}
	if r.Type == protocol.TypeKeys {
		return c.keys(r, out)
	}
	if c.key.Scope() < need[r.Type] {
		return 0, protocol.ErrPermissionDenied
	}
	b := *out
	defer func() { *out = b }()

	switch r.Type {
	case protocol.TypeIns:
		ins := r.FastInsert // the frame's own: the read loop parsed into it
		if e := ins.DecodeRequest(r); e != nil {
			return 0, e
		}
		if max := c.srv.cfg.MaxBatchRecords; max > 0 && len(ins.Records) > max {
			return 0, &protocol.Error{Code: protocol.CodeTooLarge,
				Text: "insert batch of " + strconv.Itoa(len(ins.Records)) + " records is over the limit of " + strconv.Itoa(max) + " (--max-batch-records)"}
		}
		c.recs = c.recs[:0]
		for _, x := range ins.Records {
			c.recs = append(c.recs, engine.Record{Collection: x.Collection, Doc: x.Doc, TS: x.TS, Data: x.Data})
		}
		commit, err := d.Insert(c.recs)
		if err != nil {
			return 0, unavailable(err)
		}
		c.srv.metrics.insertedRecords(len(c.recs))
		b = protocol.AppendOK(b, r.ID)
		return commit, nil

	case protocol.TypeQry:
		q, e := protocol.DecodeLatest(r.Data)
		if e != nil {
			return 0, e
		}
		lq := engine.LatestQuery{TS: q.TS, From: q.From, Keep: protocol.Predicate(q.Where, q.Filter)}
		if q.Doc.IsRegex() {
			lq.DocMatch = q.Doc.MatchName
		} else {
			lq.Doc = q.Doc.Literal
		}
		b = append(protocol.AppendReplyStart(b, r.ID), `,"records":{`...)
		first, tooBig := true, false
		maxReply := c.srv.cfg.MaxReplySize
		d.Engine.LatestEncoded(q.Collection, lq, appendLatest, func(fragment []byte) {
			if tooBig {
				return
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, fragment...)
			tooBig = int64(len(b)) > maxReply
		})
		if tooBig {
			b = b[:0]
			return 0, &protocol.Error{Code: protocol.CodeTooLarge,
				Text: "the reply would be larger than " + sizeText(maxReply) + " (--max-reply-size): select fewer documents"}
		}
		b = append(b, "}}"...)

	case protocol.TypeQdoc:
		q, e := protocol.DecodeRange(r.Data)
		if e != nil {
			return 0, e
		}
		b = append(protocol.AppendReplyStart(b, r.ID), `,"records":[`...)
		first, tooBig := true, false
		maxReply := c.srv.cfg.MaxReplySize
		var rw protocol.RecordWriter
		d.Engine.Range(q.Collection, q.Doc, engine.RangeQuery{
			From: q.From, To: q.To, Reverse: q.Reverse, Limit: q.Limit,
			Keep: protocol.Predicate(q.Where, q.Filter),
		}, func(ts int64, data []byte) {
			if tooBig {
				return
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = rw.Append(b, ts, data)
			tooBig = int64(len(b)) > maxReply
		})
		if tooBig {
			b = b[:0]
			return 0, &protocol.Error{Code: protocol.CodeTooLarge,
				Text: "the reply would be larger than " + sizeText(maxReply) + " (--max-reply-size): narrow from/to or set a limit"}
		}
		b = append(b, "]}"...)

	case protocol.TypeCols:
		b = append(protocol.AppendReplyStart(b, r.ID), `,"collections":`...)
		b = appendStrings(b, d.Engine.Collections())
		b = append(b, '}')

	case protocol.TypeDdoc:
		ref, e := protocol.DecodeDeleteDoc(r.Data)
		if e != nil {
			return 0, e
		}
		return c.changed(d.DeleteDoc(ref.Collection, ref.Doc))(&b, r.ID)

	case protocol.TypeDcol:
		col, e := protocol.DecodeCollection(r.Data)
		if e != nil {
			return 0, e
		}
		return c.changed(d.DeleteCollection(col))(&b, r.ID)

	case protocol.TypeDrec:
		ref, e := protocol.DecodeDeleteRecord(r.Data)
		if e != nil {
			return 0, e
		}
		return c.changed(d.DeleteRecords([]engine.RecordKey{{Collection: ref.Collection, Doc: ref.Doc, TS: ref.TS}}))(&b, r.ID)

	case protocol.TypeDmrec:
		refs, e := protocol.DecodeDeleteRecords(r.Data)
		if e != nil {
			return 0, e
		}
		keys := make([]engine.RecordKey, len(refs))
		for i, x := range refs {
			keys[i] = engine.RecordKey{Collection: x.Collection, Doc: x.Doc, TS: x.TS}
		}
		return c.changed(d.DeleteRecords(keys))(&b, r.ID)

	case protocol.TypeDrrng:
		ref, e := protocol.DecodeDeleteRange(r.Data)
		if e != nil {
			return 0, e
		}
		return c.changed(d.DeleteRange(ref.Collection, ref.Doc, ref.FromTS, ref.ToTS))(&b, r.ID)

	case protocol.TypeSval:
		kv, e := protocol.DecodeKV(r.Data, true, true)
		if e != nil {
			return 0, e
		}
		return c.changed(d.SetValue(kv.Collection, kv.Key, kv.Value))(&b, r.ID)

	case protocol.TypeRval:
		kv, e := protocol.DecodeKV(r.Data, true, false)
		if e != nil {
			return 0, e
		}
		return c.changed(d.DeleteValue(kv.Collection, kv.Key))(&b, r.ID)

	case protocol.TypeGval:
		kv, e := protocol.DecodeKV(r.Data, true, false)
		if e != nil {
			return 0, e
		}
		v, _ := d.Engine.Value(kv.Collection, kv.Key)
		b = append(protocol.AppendReplyStart(b, r.ID), `,"value":`...)
		b = protocol.AppendString(b, v)
		b = append(b, '}')

	case protocol.TypeGvalues:
		kv, e := protocol.DecodeKV(r.Data, true, false)
		if e != nil {
			return 0, e
		}
		b = append(protocol.AppendReplyStart(b, r.ID), `,"values":{`...)
		if p := protocol.ParsePattern(kv.Key); p.IsRegex() {
			b = appendValues(b, d.Engine, kv.Collection, p.MatchName, c.srv.cfg.MaxReplySize)
		} else {
			v, _ := d.Engine.Value(kv.Collection, kv.Key)
			b = protocol.AppendString(b, kv.Key)
			b = append(b, ':')
			b = protocol.AppendString(b, v)
		}
		b = append(b, "}}"...)

	case protocol.TypeGvals:
		col, e := protocol.DecodeCollection(r.Data)
		if e != nil {
			return 0, e
		}
		b = append(protocol.AppendReplyStart(b, r.ID), `,"values":{`...)
		b = appendValues(b, d.Engine, col, nil, c.srv.cfg.MaxReplySize)
		b = append(b, "}}"...)

	case protocol.TypeGkeys:
		col, e := protocol.DecodeCollection(r.Data)
		if e != nil {
			return 0, e
		}
		b = append(protocol.AppendReplyStart(b, r.ID), `,"keys":`...)
		b = appendStrings(b, d.Engine.Keys(col))
		b = append(b, '}')

	case protocol.TypeConn:
		b = append(protocol.AppendReplyStart(b, r.ID), `,"connections":[`...)
		now := time.Now()
		for i, o := range c.srv.conns.list() {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"ip":`...)
			b = protocol.AppendString(b, o.ip)
			b = append(b, `,"since":`...)
			b = strconv.AppendInt(b, now.Sub(o.since).Milliseconds(), 10)
			b = append(b, `,"name":`...)
			if o.name == "" {
				b = append(b, "null"...)
			} else {
				b = protocol.AppendString(b, o.name)
			}
			b = append(b, `,"self":`...)
			b = strconv.AppendBool(b, o == c)
			b = append(b, '}')
		}
		b = append(b, "]}"...)

	default:
		return 0, &protocol.Error{Code: protocol.CodeUnknownType, Text: "unknown message type " + strconv.Quote(string(r.TypeName))}
	}
	return 0, nil
}

// appendLatest encodes one member of a qry reply: `"<doc>":{"ts":…,"data":"…"}`.
func appendLatest(b []byte, doc string, ts int64, data []byte) []byte {
	b = protocol.AppendString(b, doc)
	b = append(b, ':')
	return protocol.AppendRecord(b, ts, data)
}

// changed finishes a change: on success it appends the empty ok reply.
func (c *conn) changed(commit db.Commit, err error) func(b *[]byte, id []byte) (db.Commit, *protocol.Error) {
	return func(b *[]byte, id []byte) (db.Commit, *protocol.Error) {
		if err != nil {
			return 0, unavailable(err)
		}
		*b = protocol.AppendOK(*b, id)
		return commit, nil
	}
}

// unavailable is the reply to a change the log refused: it was not applied.
func unavailable(err error) *protocol.Error {
	return &protocol.Error{Code: protocol.CodeUnavailable, Text: "the change could not be made durable, retry later: " + err.Error()}
}

// notDurable is the reply to a change that was applied but whose fsync failed: readers may
// see it and the log writes it again once the disk recovers, but a stop before then loses
// it. Sending it again is safe: every change is a blind set or delete.
func notDurable(err error) *protocol.Error {
	return &protocol.Error{Code: protocol.CodeUnavailable, Text: "the change was applied but could not be made durable " +
		"(it is lost if the server stops before the disk recovers); retrying it is safe: " + err.Error()}
}

// settle waits for rep's change to be durable, then counts its outcome: a change that could
// not be made durable makes rep an `unavailable` error reply (and is counted as one).
func (c *conn) settle(rep *reply) {
	if err := c.srv.wait(c.ctx, rep.commit); err != nil {
		e := notDurable(err)
		*rep.buf = protocol.AppendError((*rep.buf)[:0], rep.id, e)
		c.srv.metrics.requestError(rep.typ, e.Code)
		return
	}
	c.srv.metrics.requestOK(rep.typ)
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = protocol.AppendString(b, s)
	}
	return append(b, ']')
}

// appendValues appends col's KV entries (those whose key keep accepts; nil: all) as JSON
// members. Past max bytes it stops appending: the caller refuses the reply as too large
// (handle), so the copy stays near the limit however many values there are.
func appendValues(b []byte, e *engine.Store, col string, keep func(string) bool, max int64) []byte {
	first := true
	e.Values(col, keep, func(k, v string) {
		if int64(len(b)) > max {
			return
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = protocol.AppendString(b, k)
		b = append(b, ':')
		b = protocol.AppendString(b, v)
	})
	return b
}

// keys serves the `keys` management message (PROTOCOL.md §3), master key only.
func (c *conn) keys(r *protocol.Request, out *[]byte) (db.Commit, *protocol.Error) {
	if !c.key.Master {
		if c.key.Scope() < auth.ScopeReadWriteDelete {
			return 0, protocol.ErrPermissionDenied
		}
		return 0, protocol.ErrOnlyMaster
	}
	k, e := protocol.DecodeKeys(r.Data)
	if e != nil {
		return 0, e
	}
	d := c.srv.db
	b := protocol.AppendReplyStart(*out, r.ID)
	switch k.Action {
	case "add":
		scope, ok := auth.ParseScope(k.Scope)
		if !ok {
			return 0, protocol.ErrInvalidScope
		}
		if k.Key == "" {
			return 0, protocol.ErrEmptyAPIKey
		}
		var commit db.Commit
		if d.Keys.IsMaster(k.Key) {
			// Nothing to store: the master key's scope is fixed. Asking for that very scope
			// is a no-op that succeeds; anything less is refused rather than ignored.
			if scope != auth.ScopeReadWriteDelete {
				return 0, &protocol.Error{Code: protocol.CodeForbidden, Text: "the master key always has read_write_delete and cannot be re-scoped"}
			}
		} else {
			var err error
			h := auth.HashKey(k.Key)
			if commit, err = d.PutKey(h, auth.Hint(k.Key), scope); err != nil {
				return 0, unavailable(err)
			}
			// An audit trail of key changes: which key (by id, never the secret), what scope,
			// and (in the connection's attributes) who asked.
			c.log.Info("API key added or re-scoped", "added_key_id", h.ID(), "scope", scope.String())
		}
		b = append(b, `,"status":"ok","scope":`...)
		b = protocol.AppendString(b, scope.String())
		*out = append(b, '}')
		return commit, nil
	case "remove":
		// An empty key is simply not found, as in the original server: the contract's texts
		// for remove are "api key not found" and "api key cannot be removed".
		if d.Keys.IsMaster(k.Key) {
			return 0, protocol.ErrKeyNotRemovable
		}
		h := auth.HashKey(k.Key)
		if !d.Keys.Has(h) {
			return 0, protocol.ErrKeyNotFound
		}
		found, commit, err := d.RemoveKey(h)
		if err != nil {
			return 0, unavailable(err)
		}
		if !found { // removed concurrently by another request
			return 0, protocol.ErrKeyNotFound
		}
		c.log.Info("API key removed", "removed_key_id", h.ID())
		*out = append(b, `,"status":"ok"}`...)
		return commit, nil
	case "list":
		b = append(b, `,"status":"ok","keys":[`...)
		for i, row := range d.Keys.List() {
			if i > 0 {
				b = append(b, ',')
			}
			shown := row.Hint + "…" + row.ID
			if !row.Deletable {
				shown = "master"
			}
			b = append(b, `{"key":`...)
			b = protocol.AppendString(b, shown)
			b = append(b, `,"id":`...)
			b = protocol.AppendString(b, row.ID)
			b = append(b, `,"scope":`...)
			b = protocol.AppendString(b, row.Scope.String())
			b = append(b, `,"deletable":`...)
			b = strconv.AppendBool(b, row.Deletable)
			b = append(b, '}')
		}
		*out = append(b, "]}"...)
		return 0, nil
	}
	return 0, protocol.ErrUnknownAction
}

// sizeText writes a byte limit the way an operator set it: "256 MiB", "64 KiB", "300 bytes".
func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
