package config

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ddpmlab/ddpmlab/ddpm/data"
)

// The hashes of the shipped configs before the data keys (image_size, channels, resize,
// digest) existed: adding them, or writing them at their defaults, renames no run.
func TestDataKeysKeepOldHashes(t *testing.T) {
	tests := []struct {
		file string
		sets [][2]string
		want string
	}{
		{file: "default.toml", want: "da0bfe6217e32c4112f72ffc2c98493c2c0a6c6b277db456bf8aa81f17fad00e"},
		// quick.toml without the autoguidance and the batch of 16 it gained later (RESULTS.md section 4).
		{file: "quick.toml", sets: [][2]string{{"sample.autoguidance", "0"}, {"sample.guide_step", "0"}, {"train.batch_size", "32"}},
			want: "40049c9b5c7d024057d27185fe45942d5b1f4b82e5d08efad152b12e41b889a4"},
		{file: "conditional.toml", want: "500111a3f992a93aa7c0bbf42657ff0ec9a4c463744b9079c6c43f8fedec30bd"},
		{file: "default.toml", sets: [][2]string{{"data.image_size", "0"}, {"data.channels", "0"},
			{"data.resize", "resize"}, {"data.digest", `""`}},
			want: "da0bfe6217e32c4112f72ffc2c98493c2c0a6c6b277db456bf8aa81f17fad00e"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c, err := LoadFile("../../configs/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			for _, kv := range tt.sets {
				if err := c.Set(kv[0], kv[1]); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.ResolveData(); err != nil {
				t.Fatal(err)
			}
			if got := c.Hash().String(); got != tt.want {
				t.Errorf("hash %s, want %s\n%s", got, tt.want, c.Canonical())
			}
		})
	}
}

// writePNGs writes n 4x4 PNGs into dir/class for each class, pixel value i+k for image i of
// the k-th class.
func writePNGs(t *testing.T, dir string, n int, classes ...string) {
	t.Helper()
	for k, class := range classes {
		if err := os.MkdirAll(filepath.Join(dir, class), 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			img := image.NewGray(image.Rect(0, 0, 4, 4))
			for p := range img.Pix {
				img.Pix[p] = uint8(i + k)
			}
			var b bytes.Buffer
			png.Encode(&b, img)
			if err := os.WriteFile(filepath.Join(dir, class, string(rune('a'+i))+".png"), b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestDataKeyErrors(t *testing.T) {
	folder := t.TempDir()
	writePNGs(t, folder, 3, "cat", "dog")
	file := filepath.Join(t.TempDir(), "f.toml")
	tests := []struct {
		name string
		toml string // the [data] table's body, from line 2
		want []string
	}{
		{"folder without dir", `dataset = "folder"`, []string{`f.toml:1: data.dir: dataset "folder" needs data.dir, the folder of PNG or JPEG images`}},
		{"size not a multiple of 4", "dataset = \"folder\"\ndir = \"" + folder + "\"\nimage_size = 30",
			[]string{`f.toml:4: data.image_size: must be 0 (as stored) or a multiple of 4 in 8..128 (the U-Net halves it twice), got 30`}},
		{"size too large", "dataset = \"cifar10\"\nimage_size = 256",
			[]string{`f.toml:3: data.image_size: must be 0 (as stored) or a multiple of 4 in 8..128`}},
		{"size for mnist", "image_size = 32",
			[]string{`f.toml:2: data.image_size: converts only cifar10 and folder images (mnist is 28×28): leave it at 0, got 32`}},
		{"channels", "dataset = \"cifar10\"\nchannels = 2",
			[]string{`f.toml:3: data.channels: must be 1 (grey), 3 (RGB) or 0 (the dataset's own), got 2`}},
		{"channels for fashion", "dataset = \"fashion_mnist\"\nchannels = 3",
			[]string{`f.toml:3: data.channels: converts only cifar10 and folder images (fashion_mnist is grey)`}},
		{"resize", "dataset = \"cifar10\"\nresize = \"stretch\"",
			[]string{`f.toml:3: data.resize: must be one of "resize" | "center_crop", got "stretch"`}},
		{"center_crop without size", "dataset = \"cifar10\"\nresize = \"center_crop\"",
			[]string{`f.toml:3: data.resize: "center_crop" needs data.image_size, the side to resize the square to`}},
		{"digest for cifar10", "dataset = \"cifar10\"\ndigest = \"ab\"",
			[]string{`f.toml:3: data.digest: is for dataset "folder" only`}},
		{"digest not hex", "dataset = \"folder\"\ndir = \"" + folder + "\"\ndigest = \"XYZ\"",
			[]string{`f.toml:4: data.digest: must be 64 lowercase hex digits`}},
		{"channels wrong type", "dataset = \"cifar10\"\nchannels = \"rgb\"",
			[]string{`f.toml:3: data.channels: must be an integer, got string "rgb"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(file, []byte("[data]\n"+tt.toml+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadFile(file)
			if err == nil {
				t.Fatal("no error")
			}
			got := strings.ReplaceAll(err.Error(), filepath.Dir(file)+string(filepath.Separator), "")
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("error:\n%s\nwant it to contain\n%s", got, w)
				}
			}
		})
	}

	t.Run("valid", func(t *testing.T) {
		for _, body := range []string{
			"dataset = \"folder\"\ndir = \"" + folder + "\"\nimage_size = 32\nchannels = 1\nresize = \"center_crop\"",
			"dataset = \"cifar10\"", "dataset = \"cifar10\"\nimage_size = 64\nchannels = 1",
		} {
			os.WriteFile(file, []byte("[data]\n"+body+"\n"), 0o644)
			if _, err := LoadFile(file); err != nil {
				t.Errorf("%s: %v", body, err)
			}
		}
	})
}

func TestResolveDataDigest(t *testing.T) {
	folder := t.TempDir()
	writePNGs(t, folder, 3, "cat", "dog")
	c := Default()
	c.Data.Dataset, c.Data.Dir = "folder", folder
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	before := c.Hash()
	if err := c.ResolveData(); err != nil {
		t.Fatal(err)
	}
	want, err := data.FolderDigest(folder)
	if err != nil || c.Data.Digest != want || len(want) != 64 {
		t.Fatalf("data.digest = %q; FolderDigest = %q, %v", c.Data.Digest, want, err)
	}
	if c.Hash() == before || !strings.Contains(string(c.Canonical()), `"digest":"`+want+`"`) {
		t.Errorf("the digest is not in the canonical form: %s", c.Canonical())
	}
	if ex := c.Explain(); !strings.Contains(ex, "data.digest") || !strings.Contains(ex, "note: data.digest "+want) {
		t.Errorf("Explain does not show the digest:\n%s", ex)
	}
	// A stored config (the digest written out) parses, validates and resolves to itself.
	stored, err := Parse("config.toml", c.TOML())
	if err != nil || stored != c || stored.ResolveData() != nil || stored.Hash() != c.Hash() {
		t.Errorf("round trip: %v", err)
	}
	// The data dir is not hashed, the images are: the same images elsewhere keep the hash.
	moved := c
	moved.Data.Dir, moved.Data.Digest = t.TempDir(), ""
	writePNGs(t, moved.Data.Dir, 3, "cat", "dog")
	if err := moved.ResolveData(); err != nil || moved.Hash() != c.Hash() {
		t.Errorf("same images in another folder: %v, hash %s vs %s", err, moved.Hash().Short(), c.Hash().Short())
	}

	// Change one image: a fresh config gets a new hash; the pinned one is refused.
	writePNGs(t, folder, 1, "dog") // dog/a.png: value 0 instead of 1
	fresh := c
	fresh.Data.Digest = ""
	if err := fresh.ResolveData(); err != nil || fresh.Hash() == c.Hash() {
		t.Errorf("changed image: %v, hash unchanged %v", err, fresh.Hash() == c.Hash())
	}
	err = c.ResolveData()
	if err == nil || !strings.Contains(err.Error(), "data.digest: the images in "+folder+" changed: they digest to "+fresh.Data.Digest) {
		t.Errorf("pinned digest, changed folder: error %v", err)
	}

	// Bad data is reported before any run, naming the file.
	os.WriteFile(filepath.Join(folder, "cat", "notes.txt"), []byte("x"), 0o644)
	fresh.Data.Digest = ""
	err = fresh.ResolveData()
	if err == nil || !strings.Contains(err.Error(), "data.dir: "+filepath.Join(folder, "cat", "notes.txt")+": not a PNG or JPEG file") {
		t.Errorf("bad data: error %v", err)
	}

	// A folder that is not there: Validate does not look, ResolveData says so.
	gone := Default()
	gone.Data.Dataset, gone.Data.Dir = "folder", filepath.Join(folder, "gone")
	err = gone.Validate()
	if err == nil {
		err = gone.ResolveData()
	}
	if err == nil || !strings.Contains(err.Error(), "data.dir: folder dataset: stat "+gone.Data.Dir+": no such file or directory") ||
		!strings.Contains(err.Error(), "runner data demo-folder") {
		t.Errorf("missing folder: error %v", err)
	}

	// Other datasets are left alone.
	m := Default()
	if err := m.ResolveData(); err != nil || m != Default() {
		t.Errorf("mnist: %v", err)
	}
}

// The U-Net's levels are checked against the dataset's image side, not MNIST's 28.
func TestLevelsFollowImageSide(t *testing.T) {
	folder := t.TempDir()
	writePNGs(t, folder, 2, "cat") // 4x4 images
	tests := []struct {
		name string
		sets [][2]string
		want string // "" = valid
	}{
		{"mnist 3 levels", [][2]string{{"model.channel_mult", "1,2,2"}}, "model.channel_mult: must have 1 to 2 levels (28×28 images halve exactly 2 times), got 3"},
		{"cifar10 3 levels, attention at 16", [][2]string{{"data.dataset", "cifar10"}, {"model.channel_mult", "1,2,2"}, {"model.attention", "16"}}, ""},
		{"cifar10 attention at 14", [][2]string{{"data.dataset", "cifar10"}, {"model.attention", "14"}}, "model.attention: resolution 14 is not one of the U-Net's (32, 16, 8, from"},
		{"folder at 64, 4 levels", [][2]string{{"data.dataset", "folder"}, {"data.dir", folder}, {"data.image_size", "64"}, {"model.channel_mult", "1,2,2,2"}}, ""},
		{"folder as stored, 4x4", [][2]string{{"data.dataset", "folder"}, {"data.dir", folder}, {"model.channel_mult", "1,2,2"}},
			"model.channel_mult: must have 1 to 2 levels (4×4 images halve exactly 2 times), got 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			for _, kv := range tt.sets {
				if err := c.Set(kv[0], kv[1]); err != nil {
					t.Fatal(err)
				}
			}
			err := c.Validate()
			if err == nil {
				err = c.ResolveData()
			}
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v\nwant %q", err, tt.want)
			}
		})
	}
	if got := (Config{Data: Data{Dataset: "cifar10"}}).ImageSide(); got != 32 {
		t.Errorf("cifar10 side %d", got)
	}
}
