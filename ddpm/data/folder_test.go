package data

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// pngBytes encodes a w×h RGB image whose pixel (x, y) is fill(x, y).
func pngBytes(t testing.TB, w, h int, fill func(x, y int) color.NRGBA) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, fill(x, y))
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// solid returns a w×h PNG of one colour.
func solid(t testing.TB, w, h int, r, g, b uint8) []byte {
	return pngBytes(t, w, h, func(int, int) color.NRGBA { return color.NRGBA{r, g, b, 255} })
}

// writeTree writes files (relative "/" paths) under a new temporary folder.
func writeTree(t testing.TB, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for rel, b := range files {
		writeFile(t, filepath.Join(dir, filepath.FromSlash(rel)), b)
	}
	return dir
}

func v(p uint8) float32 { return float32(p)/127.5 - 1 }

func TestFolderLabelled(t *testing.T) {
	// Two classes of three 2x2 images; pixel (x, y) of image i of the c-th class written has
	// RGB (10c + i, 100 + x, 200 + y), so the channel order and the row-major layout can be
	// read back exactly.
	files := map[string][]byte{}
	for c, class := range []string{"dog", "cat"} { // written in non-sorted order
		for i := range 3 {
			files[class+"/"+string(rune('a'+i))+".png"] = pngBytes(t, 2, 2, func(x, y int) color.NRGBA {
				return color.NRGBA{uint8(10*c + i), uint8(100 + x), uint8(200 + y), 255}
			})
		}
	}
	dir := writeTree(t, files)
	train, err := Spec{Name: "folder", Dir: dir}.Load(Train)
	if err != nil {
		t.Fatal(err)
	}
	test, err := Load("folder", dir, Test)
	if err != nil {
		t.Fatal(err)
	}
	// A class of 3 gives its last image (c.png) to test.
	if !slices.Equal(train.Classes, []string{"cat", "dog"}) || train.N != 4 || test.N != 2 {
		t.Fatalf("classes %q, train %d, test %d; want [cat dog], 4, 2", train.Classes, train.N, test.N)
	}
	if !slices.Equal(train.Labels, []uint8{0, 0, 1, 1}) || !slices.Equal(test.Labels, []uint8{0, 1}) {
		t.Errorf("labels train %v test %v", train.Labels, test.Labels)
	}
	if train.C() != 3 || train.Height != 2 || train.Width != 2 || train.ImageLen() != 12 {
		t.Errorf("shape %dx%dx%d", train.C(), train.Height, train.Width)
	}
	// train image 2 is dog/a.png (class written first: c = 0, i = 0); test image 0 is cat/c.png (c = 1, i = 2).
	for _, tc := range []struct {
		got []float32
		r   uint8
	}{{train.Image(2), 0}, {test.Image(0), 12}} {
		want := []float32{v(tc.r), v(tc.r), v(tc.r), v(tc.r), // R plane
			v(100), v(101), v(100), v(101), // G = 100 + x, row-major
			v(200), v(200), v(201), v(201)} // B = 200 + y
		if !slices.Equal(tc.got, want) {
			t.Errorf("image = %v\nwant %v", tc.got, want)
		}
	}
	if train.Digest == "" || train.Digest != test.Digest {
		t.Errorf("digests %q, %q: want one, the same for both splits", train.Digest, test.Digest)
	}
	if d, err := FolderDigest(dir); err != nil || d != train.Digest {
		t.Errorf("FolderDigest = %q, %v; want %q", d, err, train.Digest)
	}
	info, err := Spec{Name: "folder", Dir: dir}.Inspect()
	if err != nil || info.C != 3 || info.H != 2 || info.W != 2 || info.Files != 6 || info.Train != 4 || info.Test != 2 ||
		info.Digest != train.Digest || !slices.Equal(info.Classes, train.Classes) {
		t.Errorf("Inspect = %+v, %v", info, err)
	}
}

func TestFolderUnlabelledAndSplit(t *testing.T) {
	files := map[string][]byte{}
	for i := range 21 {
		files[string(rune('a'+i))+".png"] = solid(t, 4, 4, uint8(i), 0, 0)
	}
	dir := writeTree(t, files)
	test, err := Load("folder", dir, Test)
	if err != nil {
		t.Fatal(err)
	}
	if test.Labels != nil || len(test.Classes) != 0 {
		t.Errorf("unlabelled: Labels %v Classes %q; want nil, none", test.Labels, test.Classes)
	}
	// 21 images in path order a..u: the 10th (j, value 9) and 20th (t, value 19) are test.
	if test.N != 2 || test.Image(0)[0] != v(9) || test.Image(1)[0] != v(19) {
		t.Errorf("test N = %d, first values %v %v; want 2 images of red 9 and 19", test.N, test.Image(0)[0], test.Image(1)[0])
	}
	train, err := Spec{Name: "folder", Dir: dir, ImageSize: 2, Channels: 1}.Load(Train)
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 19 || train.C() != 1 || train.Height != 2 || train.Width != 2 {
		t.Errorf("train N=%d %dx%dx%d; want 19 of 1x2x2", train.N, train.C(), train.Height, train.Width)
	}
	if want := float32(0.299*1/127.5 - 1); train.Image(1)[3] != want { // b.png: red 1 → luma 0.299
		t.Errorf("grey value %v, want %v", train.Image(1)[3], want)
	}
}

func TestFolderTrainTestSubfolders(t *testing.T) {
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, image.NewGray(image.Rect(0, 0, 6, 4)), nil); err != nil {
		t.Fatal(err)
	}
	dir := writeTree(t, map[string][]byte{
		"train/a/1.png": solid(t, 6, 4, 1, 2, 3), "train/a/deep/2.PNG": solid(t, 6, 4, 1, 2, 3),
		"train/b/1.jpg": jpg.Bytes(), "test/a/x.png": solid(t, 6, 4, 9, 9, 9), "test/b/y.jpeg": jpg.Bytes(),
		".DS_Store": []byte("ignored"), "train/a/.hidden": []byte("ignored"),
	})
	train, err := Spec{Name: "folder", Dir: dir, ImageSize: 4, Resize: CenterCrop}.Load(Train)
	if err != nil {
		t.Fatal(err)
	}
	test, err := Spec{Name: "folder", Dir: dir, ImageSize: 4, Resize: CenterCrop}.Load(Test)
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 3 || test.N != 2 || !slices.Equal(train.Labels, []uint8{0, 0, 1}) || !slices.Equal(test.Labels, []uint8{0, 1}) {
		t.Errorf("train %d %v, test %d %v", train.N, train.Labels, test.N, test.Labels)
	}
	if train.Height != 4 || train.Width != 4 || test.Image(0)[0] != v(9) || test.Image(1)[0] != -1 {
		t.Errorf("%dx%d, values %v %v", train.Height, train.Width, test.Image(0)[0], test.Image(1)[0])
	}
}

// The digest is SHA-256 over a version line, then per file in path order:
// path, NUL, 8-byte big-endian length, bytes.
func TestFolderDigest(t *testing.T) {
	a, b := solid(t, 2, 2, 1, 2, 3), solid(t, 2, 2, 4, 5, 6)
	files := map[string][]byte{"x/a.png": a, "y/b.png": b}
	dir := writeTree(t, files)
	h := sha256.New()
	h.Write([]byte("ddpmlab folder digest v1\n"))
	for _, f := range []struct {
		rel string
		b   []byte
	}{{"x/a.png", a}, {"y/b.png", b}} {
		h.Write(append([]byte(f.rel), 0))
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(f.b))))
		h.Write(f.b)
	}
	want := hex.EncodeToString(h.Sum(nil))
	got, err := FolderDigest(dir)
	if err != nil || got != want {
		t.Fatalf("FolderDigest = %s, %v; want %s", got, err, want)
	}

	changes := []struct {
		name  string
		files map[string][]byte
	}{
		{"one pixel changed", map[string][]byte{"x/a.png": solid(t, 2, 2, 1, 2, 4), "y/b.png": b}},
		{"renamed", map[string][]byte{"x/c.png": a, "y/b.png": b}},
		{"moved to another class", map[string][]byte{"y/a.png": a, "y/b.png": b, "x/z.png": b}},
		{"one added", map[string][]byte{"x/a.png": a, "y/b.png": b, "y/c.png": b}},
	}
	for _, c := range changes {
		if d, err := FolderDigest(writeTree(t, c.files)); err != nil || d == want {
			t.Errorf("%s: digest %s, %v; want a different digest", c.name, d, err)
		}
	}

	// A pinned digest must match.
	if _, err := (Spec{Name: "folder", Dir: dir, Digest: want}).Load(Train); err != nil {
		t.Errorf("matching pin: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "x", "a.png"), b, 0o644)
	for _, f := range []func() error{
		func() error { _, err := (Spec{Name: "folder", Dir: dir, Digest: want}).Load(Train); return err },
		func() error { _, err := (Spec{Name: "folder", Dir: dir, Digest: want}).Inspect(); return err },
	} {
		if err := f(); err == nil || !strings.Contains(err.Error(), "the folder's contents changed") ||
			!strings.Contains(err.Error(), want[:12]) {
			t.Errorf("changed folder with a pinned digest: error %v", err)
		}
	}
}

func TestFolderBadData(t *testing.T) {
	good := solid(t, 4, 4, 1, 2, 3)
	tests := []struct {
		name     string
		files    map[string][]byte
		setup    func(t *testing.T, dir string) // extra setup (symlinks)
		size     int                            // data.image_size
		want     string                         // substring of the error; DIR is replaced by the folder
		loadOnly bool                           // Inspect does not decode whole images
	}{
		{name: "truncated image", files: map[string][]byte{"a.png": good, "b.png": good[:len(good)-20]},
			want: "DIR/b.png: cannot read it as a PNG or JPEG image: png: invalid format: unexpected EOF (truncated, corrupt or not an image?)", loadOnly: true},
		{name: "unreadable image", files: map[string][]byte{"a.png": good, "b.jpg": []byte("this is not a JPEG")},
			want: "DIR/b.jpg: cannot read it as a PNG or JPEG image: image: unknown format"},
		{name: "zero-byte file", files: map[string][]byte{"cat/a.png": good, "cat/b.png": {}},
			want: "DIR/cat/b.png: empty file (0 bytes), not an image"},
		{name: "mixed sizes", files: map[string][]byte{"a.png": good, "b.png": solid(t, 5, 3, 0, 0, 0)},
			want: "images of different sizes and no conversion rule: DIR/a.png is 4x4 but DIR/b.png is 5x3; set data.image_size"},
		{name: "empty folder", files: map[string][]byte{".keep": nil},
			want: "DIR: no images: want PNG or JPEG files (.png, .jpg, .jpeg) in it"},
		{name: "non-image file", files: map[string][]byte{"cat/a.png": good, "cat/notes.txt": []byte("hi")},
			want: "DIR/cat/notes.txt: not a PNG or JPEG file (want .png, .jpg, .jpeg)"},
		{name: "class folder with no images", files: map[string][]byte{"cat/a.png": good, "dog/.keep": nil},
			want: "DIR/dog: class folder with no images"},
		{name: "image beside class folders", files: map[string][]byte{"cat/a.png": good, "b.png": good},
			want: "DIR/b.png: a file beside class folders"},
		{name: "train without test", files: map[string][]byte{"train/a.png": good},
			want: "DIR has a train/ or test/ subfolder but not both"},
		{name: "different classes in train and test", files: map[string][]byte{"train/cat/a.png": good, "test/dog/a.png": good},
			want: `DIR: train/ has class folders ["cat"] but test/ has ["dog"]`},
		{name: "symlink loop to a parent", files: map[string][]byte{"cat/a.png": good},
			setup: func(t *testing.T, dir string) { symlink(t, "..", filepath.Join(dir, "cat", "up")) },
			want:  "DIR/cat/up: symlink loop: it leads back to .., a folder it is in"},
		{name: "symlink to itself", files: map[string][]byte{"cat/a.png": good},
			setup: func(t *testing.T, dir string) { symlink(t, "self", filepath.Join(dir, "cat", "self")) },
			want:  "DIR/cat/self: symlink loop (the link resolves to itself)"},
		{name: "folder reached twice", files: map[string][]byte{"cat/a.png": good, "dog/b.png": good},
			setup: func(t *testing.T, dir string) { symlink(t, "../dog", filepath.Join(dir, "cat", "more")) },
			want:  "DIR/dog: this folder was already read as DIR/cat/more"},
		{name: "broken symlink", files: map[string][]byte{"a.png": good},
			setup: func(t *testing.T, dir string) { symlink(t, "gone.png", filepath.Join(dir, "b.png")) },
			want:  "DIR/b.png: broken symlink to gone.png"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, tt.files)
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			want := strings.ReplaceAll(tt.want, "DIR", dir)
			sp := Spec{Name: "folder", Dir: dir, ImageSize: tt.size}
			_, err := sp.Load(Train)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Load: error %v\nwant it to contain %q", err, want)
			}
			_, err = sp.Inspect()
			if tt.loadOnly {
				if err != nil {
					t.Errorf("Inspect: %v; want no error (it reads headers only)", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Inspect: error %v\nwant it to contain %q", err, want)
			}
		})
	}

	t.Run("mixed sizes with a conversion rule", func(t *testing.T) {
		dir := writeTree(t, map[string][]byte{"a.png": good, "b.png": solid(t, 5, 3, 0, 0, 0)})
		s, err := Spec{Name: "folder", Dir: dir, ImageSize: 8}.Load(Train)
		if err != nil || s.N != 1 || s.Height != 8 {
			t.Errorf("Load = %+v, %v", s, err)
		}
	})
	t.Run("no folder", func(t *testing.T) {
		for _, dir := range []string{"", filepath.Join(t.TempDir(), "none")} {
			if _, err := (Spec{Name: "folder", Dir: dir}).Inspect(); err == nil || !strings.Contains(err.Error(), "folder") {
				t.Errorf("dir %q: error %v", dir, err)
			}
		}
	})
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
