package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// idx builds the bytes of an unsigned-byte IDX file: magic, dims, body.
func idx(magic uint32, dims []uint32, body []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, magic)
	binary.Write(&b, binary.BigEndian, dims)
	b.Write(body)
	return b.Bytes()
}

func gz(t testing.TB, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func writeFile(t testing.TB, path string, b []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// ramp returns n bytes 0, 1, 2, … (mod 256).
func ramp(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func TestReadImages(t *testing.T) {
	const n, rows, cols = 4, 3, 5 // not 28x28: any consistent size is fine
	raw := idx(imagesMagic, []uint32{n, rows, cols}, ramp(n*rows*cols))
	dir := t.TempDir()
	tests := []struct {
		name string
		file string
		body []byte
	}{
		{name: "raw", file: "raw-idx3", body: raw},
		{name: "gzip", file: "gz-idx3.gz", body: gz(t, raw)},
		{name: "gzip without .gz suffix", file: "gz-idx3", body: gz(t, raw)},
		{name: "raw with .gz suffix", file: "raw-idx3.gz", body: raw},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, filepath.Join(dir, tt.name, tt.file), tt.body)
			pix, gotN, gotRows, gotCols, err := ReadImages(path)
			if err != nil {
				t.Fatal(err)
			}
			if gotN != n || gotRows != rows || gotCols != cols {
				t.Errorf("shape = %d, %dx%d; want %d, %dx%d", gotN, gotRows, gotCols, n, rows, cols)
			}
			if !bytes.Equal(pix, ramp(n*rows*cols)) {
				t.Errorf("pixels = %v; want 0, 1, 2, …", pix)
			}
		})
	}
}

func TestReadLabels(t *testing.T) {
	want := []byte{3, 1, 4, 1, 5, 9}
	raw := idx(labelsMagic, []uint32{uint32(len(want))}, want)
	for _, tt := range []struct {
		name string
		body []byte
	}{
		{name: "raw", body: raw},
		{name: "gzip", body: gz(t, raw)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, filepath.Join(t.TempDir(), "labels"), tt.body)
			got, err := ReadLabels(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("labels = %v; want %v", got, want)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	goodImages := idx(imagesMagic, []uint32{10, 28, 28}, ramp(10*28*28))
	tests := []struct {
		name   string
		labels bool // read with ReadLabels, else ReadImages
		body   []byte
		want   string // substring of the error, after the path
	}{
		{name: "empty", body: nil, want: "empty file"},
		{name: "empty labels", labels: true, body: nil, want: "empty file"},
		{name: "short header", body: []byte{0, 0, 8, 3, 0, 0}, want: "too short for an IDX image header: the file has 6 bytes, want at least 16"},
		{name: "short header gz", body: gz(t, []byte{0, 0, 8, 3, 0, 0}), want: "too short for an IDX image header: it decompresses to 6 bytes"},
		{name: "labels read as images", body: idx(labelsMagic, []uint32{3}, []byte{1, 2, 3}),
			want: "bad magic number 2049, want 2051 for an IDX image file (this looks like a label file)"},
		{name: "images read as labels", labels: true, body: goodImages,
			want: "bad magic number 2051, want 2049 for an IDX label file (this looks like an image file)"},
		{name: "garbage magic", body: []byte("hello, world, this is text"), want: "bad magic number"},
		{name: "truncated images", body: goodImages[:1200],
			want: "truncated: header says 10 images of 28x28 (7856 bytes) but the file has 1200 bytes"},
		{name: "truncated images gz", body: gz(t, goodImages[:1200]),
			want: "truncated: header says 10 images of 28x28 (7856 bytes) but it decompresses to 1200 bytes"},
		{name: "truncated labels", labels: true, body: idx(labelsMagic, []uint32{9003}, ramp(500)),
			want: "truncated: header says 9003 labels (9011 bytes) but the file has 508 bytes"},
		{name: "truncated labels gz", labels: true, body: gz(t, idx(labelsMagic, []uint32{9003}, ramp(500))),
			want: "truncated: header says 9003 labels (9011 bytes) but it decompresses to 508 bytes"},
		{name: "absurd count", body: idx(imagesMagic, []uint32{0xFFFFFFFF, 28, 28}, ramp(100)),
			want: "truncated: header says 4294967295 images of 28x28 (3367254359296 bytes) but the file has 116 bytes"},
		{name: "absurd count gz", body: gz(t, idx(imagesMagic, []uint32{0xFFFFFFFF, 4096, 4096}, ramp(100))),
			want: "truncated: header says 4294967295 images of 4096x4096"},
		{name: "absurd side", body: idx(imagesMagic, []uint32{1, 28, 1 << 20}, nil),
			want: "header says images are 28x1048576; want sides between 1 and 4096"},
		{name: "zero rows", body: idx(imagesMagic, []uint32{1, 0, 28}, nil),
			want: "header says images are 0x28"},
		{name: "trailing bytes", body: append(idx(imagesMagic, []uint32{1, 2, 2}, ramp(4)), 7, 7),
			want: "2 trailing bytes: header says 1 images of 2x2 (20 bytes) but the file has 22 bytes"},
		{name: "corrupt gzip", body: gz(t, goodImages)[:200], want: "unexpected EOF"},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, filepath.Join(dir, string(rune('a'+i))+"-idx.gz"), tt.body)
			var err error
			if tt.labels {
				_, err = ReadLabels(path)
			} else {
				_, _, _, _, err = ReadImages(path)
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), path+": ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q\nwant %q followed by …%q…", err, path+": ", tt.want)
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(dir, "nope")
		_, err := ReadLabels(path)
		if err == nil || !strings.Contains(err.Error(), path) || !os.IsNotExist(err) {
			t.Errorf("error = %v; want a not-exist error naming %s", err, path)
		}
	})
}

// FuzzReadImages checks that no input makes the reader panic or return
// pixels inconsistent with the shape it reports.
func FuzzReadImages(f *testing.F) {
	f.Add(idx(imagesMagic, []uint32{2, 2, 2}, ramp(8)))
	f.Add(gz(f, idx(imagesMagic, []uint32{2, 2, 2}, ramp(8))))
	f.Add(idx(imagesMagic, []uint32{1 << 30, 28, 28}, ramp(8)))
	f.Add([]byte{0x1f, 0x8b})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "f")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		pix, n, rows, cols, err := ReadImages(path)
		if err == nil && len(pix) != n*rows*cols {
			t.Fatalf("len(pixels) = %d; want %d*%d*%d", len(pix), n, rows, cols)
		}
	})
}
