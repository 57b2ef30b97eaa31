package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"image"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/ddpmlab/ddpmlab/ddpm/data"
	"github.com/ddpmlab/ddpmlab/ddpm/viz/viztest"
)

// fakeFashion writes a Fashion-MNIST of 4x4 images: n per class in the train split, each all
// black except pixel (0, 0), which is white; the test split has one image.
func fakeFashion(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	idx := func(name string, magic uint32, dims []uint32, body []byte) {
		var b bytes.Buffer
		binary.Write(&b, binary.BigEndian, magic)
		binary.Write(&b, binary.BigEndian, dims)
		b.Write(body)
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var pix, labels []byte
	for range n {
		for k := range 10 {
			img := make([]byte, 16)
			img[0] = 255
			pix = append(pix, img...)
			labels = append(labels, byte(k))
		}
	}
	idx("train-images-idx3-ubyte", 2051, []uint32{uint32(10 * n), 4, 4}, pix)
	idx("train-labels-idx1-ubyte", 2049, []uint32{uint32(10 * n)}, labels)
	idx("t10k-images-idx3-ubyte", 2051, []uint32{1, 4, 4}, make([]byte, 16))
	idx("t10k-labels-idx1-ubyte", 2049, []uint32{1}, []byte{0})
	return dir
}

func TestDemoFolder(t *testing.T) {
	fashion := fakeFashion(t, 3)
	out := filepath.Join(t.TempDir(), "demo")
	var stdout, stderr bytes.Buffer
	e := &env{stdout: &stdout, stderr: &stderr, log: zerolog.Nop()}
	if err := runData(context.Background(), e, []string{"demo-folder", "--out", out, "--size", "8", "--per-class", "2", "--dir", fashion}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(out)
	var names []string
	for _, de := range entries {
		names = append(names, de.Name())
	}
	want := []string{"0_t-shirt_top", "1_trouser", "2_pullover", "3_dress", "4_coat", "5_sandal", "6_shirt", "7_sneaker", "8_bag", "9_ankle_boot"}
	if !slices.Equal(names, want) {
		t.Fatalf("class folders %q\nwant %q", names, want)
	}
	// Class 0 has hue 0: white becomes HSV(0, 0.8, 1) = (255, 51, 51); the 4x4 image is
	// enlarged to 8x8 by repeating pixels, so (0,0)..(1,1) are tinted and the rest black.
	// Class 3 has hue 0.3, in the hexcone's second sector: (1 − 0.8·0.8, 1, 0.2) = (92, 255, 51).
	for _, tc := range []struct {
		file    string
		r, g, b uint32
	}{{"0_t-shirt_top/00001.png", 255, 51, 51}, {"3_dress/00000.png", 92, 255, 51}} {
		img := viztest.DecodePNG(t, filepath.Join(out, tc.file))
		if img.Bounds() != image.Rect(0, 0, 8, 8) {
			t.Fatalf("%s: bounds %v", tc.file, img.Bounds())
		}
		for _, p := range []struct {
			x, y    int
			r, g, b uint32
		}{{0, 0, tc.r, tc.g, tc.b}, {1, 1, tc.r, tc.g, tc.b}, {2, 0, 0, 0, 0}, {7, 7, 0, 0, 0}} {
			r, g, b, _ := img.At(p.x, p.y).RGBA()
			if r>>8 != p.r || g>>8 != p.g || b>>8 != p.b {
				t.Errorf("%s (%d,%d) = %d,%d,%d; want %d,%d,%d", tc.file, p.x, p.y, r>>8, g>>8, b>>8, p.r, p.g, p.b)
			}
		}
	}
	// It is a valid folder dataset: 10 labelled classes of 2, RGB 8x8; the digest is reported.
	info, err := data.Spec{Name: "folder", Dir: out}.Inspect()
	if err != nil || info.Files != 20 || len(info.Classes) != 10 || info.C != 3 || info.H != 8 || info.W != 8 {
		t.Fatalf("Inspect = %+v, %v", info, err)
	}
	if !strings.Contains(stderr.String(), "digest "+info.Digest[:12]) || strings.TrimSpace(stdout.String()) != out {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}

	// An existing folder is refused and left as it is.
	err = runData(context.Background(), e, []string{"demo-folder", "--out", out, "--dir", fashion, "--size", "8", "--per-class", "1"})
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("existing --out: error %v", err)
	}
	if again, _ := data.FolderDigest(out); again != info.Digest {
		t.Error("the existing folder was changed")
	}
	// Too few images of a class.
	err = runData(context.Background(), e, []string{"demo-folder", "--out", out + "2", "--dir", fashion, "--size", "8", "--per-class", "4"})
	if err == nil || !strings.Contains(err.Error(), `has only 3 images of class "T-shirt/top"`) {
		t.Errorf("--per-class too large: error %v", err)
	}
	if _, err := os.Stat(out + "2"); !os.IsNotExist(err) {
		t.Errorf("a failed demo-folder left %s (stat: %v)", out+"2", err)
	}
}

// TestExplainFolderDigest checks that `runner explain` reads a folder config's images and
// shows their digest as part of the hash.
func TestExplainFolderDigest(t *testing.T) {
	fashion := fakeFashion(t, 1)
	dir := t.TempDir()
	folder := filepath.Join(dir, "demo")
	e := &env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, log: zerolog.Nop()}
	if err := runData(context.Background(), e, []string{"demo-folder", "--out", folder, "--dir", fashion, "--size", "8", "--per-class", "1"}); err != nil {
		t.Fatal(err)
	}
	digest, err := data.FolderDigest(folder)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "folder.toml")
	os.WriteFile(cfg, []byte("[data]\ndataset = \"folder\"\ndir = \""+folder+"\"\n"), 0o644)
	var out bytes.Buffer
	e.stdout = &out
	if err := runExplain(context.Background(), e, []string{cfg, "--store", filepath.Join(dir, "runs")}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`data.digest              = "` + digest + `"`, `"digest":"` + digest + `"`, "note: data.digest " + digest} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("explain output lacks %q:\n%s", w, out.String())
		}
	}
	// A bad image is reported before anything runs, naming the file.
	bad := filepath.Join(folder, "3_dress", "00000.png")
	os.WriteFile(bad, nil, 0o644)
	err = runExplain(context.Background(), e, []string{cfg, "--store", filepath.Join(dir, "runs")})
	if err == nil || !strings.Contains(err.Error(), bad+": empty file (0 bytes)") {
		t.Errorf("zero-byte image: error %v", err)
	}
}
