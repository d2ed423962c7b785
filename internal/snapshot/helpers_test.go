package snapshot

import "github.com/volandoo/fluxiondb/internal/wal"

func appendFrameT(dst, p []byte) []byte { return wal.AppendFrame(dst, p) }
