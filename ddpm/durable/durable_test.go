package durable

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// leftovers lists the temporary files and folders in dir.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var tmp []string
	for _, e := range entries {
		if IsTemp(e.Name()) {
			tmp = append(tmp, e.Name())
		}
	}
	return tmp
}

func TestDurableWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.json")
	for _, content := range []string{"first", "second, longer than the first", ""} {
		if err := WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("read back %q, %v; want %q", got, err, content)
		}
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if tmp := leftovers(t, dir); len(tmp) > 0 {
		t.Errorf("temporary files left behind: %v", tmp)
	}
}

func TestDurableWriteErrorLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	failing := errors.New("encoder failed")
	cases := []struct {
		name   string
		target string
		write  func(io.Writer) error
		want   error // nil: any error
	}{
		// Renaming a file over a non-empty folder fails after the temp file was written.
		{name: "over a folder", target: filepath.Join(dir, "sub"), write: func(w io.Writer) error { _, err := w.Write([]byte("new")); return err }},
		{name: "missing folder", target: filepath.Join(dir, "missing", "f"), write: func(io.Writer) error { return nil }, want: fs.ErrNotExist},
		{name: "writer fails", target: path, write: func(w io.Writer) error { w.Write([]byte("half")); return failing }, want: failing},
	}
	if err := os.MkdirAll(filepath.Join(dir, "sub", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Write(tc.target, 0o644, tc.write)
			if err == nil {
				t.Fatal("write succeeded")
			}
			if !strings.Contains(err.Error(), tc.target) {
				t.Errorf("error %q does not name the file", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v, want one wrapping %v", err, tc.want)
			}
		})
	}
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Errorf("after failed writes the file holds %q, want \"old\"", got)
	}
	if tmp := leftovers(t, dir); len(tmp) > 0 {
		t.Errorf("temporary files left behind: %v", tmp)
	}
}

func TestDurableWriteDir(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "ckpt")
	fill := func(content string) func(string) error {
		return func(tmp string) error {
			if err := os.WriteFile(filepath.Join(tmp, "a"), []byte(content), 0o644); err != nil {
				return err
			}
			return os.MkdirAll(filepath.Join(tmp, "sub"), 0o755)
		}
	}
	for _, content := range []string{"one", "two"} { // the second replaces the first
		if err := WriteDir(target, fill(content)); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(filepath.Join(target, "a")); err != nil || string(got) != content {
			t.Fatalf("a = %q, %v; want %q", got, err, content)
		}
	}
	// CreateDir keeps an existing folder.
	err := CreateDir(target, fill("three"))
	if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), target) {
		t.Errorf("CreateDir over an existing folder: %v; want fs.ErrExist naming it", err)
	}
	if got, _ := os.ReadFile(filepath.Join(target, "a")); string(got) != "two" {
		t.Errorf("CreateDir changed the existing folder: a = %q", got)
	}
	// A failing fill leaves the old folder.
	if err := WriteDir(target, func(string) error { return errors.New("boom") }); err == nil {
		t.Error("WriteDir with a failing fill succeeded")
	}
	if got, _ := os.ReadFile(filepath.Join(target, "a")); string(got) != "two" {
		t.Errorf("a failed WriteDir changed the folder: a = %q", got)
	}
	if err := CreateDir(filepath.Join(dir, "fresh"), fill("new")); err != nil {
		t.Fatal(err)
	}
	if tmp := leftovers(t, dir); len(tmp) > 0 {
		t.Errorf("temporary folders left behind: %v", tmp)
	}
}

func TestDurableIsTemp(t *testing.T) {
	for name, want := range map[string]bool{
		".f.json.tmp-123": true, ".lock.tmp-9": true, ".ckpt.tmp-abc": true,
		"f.json": false, ".hidden": false, "a.tmp-1": false, "": false,
	} {
		if got := IsTemp(name); got != want {
			t.Errorf("IsTemp(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestLockTryLock(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.lock")
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		won  []*Lock
		held int
	)
	for range 16 {
		wg.Go(func() {
			l, err := TryLock(path, "thing x")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, l)
			case IsAlreadyLocked(err):
				held++
				if !strings.Contains(err.Error(), "thing x") || !strings.Contains(err.Error(), path) {
					t.Errorf("error %q names neither the thing nor the file", err)
				}
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if len(won) != 1 || held != 15 {
		t.Fatalf("%d won, %d already locked; want 1 and 15", len(won), held)
	}
	if err := won[0].Unlock(); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadLock(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lock file still there after Unlock: %v", err)
	}
	if tmp := leftovers(t, dir); len(tmp) > 0 {
		t.Errorf("temporary files left behind: %v", tmp)
	}
}

func TestLockStaleAndBreak(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("true") // a process that has exited: its PID is dead
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run a process to get a dead pid: %v", err)
	}
	host, _ := os.Hostname()
	write := func(path string, info LockInfo) {
		b, _ := json.Marshal(info)
		if err := WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dead := LockInfo{Host: host, PID: cmd.Process.Pid, Time: time.Now().Add(-time.Hour).UTC()}
	cases := []struct {
		name      string
		info      LockInfo
		wantStale bool
	}{
		{name: "dead pid on this host", info: dead, wantStale: true},
		{name: "live pid on this host", info: LockInfo{Host: host, PID: os.Getpid(), Time: time.Now().UTC()}},
		{name: "other host", info: LockInfo{Host: "elsewhere.invalid", PID: 1, Time: time.Now().UTC()}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".lock")
			write(path, tc.info)
			l, err := TryLock(path, "x")
			if tc.wantStale {
				if err != nil || l.Stale == nil || !l.Stale.Equal(tc.info) {
					t.Fatalf("TryLock over a stale lock: %v, %+v; want it taken, Stale = %v", err, l, tc.info)
				}
				l.Unlock()
			} else if !IsAlreadyLocked(err) {
				t.Fatalf("TryLock over a live lock: %v; want AlreadyLockedError", err)
			}
			// BreakStale removes only the stale one.
			write(path, tc.info)
			broken, err := BreakStale(path)
			_, statErr := os.Stat(path)
			if err != nil || (broken != nil) != tc.wantStale || errors.Is(statErr, fs.ErrNotExist) != tc.wantStale {
				t.Errorf("BreakStale: %v, %v (file: %v); want broken = %v", broken, err, statErr, tc.wantStale)
			}
		})
	}
}
