// Package atomicfile writes files so that readers see the old content or the new, never a
// part: the data goes to a temporary file in the same folder, which is synced and renamed over
// the target. ddpm/data (downloads) and ddpm/viz (pictures) use it.
package atomicfile

import (
	"io"
	"os"
	"path/filepath"
)

// Write writes path through write: into a temporary file in the same
// folder, which is synced and renamed over path only if write succeeds; the
// folder is then synced. On any error the temporary file is removed and
// path is untouched.
func Write(path string, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = write(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync() // best effort: not every file system syncs folders
		d.Close()
	}
	return nil
}
