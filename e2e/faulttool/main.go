// Command faulttool damages a dfs node's content store for the fault suite
// (TestFaults, docs/faults.md), and delays its Redis traffic. The dfs
// image has no shell, so the suite builds this statically, copies it into
// a node's containers (docker cp) and runs it there (docker exec), as the
// container's user:
//
//	faulttool ls DIR           every regular file under DIR: its path relative to DIR and its size, one a line
//	faulttool rm FILE...       delete the files
//	faulttool flip FILE...     invert the byte in the middle of each file (its size unchanged)
//	faulttool truncate FILE... cut each file to half its size
//	faulttool sha256 FILE...   "<hex> FILE" for each file
//	faulttool proxy LISTEN UPSTREAM CTLFILE
//	                           forward TCP connections from LISTEN to UPSTREAM, each
//	                           direction delayed as CTLFILE says (read every 100 ms)
//	faulttool delay CTLFILE MS JITTER
//	                           set the proxy's delay: MS milliseconds each way, plus
//	                           or minus up to JITTER (0 0: none)
//
// The file commands print "missing FILE" for a file that does not exist
// (garbage collection may remove one at any time) and carry on.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: faulttool ls DIR | rm|flip|truncate|sha256 FILE...")
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "ls":
		err = list(args[0])
	case "proxy":
		if len(args) != 3 {
			err = errors.New("usage: faulttool proxy LISTEN UPSTREAM CTLFILE")
			break
		}
		err = proxy(args[0], args[1], args[2])
	case "delay":
		if len(args) != 3 {
			err = errors.New("usage: faulttool delay CTLFILE MS JITTER")
			break
		}
		err = setDelay(args[0], args[1], args[2])
	case "rm", "flip", "truncate", "sha256":
		for _, f := range args {
			err = errors.Join(err, each(cmd, f))
		}
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "faulttool:", err)
		os.Exit(1)
	}
}

func list(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking (garbage collection)
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		fmt.Printf("%s %d\n", rel, info.Size())
		return nil
	})
}

func each(cmd, file string) error {
	err := apply(cmd, file)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Printf("missing %s\n", file)
		return nil
	}
	if err == nil && cmd != "sha256" {
		fmt.Printf("done %s\n", file)
	}
	return err
}

func apply(cmd, file string) error {
	switch cmd {
	case "rm":
		return os.Remove(file)
	case "sha256":
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		fmt.Printf("%s %s\n", hex.EncodeToString(h.Sum(nil)), file)
		return nil
	}
	// flip and truncate write to the file: objects may be read-only.
	info, err := os.Stat(file)
	if err != nil {
		return err
	}
	if err := os.Chmod(file, info.Mode().Perm()|0o200); err != nil {
		return err
	}
	defer os.Chmod(file, info.Mode().Perm())
	if cmd == "truncate" {
		return os.Truncate(file, info.Size()/2)
	}
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, 1)
	at := info.Size() / 2
	if _, err := f.ReadAt(b, at); err != nil {
		return err
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, at); err != nil {
		return err
	}
	return f.Sync()
}
