//go:build linux

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// mountTmpfs mounts a tmpfs of the given size (mount(8) syntax, e.g. "400k") on a new folder
// and unmounts it when the test ends. It skips the test when mounting is not allowed (the CI
// runs the tests as root; elsewhere they may not be).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (the test needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	return dir
}

// remount changes the options of a tmpfs mounted by mountTmpfs, e.g. "size=8m" or "ro".
func remount(t *testing.T, dir, opts string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,"+opts, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s %s: %v: %s", dir, opts, err, out)
	}
}

// checkStoreValid runs verify on the store: no problem may be found.
func checkStoreValid(t *testing.T, st *store.Store) {
	t.Helper()
	rep, err := verifyStore(st, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.problems) > 0 {
		var b bytes.Buffer
		rep.print(&b)
		t.Errorf("the store is not valid:\n%s", b.String())
	}
}

// TestDiskFull trains a tiny run on a store too small for it: the run fails with "no space left
// on device" naming the file it could not write, the store stays valid, and once there is room
// the same run completes.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("trains tiny models with libtorch; skipped with -short")
	}
	cases := []struct {
		name, size string
		file       string // the file named in the error
	}{
		// forward.png (about 56 kB) is the first sizeable file a run writes, through durable.Write.
		{name: "picture", size: "40k", file: "forward.png"},
		// The first checkpoint (about 300 kB) does not fit: libtorch would abort, so the
		// checkpoint writer checks the free space first.
		{name: "checkpoint", size: "400k", file: "checkpoints/ckpt-000000003.ckpt/tensors.ot"},
	}
	cfgPath := killConfig(t, t.TempDir())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			disk := mountTmpfs(t, tc.size)
			st, hash := newKillRun(t, filepath.Join(disk, "store"), cfgPath)
			code, stderr := runChild(t, st, hash)
			if code != 1 || !strings.Contains(stderr, "no space left on device") || !strings.Contains(stderr, st.Path(hash, tc.file)) {
				t.Fatalf("on a full disk: exit %d, want 1 and \"no space left on device\" naming %s:\n%s", code, tc.file, stderr)
			}
			s, err := st.ReadStatus(hash)
			if err != nil || s.State != store.Failed || !strings.Contains(s.Reason, "no space left") {
				t.Errorf("status %+v (%v), want failed with the reason", s, err)
			}
			checkStoreValid(t, st)

			remount(t, disk, "size=16m")
			if code, stderr := runChild(t, st, hash); code != 0 {
				t.Fatalf("after freeing space: exit %d\n%s", code, stderr)
			}
			if s, err := st.ReadStatus(hash); err != nil || s.State != store.Done {
				t.Errorf("after freeing space: status %+v (%v), want done", s, err)
			}
			checkStoreValid(t, st)
		})
	}
}

// TestReadOnlyStore: on a store mounted read-only, creating a run and training an existing one
// both fail at once with "read-only file system" naming the file.
func TestReadOnlyStore(t *testing.T) {
	disk := mountTmpfs(t, "1m")
	dir := t.TempDir()
	cfgPath := killConfig(t, dir)
	st, hash := newKillRun(t, filepath.Join(disk, "store"), cfgPath)
	remount(t, disk, "ro")

	code, stderr := runChild(t, st, hash)
	if code != 1 || !strings.Contains(stderr, "read-only file system") || !strings.Contains(stderr, st.Path(hash, store.LockFile)) {
		t.Errorf("_run-one on a read-only store: exit %d, want 1 and \"read-only file system\" naming the lock file:\n%s", code, stderr)
	}
	other := filepath.Join(dir, "other.toml")
	if err := os.WriteFile(other, []byte("seed = 99\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := run(t, dir, "run", other, "--store", st.Root)
	if res.code != 1 || !strings.Contains(res.stderr, "read-only file system") || !strings.Contains(res.stderr, st.Root) {
		t.Errorf("run on a read-only store: want exit 1 and \"read-only file system\" naming the store, got %s", res)
	}
	if s, err := st.ReadStatus(hash); err != nil || s.State != store.Pending {
		t.Errorf("status %+v (%v), want pending, untouched", s, err)
	}
}
