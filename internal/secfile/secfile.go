// Package secfile writes and reads files that hold secrets: created 0600
// with O_EXCL, refused when group- or world-accessible.
package secfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ErrPermissions is returned for a secret file that others may read.
var ErrPermissions = errors.New("secret file is accessible to group or others")

// ErrTooLarge is returned for a secret file longer than the caller allows.
var ErrTooLarge = errors.New("secret file is too large")

// WriteNew creates path with mode 0600 and writes data; it never overwrites.
func WriteNew(path string, data []byte) error { return WriteNewMode(path, data, 0o600) }

// WriteNewMode is WriteNew for a file of another mode (a public file that
// must not be overwritten either): created, written, synced, or removed.
func WriteNewMode(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// Read returns the contents of a secret file after checking its mode.
func Read(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: mode %04o: %w (chmod 600 it)", path, st.Mode().Perm(), ErrPermissions)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: %w (limit %d bytes)", path, ErrTooLarge, max)
	}
	return data, nil
}

// Replace writes data to path with mode 0600, atomically and durably: a new
// file in the same directory, synced, renamed over path, and the directory
// synced so the rename survives a crash. A reader sees the old contents or
// the new, never a mix.
func Replace(path string, data []byte) error {
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	os.Remove(tmp) // a leftover of a killed run
	if err := WriteNew(tmp, data); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
