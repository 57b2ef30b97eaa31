package data

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// cifarRecordBytes returns one record in the real format: label, then the
// R, G and B planes, with R = 0 everywhere, G = 255 everywhere and B(k) =
// (seed + k) mod 256 at pixel k, so each plane is told apart.
func cifarRecordBytes(label, seed byte) []byte {
	rec := make([]byte, cifarRecord)
	rec[0] = label
	for k := range 1024 {
		rec[1+1024+k] = 255
		rec[1+2048+k] = byte(int(seed) + k)
	}
	return rec
}

// fakeCIFAR returns the six batch files of a CIFAR-10 with per records each
// (the real ones have 10,000), and batches.meta.txt. Record j of batch b
// (b = 0..4 train, 5 test) has label (b*per + j) % 10 and seed b*per + j.
func fakeCIFAR(per int) map[string][]byte {
	files := map[string][]byte{cifarMeta: []byte(strings.Join(cifarClasses, "\n") + "\n\n")}
	for b, name := range cifarFiles() {
		var buf []byte
		for j := range per {
			i := b*per + j
			buf = append(buf, cifarRecordBytes(byte(i%10), byte(i))...)
		}
		files[name] = buf
	}
	return files
}

func TestReadCIFAR10(t *testing.T) {
	const per = 5
	dir := writeFiles(t, t.TempDir(), fakeCIFAR(per))
	tests := []struct {
		split      Split
		n          int
		firstIndex int // global record index of the split's first image
	}{
		{Train, 5 * per, 0},
		{Test, per, 5 * per},
	}
	for _, tt := range tests {
		t.Run(string(tt.split), func(t *testing.T) {
			s, err := Load("cifar10", dir, tt.split)
			if err != nil {
				t.Fatal(err)
			}
			if s.N != tt.n || s.C() != 3 || s.Height != 32 || s.Width != 32 || len(s.Images) != tt.n*3072 || s.ImageLen() != 3072 {
				t.Fatalf("N=%d C=%d %dx%d len=%d; want %d images of 3x32x32", s.N, s.C(), s.Height, s.Width, len(s.Images), tt.n)
			}
			if s.Name != "cifar10" || s.Dir != dir || strings.Join(s.Classes, ",") != strings.Join(cifarClasses, ",") {
				t.Errorf("Name %q Dir %q Classes %q", s.Name, s.Dir, s.Classes)
			}
			for i := range s.N {
				g := tt.firstIndex + i
				if int(s.Labels[i]) != g%10 {
					t.Errorf("label %d = %d, want %d", i, s.Labels[i], g%10)
				}
				img := s.Image(i)
				// (C, H, W): red plane first, then green, then blue; pixel k = row k/32, column k%32.
				for _, k := range []int{0, 1, 31, 32, 1023} {
					wantB := float32(byte(g+k))/127.5 - 1
					if img[k] != -1 || img[1024+k] != 1 || img[2048+k] != wantB {
						t.Errorf("image %d pixel %d: R,G,B = %v,%v,%v; want -1,1,%v", i, k, img[k], img[1024+k], img[2048+k], wantB)
					}
				}
			}
		})
	}
	if got := ClassNames("cifar10"); got[0] != "airplane" || got[9] != "truck" {
		t.Errorf("ClassNames(cifar10) = %q", got)
	}
}

func TestReadCIFAR10Errors(t *testing.T) {
	good := fakeCIFAR(2)
	tests := []struct {
		name   string
		change func(files map[string][]byte)
		want   []string
	}{
		{"truncated batch", func(f map[string][]byte) { f["data_batch_3.bin"] = f["data_batch_3.bin"][:2*cifarRecord-7] },
			[]string{"data_batch_3.bin: truncated or not a CIFAR-10 batch: 6139 bytes is not a whole number of 3073-byte records (1 whole, 3066 bytes left over)"}},
		{"empty batch", func(f map[string][]byte) { f["data_batch_1.bin"] = nil },
			[]string{"data_batch_1.bin: empty file"}},
		{"bad label", func(f map[string][]byte) { f["data_batch_2.bin"][cifarRecord] = 10 },
			[]string{"data_batch_2.bin: record 1 has label 10; CIFAR-10 has classes 0..9"}},
		{"wrong class names", func(f map[string][]byte) { f[cifarMeta] = []byte("cat\ndog\n") },
			[]string{"batches.meta.txt: class names", `"cat" "dog"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string][]byte{}
			for k, v := range good {
				files[k] = bytes.Clone(v)
			}
			tt.change(files)
			dir := writeFiles(t, t.TempDir(), files)
			_, err := Load("cifar10", dir, Train)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %q\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestLocateCIFAR10(t *testing.T) {
	root := t.TempDir()
	// As the canonical archive unpacks: root/cifar10/cifar-10-batches-bin/*.bin.
	unpacked := filepath.Join(root, "cifar10", "cifar-10-batches-bin")
	writeFiles(t, unpacked, fakeCIFAR(1))
	l := locator{getenv: func(k string) string { return map[string]string{"DDPMLAB_DATA": root}[k] },
		lookup: lookup, systemRoot: t.TempDir()}
	if got, err := l.locate("cifar10", ""); err != nil || got != unpacked {
		t.Errorf("locate = %q, %v; want %q", got, err, unpacked)
	}
	if got, err := l.locate("cifar10", filepath.Join(root, "cifar10")); err != nil || got != unpacked {
		t.Errorf("locate(dir) = %q, %v; want %q", got, err, unpacked)
	}

	// Nothing anywhere and no network: the error says how to get the data.
	empty := locator{getenv: func(k string) string { return map[string]string{"HOME": t.TempDir()}[k] },
		lookup: lookup, systemRoot: t.TempDir()}
	_, err := empty.load(context.Background(), "cifar10", "", Train)
	var nf *NotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("error = %v; want a *NotFoundError", err)
	}
	for _, w := range []string{"dataset cifar10 not found", "cifar-10-batches-bin: no such folder",
		"runner data download cifar10", "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error = %q\nwant it to contain %q", err, w)
		}
	}
}

// cifarArchive packs files as the canonical archive does, under
// cifar-10-batches-bin/, with one unrelated member.
func cifarArchive(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	add := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	tw.WriteHeader(&tar.Header{Name: "cifar-10-batches-bin/", Mode: 0o755, Typeflag: tar.TypeDir})
	add("cifar-10-batches-bin/readme.html", []byte("<p>readme</p>"))
	for _, name := range slices.Sorted(maps.Keys(files)) {
		add("cifar-10-batches-bin/"+name, files[name])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return buf.Bytes()
}

func TestDownloadCIFAR10(t *testing.T) {
	files := fakeCIFAR(3)
	archive := cifarArchive(t, files)
	sum := md5.Sum(archive)
	d := cifar10Dataset()
	srv := newMirror(t, map[string][]byte{d.archive: archive})
	d.mirrors = []string{srv.URL + "/ds/"}

	t.Run("extracts and verifies", func(t *testing.T) {
		d.md5 = map[string]string{d.archive: hex.EncodeToString(sum[:])}
		dest := filepath.Join(t.TempDir(), "cifar10")
		var progress bytes.Buffer
		if err := newDownloader().fetch(context.Background(), d, dest, &progress); err != nil {
			t.Fatal(err)
		}
		for name, want := range files {
			got, err := os.ReadFile(filepath.Join(dest, name))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: %d bytes, %v; want %d bytes", name, len(got), err, len(want))
			}
		}
		if _, err := os.Stat(filepath.Join(dest, d.archive)); !os.IsNotExist(err) {
			t.Errorf("archive kept after extraction (stat: %v)", err)
		}
		if left := tempFiles(t, dest); len(left) > 0 {
			t.Errorf("temporary files left: %v", left)
		}
		s, err := readCIFAR10(dest, Test)
		if err != nil || s.N != 3 {
			t.Fatalf("read back: %v, %v", s, err)
		}
		// A second download finds every file and asks for nothing.
		before := srv.requests()
		if err := newDownloader().fetch(context.Background(), d, dest, nil); err != nil || srv.requests() != before {
			t.Errorf("second fetch: %v, %d new requests", err, srv.requests()-before)
		}
	})
	t.Run("checksum mismatch", func(t *testing.T) {
		d.md5 = map[string]string{d.archive: "c32a1d4ab5d03f1284b67883e8d87530"} // the real archive's
		dest := filepath.Join(t.TempDir(), "cifar10")
		err := newDownloader().fetch(context.Background(), d, dest, nil)
		var ce *ChecksumError
		if !errors.As(err, &ce) || ce.Want != "c32a1d4ab5d03f1284b67883e8d87530" || ce.Got != hex.EncodeToString(sum[:]) {
			t.Fatalf("error = %v; want a *ChecksumError", err)
		}
		if entries, _ := os.ReadDir(dest); len(entries) != 0 {
			t.Errorf("dest holds %d entries after a failed checksum; want none", len(entries))
		}
	})
}
