package content

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"testing"
)

const benchSize = 64 << 20

// benchData returns 64 MiB of random bytes whose first 8 bytes are i, so
// every iteration writes new content (otherwise Commit would deduplicate).
func benchData(b *testing.B, buf []byte, i int) []byte {
	if buf == nil {
		buf = randBytes(b, benchSize)
	}
	binary.LittleEndian.PutUint64(buf, uint64(i))
	return buf
}

// BenchmarkWrite64MiB measures Put: temp file write, SHA-256, fsync,
// rename and directory fsync.
func BenchmarkWrite64MiB(b *testing.B) {
	s := newStore(b)
	var data []byte
	b.SetBytes(benchSize)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		data = benchData(b, data, i)
		b.StartTimer()
		blob, err := s.Put(context.Background(), bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Unpin(blob.Hash)
		if ok, err := s.Release(context.Background(), refMap{}, blob.Hash); !ok || err != nil {
			b.Fatalf("Release = %v, %v", ok, err)
		}
		b.StartTimer()
	}
}

// BenchmarkBaselineWrite64MiB writes the same bytes through the same buffer
// size into a plain file and fsyncs it: the floor Put is compared against.
func BenchmarkBaselineWrite64MiB(b *testing.B) {
	dir := b.TempDir()
	var data []byte
	buf := make([]byte, copyBufSize)
	b.SetBytes(benchSize)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		data = benchData(b, data, i)
		b.StartTimer()
		f, err := os.CreateTemp(dir, "baseline-*")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(struct{ io.Writer }{f}, struct{ io.Reader }{bytes.NewReader(data)}, buf); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.Remove(f.Name())
		b.StartTimer()
	}
}

// BenchmarkGet64MiB measures what a GET costs the store: Open and a
// sequential read of a 64 MiB object through a 32 KiB buffer (what
// net/http copies a response body with), verification included.
func BenchmarkGet64MiB(b *testing.B) {
	s := newStore(b)
	blob, err := s.Put(context.Background(), bytes.NewReader(randBytes(b, benchSize)))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 32<<10)
	b.SetBytes(benchSize)
	for b.Loop() {
		f, err := s.Open(blob.Hash)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, struct{ io.Reader }{f}, buf)
		if err != nil || n != benchSize {
			b.Fatalf("read %d bytes, %v", n, err)
		}
		f.Close()
	}
}

// BenchmarkGetRange measures a Range GET: Open, a seek into the middle
// of a 64 MiB object and a 64 KiB read.
func BenchmarkGetRange(b *testing.B) {
	s := newStore(b)
	blob, err := s.Put(context.Background(), bytes.NewReader(randBytes(b, benchSize)))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	for i := 0; b.Loop(); i++ {
		f, err := s.Open(blob.Hash)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Seek(int64(i%1000)*(benchSize/1000), io.SeekStart); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(f, buf); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
