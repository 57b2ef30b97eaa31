package sweep

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

// A sweep over a folder dataset records the folder's digest in every run (config.ResolveData),
// and a bad image fails the expansion, naming the file and the sweep file.
func TestExpandFolderDigest(t *testing.T) {
	dir := t.TempDir()
	folder := filepath.Join(dir, "images")
	os.MkdirAll(filepath.Join(folder, "a"), 0o755)
	for _, name := range []string{"1.png", "2.png"} {
		var b bytes.Buffer
		png.Encode(&b, image.NewGray(image.Rect(0, 0, 8, 8)))
		os.WriteFile(filepath.Join(folder, "a", name), b.Bytes(), 0o644)
	}
	base := filepath.Join(dir, "base.toml")
	os.WriteFile(base, []byte("[data]\ndataset = \"folder\"\ndir = \""+folder+"\"\n"), 0o644)
	file := filepath.Join(dir, "sweep.toml")
	os.WriteFile(file, []byte("name = \"f\"\nbase = \"base.toml\"\n[grid]\n\"data.image_size\" = [16, 32]\n"), 0o644)

	s, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := s.Expand("", nil)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := data.FolderDigest(folder)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Runs) != 2 || plan.Runs[0].Hash == plan.Runs[1].Hash {
		t.Fatalf("%d runs", len(plan.Runs))
	}
	for _, r := range plan.Runs {
		if r.Config.Data.Digest != digest || !strings.Contains(string(r.Config.Canonical()), digest) {
			t.Errorf("run %s: data.digest %q, want %q", r.Label(), r.Config.Data.Digest, digest)
		}
	}

	os.WriteFile(filepath.Join(folder, "a", "3.png"), []byte("not a png"), 0o644)
	_, err = s.Expand("", nil)
	if err == nil || !strings.Contains(err.Error(), "data.dir: "+filepath.Join(folder, "a", "3.png")+": cannot read it as a PNG or JPEG image") {
		t.Errorf("bad image: error %v", err)
	}
}
