package data

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// mirror is an httptest server serving files under /ds/ and counting the
// requests for each path.
type mirror struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newMirror(t *testing.T, files map[string][]byte) *mirror {
	m := &mirror{hits: map[string]int{}}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		m.hits[r.URL.Path]++
		m.mu.Unlock()
		b, ok := files[strings.TrimPrefix(r.URL.Path, "/ds/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(m.Close)
	return m
}

func (m *mirror) requests() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, k := range m.hits {
		n += k
	}
	return n
}

// fakeDataset describes a dataset named "mnist" (so Load accepts its
// labels) served from the given mirrors, with the MD5s of files.
func fakeDataset(files map[string][]byte, mirrors ...string) dataset {
	d, _ := lookup("mnist")
	d.mirrors = mirrors
	d.md5 = map[string]string{}
	for name, b := range files {
		sum := md5.Sum(b)
		d.md5[name] = hex.EncodeToString(sum[:])
	}
	return d
}

// tempFiles lists the leftover temporary files in dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, ".*.tmp*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDownload(t *testing.T) {
	files := fakeFiles(t, 12, 5, true)
	good := newMirror(t, files)
	down := newMirror(t, nil) // 404 for everything
	corrupt := map[string][]byte{}
	for name, b := range files {
		corrupt[name] = append(bytes.Clone(b), 0)
	}
	bad := newMirror(t, corrupt)

	tests := []struct {
		name    string
		mirrors []string
		wantErr []string // substrings; nil means success
	}{
		{name: "one mirror", mirrors: []string{good.URL + "/ds/"}},
		{name: "falls back to second mirror", mirrors: []string{down.URL + "/ds/", good.URL + "/ds/"}},
		{name: "corrupt then good", mirrors: []string{bad.URL + "/ds/", good.URL + "/ds/"}},
		{name: "checksum mismatch", mirrors: []string{bad.URL + "/ds/"},
			wantErr: []string{"failed from every mirror", "train-images-idx3-ubyte.gz: md5 "}},
		{name: "all mirrors down", mirrors: []string{down.URL + "/ds/"},
			wantErr: []string{"HTTP 404 Not Found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "mnist")
			var progress bytes.Buffer
			err := newDownloader().fetch(context.Background(), fakeDataset(files, tt.mirrors...), dest, &progress)
			if leftovers := tempFiles(t, dest); len(leftovers) > 0 {
				t.Errorf("temporary files left: %v", leftovers)
			}
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error = %q\nwant it to contain %q", err, w)
					}
				}
				if tt.name == "checksum mismatch" {
					var ce *ChecksumError
					if !errors.As(err, &ce) || ce.Want != fakeDataset(files).md5["train-images-idx3-ubyte.gz"] {
						t.Errorf("error %v does not wrap the expected *ChecksumError", err)
					}
				}
				if _, err := os.Stat(filepath.Join(dest, "train-images-idx3-ubyte.gz")); !os.IsNotExist(err) {
					t.Errorf("a file that failed its checksum was kept (stat: %v)", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range files {
				got, err := os.ReadFile(filepath.Join(dest, name))
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s: %d bytes, %v; want the served %d bytes", name, len(got), err, len(want))
				}
			}
			if !strings.Contains(progress.String(), "t10k-labels-idx1-ubyte.gz") || !strings.Contains(progress.String(), "md5 ok") {
				t.Errorf("progress = %q", progress.String())
			}
		})
	}

	t.Run("keeps files already present", func(t *testing.T) {
		dest := writeFiles(t, t.TempDir(), files)
		srv := newMirror(t, files)
		if err := newDownloader().fetch(context.Background(), fakeDataset(files, srv.URL+"/ds/"), dest, nil); err != nil {
			t.Fatal(err)
		}
		if n := srv.requests(); n != 0 {
			t.Errorf("%d requests; want 0", n)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := newDownloader().fetch(ctx, fakeDataset(files, good.URL+"/ds/"), t.TempDir(), nil)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error = %v; want context.Canceled", err)
		}
	})
}

// TestLoadDownloads checks that Load falls back to downloading into the
// cache folder when no folder holds the dataset.
func TestLoadDownloads(t *testing.T) {
	files := fakeFiles(t, 12, 5, true)
	srv := newMirror(t, files)
	cache := t.TempDir()
	l := locator{
		getenv:     func(k string) string { return map[string]string{"DDPMLAB_CACHE": cache}[k] },
		lookup:     func(string) (dataset, error) { return fakeDataset(files, srv.URL+"/ds/"), nil },
		systemRoot: t.TempDir(),
		download:   newDownloader(),
	}
	s, err := l.load(context.Background(), "mnist", "", Test)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cache, "data", "mnist"); s.N != 5 || s.Dir != want {
		t.Errorf("N = %d, Dir = %q; want 5, %q", s.N, s.Dir, want)
	}

	// With the mirror gone, the not-found error says why it did not download.
	srv.Close()
	l.getenv = func(k string) string { return map[string]string{"DDPMLAB_CACHE": t.TempDir()}[k] }
	_, err = l.load(context.Background(), "mnist", "", Test)
	var nf *NotFoundError
	if !errors.As(err, &nf) || nf.Download == nil || !strings.Contains(err.Error(), "network unreachable") {
		t.Errorf("error = %v; want a *NotFoundError saying the network is unreachable", err)
	}
}
