package protocol

import "testing"

func naivePlainRun(b []byte) int {
	for i, c := range b {
		if c == '"' || c == '\\' || c < 0x20 {
			return i
		}
	}
	return len(b)
}

func FuzzPlainRun(f *testing.F) {
	for _, s := range []string{"", "abc", `abcdefgh"`, "abcdefghij\\k", "\x1f", "\x7f\x80\xff\"", "0123456789abcdef\n", "ééééééé\"", "\x20\x21\x5b\x5d\x5c"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for off := 0; off < len(b) && off < 9; off++ {
			if got, want := plainRun(b[off:]), naivePlainRun(b[off:]); got != want {
				t.Fatalf("plainRun(%q) = %d, want %d", b[off:], got, want)
			}
		}
	})
}
