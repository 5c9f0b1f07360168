package auth

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/rs/zerolog"
)

// readIfChanged reads the file at path unless a stat of the path shows the
// file prev described, unchanged (the path, not an open descriptor, is
// checked: a Kubernetes Secret update swaps a symlink). It returns the
// content and the stat it belongs to; b is nil when nothing changed. A file
// written in place while it was read is an error: the next check takes it,
// once the writer is done.
func readIfChanged(path string, prev os.FileInfo) (b []byte, st os.FileInfo, err error) {
	before, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if prev != nil && sameStat(prev, before) {
		return nil, prev, nil
	}
	if b, err = os.ReadFile(path); err != nil {
		return nil, nil, err
	}
	after, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if !sameStat(before, after) {
		return nil, nil, errors.New("changed while being read; reading it again on the next check")
	}
	if b == nil {
		b = []byte{} // read, and empty: not "unchanged"
	}
	return b, after, nil
}

// sameStat reports whether two stats of the path show the same file
// unchanged: same inode (a rename or a symlink swap changes it), size and
// modification time.
func sameStat(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// watchFile calls reload every interval until ctx ends. A failure is
// logged once per distinct error, not every tick (failed says the last good
// state stays in force), and the recovery once (recovered).
func watchFile(ctx context.Context, interval time.Duration, log zerolog.Logger, reload func() (bool, error), failed, recovered string) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := reload()
		switch {
		case err != nil && err.Error() != lastErr:
			log.Error().Err(err).Msg(failed)
			lastErr = err.Error()
		case err == nil && lastErr != "":
			log.Info().Msg(recovered)
			lastErr = ""
		}
	}
}
