package server

import (
	"context"

	"github.com/volandoo/fluxiondb/internal/db"
)

// SetWait replaces the server's wait for durability (db.Wait) with f.
func SetWait(s *Server, f func(context.Context, db.Commit) error) { s.wait = f }
