package data

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// realSubset is the 10,000-image MNIST subset shared by the project
// (/work/shared/data/mnist-10k), relative to this package's folder.
const realSubset = "../../../shared/data/mnist-10k"

// fakeFiles returns the four files of a tiny dataset of 2x3 images:
// nTrain training and nTest test images, labels i%10, as gzip when gzipped.
func fakeFiles(t testing.TB, nTrain, nTest int, gzipped bool) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, s := range []struct {
		split Split
		n     int
	}{{Train, nTrain}, {Test, nTest}} {
		img, lbl, _ := fileNames(s.split)
		labels := make([]byte, s.n)
		for i := range labels {
			labels[i] = byte(i % 10)
		}
		files[img] = idx(imagesMagic, []uint32{uint32(s.n), 2, 3}, ramp(s.n*6))
		files[lbl] = idx(labelsMagic, []uint32{uint32(s.n)}, labels)
	}
	if gzipped {
		for base, b := range files {
			delete(files, base)
			files[base+".gz"] = gz(t, b)
		}
	}
	return files
}

// writeFiles writes files into dir and returns dir.
func writeFiles(t testing.TB, dir string, files map[string][]byte) string {
	t.Helper()
	for name, b := range files {
		writeFile(t, filepath.Join(dir, name), b)
	}
	return dir
}

func TestLoadRealSubset(t *testing.T) {
	if _, err := os.Stat(realSubset); err != nil {
		t.Skipf("the shared MNIST subset is not here (%v); it lives in /work/shared/data/mnist-10k", err)
	}
	for _, tt := range []struct {
		split Split
		n     int
	}{{Train, 9003}, {Test, 997}} {
		t.Run(string(tt.split), func(t *testing.T) {
			s, err := Load("mnist", realSubset, tt.split)
			if err != nil {
				t.Fatal(err)
			}
			if s.N != tt.n || s.Height != 28 || s.Width != 28 || len(s.Images) != tt.n*28*28 || len(s.Labels) != tt.n {
				t.Fatalf("N=%d %dx%d, %d pixels, %d labels; want N=%d 28x28", s.N, s.Height, s.Width, len(s.Images), len(s.Labels), tt.n)
			}
			if s.Name != "mnist" || s.Split != tt.split || s.Dir != realSubset {
				t.Errorf("Name, Split, Dir = %q, %q, %q", s.Name, s.Split, s.Dir)
			}
			lo, hi := s.Images[0], s.Images[0]
			for _, v := range s.Images {
				lo, hi = min(lo, v), max(hi, v)
			}
			if lo != -1 || hi != 1 {
				t.Errorf("pixels span [%v, %v]; want exactly [-1, 1]", lo, hi)
			}
			var perClass [10]int
			for _, y := range s.Labels {
				perClass[y]++ // Load guarantees y < 10
			}
			for c, k := range perClass {
				if k < tt.n/20 {
					t.Errorf("class %d has %d images of %d", c, k, tt.n)
				}
			}
		})
	}
}

func TestLoadSynthetic(t *testing.T) {
	for _, gzipped := range []bool{false, true} {
		dir := writeFiles(t, t.TempDir(), fakeFiles(t, 12, 5, gzipped))
		for _, tt := range []struct {
			split Split
			n     int
		}{{Train, 12}, {Test, 5}} {
			name := string(tt.split)
			if gzipped {
				name += " gz"
			}
			t.Run(name, func(t *testing.T) {
				s, err := Load("fashion_mnist", dir, tt.split)
				if err != nil {
					t.Fatal(err)
				}
				if s.N != tt.n || s.Height != 2 || s.Width != 3 {
					t.Fatalf("N=%d %dx%d; want %d 2x3", s.N, s.Height, s.Width, tt.n)
				}
				// Pixel i is byte(i): 0 -> -1, 255 -> 1, k -> k/127.5-1.
				for i, v := range s.Images {
					if want := float32(byte(i))/127.5 - 1; v != want {
						t.Fatalf("Images[%d] = %v; want %v", i, v, want)
					}
				}
				if got := s.Image(1); len(got) != 6 || got[0] != s.Images[6] {
					t.Errorf("Image(1) = %v; want Images[6:12]", got)
				}
				if s.Labels[tt.n-1] != byte((tt.n-1)%10) {
					t.Errorf("last label = %d", s.Labels[tt.n-1])
				}
			})
		}
	}
}

func TestLoadErrors(t *testing.T) {
	img, lbl, _ := fileNames(Train)
	tests := []struct {
		name   string
		change func(files map[string][]byte)
		dsName string
		split  Split
		want   []string // substrings of the error
	}{
		{name: "count mismatch", change: func(f map[string][]byte) {
			f[lbl] = idx(labelsMagic, []uint32{11}, make([]byte, 11))
		}, want: []string{img + " has 12 images but ", lbl + " has 11 labels"}},
		{name: "label out of range", change: func(f map[string][]byte) {
			labels := make([]byte, 12)
			labels[7] = 10
			f[lbl] = idx(labelsMagic, []uint32{12}, labels)
		}, want: []string{lbl + ": label 10 of image 7 is out of range: mnist has classes 0..9"}},
		{name: "truncated images", change: func(f map[string][]byte) {
			f[img] = f[img][:40]
		}, want: []string{img + ": truncated: header says 12 images of 2x3 (88 bytes) but the file has 40 bytes"}},
		{name: "missing file", change: func(f map[string][]byte) {
			delete(f, lbl)
		}, want: []string{"dataset mnist not found", "missing train-labels-idx1-ubyte (.gz or raw)", "to get it: "}},
		{name: "unknown dataset", dsName: "cifar", want: []string{`unknown dataset "cifar"`, "mnist", "fashion_mnist"}},
		{name: "unknown split", split: "validation", want: []string{`unknown split "validation"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := fakeFiles(t, 12, 5, false)
			if tt.change != nil {
				tt.change(files)
			}
			dir := writeFiles(t, t.TempDir(), files)
			name, split := "mnist", Train
			if tt.dsName != "" {
				name = tt.dsName
			}
			if tt.split != "" {
				split = tt.split
			}
			s, err := Load(name, dir, split)
			if err == nil {
				t.Fatalf("no error; got %d images", s.N)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %q\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestLocateOrder(t *testing.T) {
	root := t.TempDir()
	dataRoot := filepath.Join(root, "data")
	cacheRoot := filepath.Join(root, "cache")
	home := filepath.Join(root, "home")
	system := filepath.Join(root, "system")
	full := func(dir string) string { return writeFiles(t, dir, fakeFiles(t, 1, 1, true)) }

	// Each place in search order, for fashion_mnist.
	explicit := full(filepath.Join(root, "explicit"))
	nested := full(filepath.Join(root, "nested", "fashion_mnist"))
	inData := full(filepath.Join(dataRoot, "fashion_mnist"))
	inCache := full(filepath.Join(cacheRoot, "data", "fashion_mnist"))
	inHome := full(filepath.Join(home, ".cache", "ddpmlab", "data", "fashion_mnist"))
	inSystem := full(filepath.Join(system, "fashion-mnist"))
	partial := writeFiles(t, filepath.Join(root, "partial"), map[string][]byte{"train-images-idx3-ubyte": {1}})

	tests := []struct {
		name string
		dir  string
		env  map[string]string
		want string
		err  []string // substrings of the error, if one is expected
	}{
		{name: "explicit dir wins", dir: explicit, env: map[string]string{"DDPMLAB_DATA": dataRoot}, want: explicit},
		{name: "explicit dir holding <name>/", dir: filepath.Join(root, "nested"), want: nested},
		{name: "explicit dir missing files searches nothing else", dir: partial,
			env: map[string]string{"DDPMLAB_DATA": dataRoot},
			err: []string{partial + ": missing train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (.gz or raw)"}},
		{name: "DDPMLAB_DATA before cache", env: map[string]string{"DDPMLAB_DATA": dataRoot, "DDPMLAB_CACHE": cacheRoot}, want: inData},
		{name: "DDPMLAB_CACHE before HOME", env: map[string]string{"DDPMLAB_CACHE": cacheRoot, "HOME": home}, want: inCache},
		{name: "HOME cache", env: map[string]string{"DDPMLAB_DATA": filepath.Join(root, "empty"), "HOME": home}, want: inHome},
		{name: "system datasets folder", env: map[string]string{"HOME": filepath.Join(root, "nohome")}, want: inSystem},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := func(k string) string { return tt.env[k] }
			l := locator{getenv: env, lookup: lookup, systemRoot: system}
			got, err := l.locate("fashion_mnist", tt.dir)
			if tt.err != nil {
				if err == nil {
					t.Fatalf("found %s; want an error", got)
				}
				for _, w := range tt.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error = %q\nwant it to contain %q", err, w)
					}
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("locate = %q, %v; want %q", got, err, tt.want)
			}
		})
	}

	t.Run("nothing found lists every place", func(t *testing.T) {
		env := map[string]string{"DDPMLAB_DATA": filepath.Join(root, "d2"), "HOME": filepath.Join(root, "h2")}
		l := locator{getenv: func(k string) string { return env[k] }, lookup: lookup, systemRoot: filepath.Join(root, "s2")}
		_, err := l.locate("fashion_mnist", "")
		var nf *NotFoundError
		if !errors.As(err, &nf) {
			t.Fatalf("error = %v; want a *NotFoundError", err)
		}
		for _, w := range []string{
			filepath.Join(root, "d2", "fashion_mnist") + ": no such folder",
			filepath.Join(root, "h2", ".cache", "ddpmlab", "data", "fashion_mnist") + ": no such folder",
			filepath.Join(root, "s2", "fashion-mnist") + ": no such folder",
			"apt-get install dataset-fashion-mnist",
		} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error = %q\nwant it to contain %q", err, w)
			}
		}
	})
}

// TestLocateEnv checks the exported Locate, which reads the real
// environment.
func TestLocateEnv(t *testing.T) {
	root := t.TempDir()
	inData := writeFiles(t, filepath.Join(root, "data", "mnist"), fakeFiles(t, 1, 1, false))
	inCache := writeFiles(t, filepath.Join(root, "cache", "data", "mnist"), fakeFiles(t, 1, 1, false))

	t.Setenv("DDPMLAB_DATA", filepath.Join(root, "data"))
	t.Setenv("DDPMLAB_CACHE", filepath.Join(root, "cache"))
	if got, err := Locate("mnist", ""); err != nil || got != inData {
		t.Errorf("Locate with DDPMLAB_DATA = %q, %v; want %q", got, err, inData)
	}
	t.Setenv("DDPMLAB_DATA", "")
	if got, err := Locate("mnist", ""); err != nil || got != inCache {
		t.Errorf("Locate with DDPMLAB_CACHE = %q, %v; want %q", got, err, inCache)
	}
}

func TestLoadWithoutData(t *testing.T) {
	// No download: the error says where it looked and how to get the data.
	root := t.TempDir()
	l := locator{getenv: func(k string) string { return map[string]string{"HOME": root}[k] },
		lookup: lookup, systemRoot: filepath.Join(root, "sys")}
	_, err := l.load(context.Background(), "mnist", "", Train)
	if err == nil || !strings.Contains(err.Error(), "runner data download mnist") ||
		!strings.Contains(err.Error(), filepath.Join(root, ".cache", "ddpmlab", "data", "mnist")) {
		t.Errorf("error = %v", err)
	}
}
