package viz

import (
	"bytes"
	"flag"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ddpmlab/ddpmlab/ddpm/viz/viztest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.png")

func TestGrayLevel(t *testing.T) {
	nan := float32(math.NaN())
	for _, tt := range []struct {
		x    float32
		want uint8
	}{
		{-1, 0}, {1, 255}, {0, 128}, {0.5, 191}, {-0.5, 64},
		{-3, 0}, {3, 255}, {nan, 0}, {float32(math.Inf(1)), 255},
	} {
		if got := GrayLevel(tt.x); got != tt.want {
			t.Errorf("GrayLevel(%v) = %d; want %d", tt.x, got, tt.want)
		}
	}
}

func TestGridSize(t *testing.T) {
	tests := []struct {
		name                      string
		n, h, w, cols, pad, scale int
		wantW, wantH              int
	}{
		{name: "8x8 of 28x28", n: 64, h: 28, w: 28, cols: 8, pad: 2, scale: 1, wantW: 8*30 + 2, wantH: 8*30 + 2},
		{name: "partial last row", n: 10, h: 28, w: 28, cols: 4, pad: 2, scale: 1, wantW: 4*30 + 2, wantH: 3*30 + 2},
		{name: "scaled", n: 3, h: 2, w: 5, cols: 3, pad: 1, scale: 3, wantW: 3*16 + 1, wantH: 7 + 1},
		{name: "no padding", n: 6, h: 4, w: 4, cols: 2, pad: 0, scale: 1, wantW: 8, wantH: 12},
		{name: "cols above n means one row", n: 3, h: 4, w: 4, cols: 10, pad: 1, scale: 1, wantW: 16, wantH: 6},
		{name: "cols 0 means one row", n: 3, h: 4, w: 4, cols: 0, pad: 1, scale: 1, wantW: 16, wantH: 6},
		{name: "scale 0 means 1, negative pad 0", n: 2, h: 3, w: 3, cols: 1, pad: -4, scale: 0, wantW: 3, wantH: 6},
		{name: "no images", n: 0, h: 28, w: 28, cols: 8, pad: 2, scale: 1, wantW: 2, wantH: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := Grid(make([]float32, tt.n*tt.h*tt.w), tt.n, tt.h, tt.w, tt.cols, tt.pad, tt.scale)
			if b := img.Bounds(); b != image.Rect(0, 0, tt.wantW, tt.wantH) {
				t.Errorf("bounds = %v; want %dx%d", b, tt.wantW, tt.wantH)
			}
		})
	}
}

func TestGridPixels(t *testing.T) {
	// Three 2x2 images in 2 columns, pad 1, scale 2: each tile is 4x4 and
	// the picture is 2*(4+1)+1 = 11 wide, 11 high.
	images := []float32{
		-1, 1, 0, 0.5, // image 0: black, white / gray, light gray
		1, 1, 1, 1, // image 1: white
		-1, -1, -1, 1, // image 2: black except bottom right
	}
	g := Grid(images, 3, 2, 2, 2, 1, 2)
	at := func(x, y int) uint8 { return g.GrayAt(x, y).Y }
	for _, tt := range []struct {
		name string
		x, y int
		want uint8
	}{
		{"corner padding", 0, 0, PadGray},
		{"padding between columns", 5, 2, PadGray},
		{"padding between rows", 2, 5, PadGray},
		{"image 0 top-left block", 1, 1, 0},
		{"image 0 top-left block, scaled", 2, 2, 0},
		{"image 0 top-right block", 3, 1, 255},
		{"image 0 top-right block, scaled", 4, 2, 255},
		{"image 0 bottom-left", 1, 3, 128},
		{"image 0 bottom-right", 4, 4, 191},
		{"image 1", 6, 1, 255},
		{"image 2 top-left", 1, 6, 0},
		{"image 2 bottom-right", 4, 9, 255},
		{"empty cell after the last image", 8, 8, PadGray},
		{"bottom padding", 3, 10, PadGray},
	} {
		if got := at(tt.x, tt.y); got != tt.want {
			t.Errorf("%s: pixel (%d,%d) = %d; want %d", tt.name, tt.x, tt.y, got, tt.want)
		}
	}
}

func TestGridPanics(t *testing.T) {
	for _, tt := range []struct {
		name    string
		images  []float32
		n, h, w int
		want    string
	}{
		{"too few values", make([]float32, 7), 2, 2, 2, "need 8 values, got 7"},
		{"zero height", nil, 1, 0, 2, "bad image shape"},
		{"negative count", nil, -1, 2, 2, "bad image shape"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.Contains(s, tt.want) {
					t.Errorf("panic = %v; want one containing %q", r, tt.want)
				}
			}()
			Grid(tt.images, tt.n, tt.h, tt.w, 2, 1, 1)
		})
	}
}

// ramp returns n images of h×w whose values go from -1 to 1 along each row.
func ramp(n, h, w int) []float32 {
	v := make([]float32, n*h*w)
	for i := range v {
		v[i] = float32(i%w)/float32(w-1)*2 - 1
	}
	return v
}

// dark counts pixels darker than mid-gray in r.
func dark(g *image.Gray, r image.Rectangle) int {
	k := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if g.GrayAt(x, y).Y < 128 {
				k++
			}
		}
	}
	return k
}

func TestLabeledGrid(t *testing.T) {
	const n, h, w, pad, scale = 6, 16, 16, 2, 2
	images := ramp(n, h, w)

	t.Run("no labels equals Grid", func(t *testing.T) {
		got := LabeledGrid(images, n, h, w, 3, pad, scale, nil, []string{})
		want := Grid(images, n, h, w, 3, pad, scale)
		if got.Bounds() != want.Bounds() || !bytes.Equal(got.Pix, want.Pix) {
			t.Error("LabeledGrid without labels differs from Grid")
		}
	})

	t.Run("column labels", func(t *testing.T) {
		cols := []string{"t=0", "t=50", "t=99"} // 4 chars * 7 px fit 32 px tiles
		g := LabeledGrid(images, n, h, w, 3, pad, scale, cols, nil)
		plain := Grid(images, n, h, w, 3, pad, scale)
		top := g.Bounds().Dy() - plain.Bounds().Dy()
		if top < 13 || g.Bounds().Dx() != plain.Bounds().Dx() {
			t.Fatalf("bounds %v, Grid's %v; want a top margin of at least 13 and the same width", g.Bounds(), plain.Bounds())
		}
		// Text over each column, and the tiles below are Grid's, shifted.
		for c := range 3 {
			x0 := pad + c*(w*scale+pad)
			if dark(g, image.Rect(x0, 0, x0+w*scale, top)) == 0 {
				t.Errorf("no text over column %d", c)
			}
		}
		if !bytes.Equal(g.Pix[top*g.Stride:], plain.Pix) {
			t.Error("tiles under the labels differ from Grid's")
		}
	})

	t.Run("wide labels widen columns", func(t *testing.T) {
		cols := []string{"a long label", "x"} // 12 chars * 7 px > 32 px tiles
		g := LabeledGrid(images, 2, h, w, 2, pad, scale, cols, nil)
		if want := pad + 2*(12*7+4+pad); g.Bounds().Dx() != want { // text, 2 px each side, pad
			t.Errorf("width = %d; want %d", g.Bounds().Dx(), want)
		}
	})

	t.Run("row labels", func(t *testing.T) {
		rows := []string{"T-shirt/top", "Ankle boot"}
		g := LabeledGrid(images, n, h, w, 3, pad, scale, nil, rows)
		plain := Grid(images, n, h, w, 3, pad, scale)
		left := g.Bounds().Dx() - plain.Bounds().Dx()
		if left < 11*7 || g.Bounds().Dy() != plain.Bounds().Dy() {
			t.Fatalf("bounds %v, Grid's %v; want a left margin of at least 77 and the same height", g.Bounds(), plain.Bounds())
		}
		for r := range 2 {
			y0 := pad + r*(h*scale+pad)
			if dark(g, image.Rect(0, y0, left, y0+h*scale)) == 0 {
				t.Errorf("no text beside row %d", r)
			}
		}
	})

	t.Run("golden", func(t *testing.T) {
		// A forward-diffusion-like figure: 3 rows, 4 timesteps, both labels.
		g := LabeledGrid(ramp(12, 8, 8), 12, 8, 8, 4, 2, 4,
			[]string{"t=0", "t=50", "t=500", "t=999"}, []string{"0", "1", "9"})
		checkGolden(t, "labeled", g)
	})
}

// checkGolden compares g with testdata/name.golden.png, or rewrites that
// file with -update.
func checkGolden(t *testing.T, name string, g *image.Gray) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden.png")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := WritePNG(path, g); err != nil {
			t.Fatal(err)
		}
		return
	}
	want := readPNG(t, path)
	if want.Bounds() != g.Bounds() || !bytes.Equal(want.Pix, g.Pix) {
		t.Errorf("picture differs from %s; look at it, then run go test -update", path)
	}
}

func readPNG(t *testing.T, path string) *image.Gray {
	t.Helper()
	img := viztest.DecodePNG(t, path)
	g, ok := img.(*image.Gray)
	if !ok {
		t.Fatalf("%s decodes to %T; want *image.Gray", path, img)
	}
	return g
}

func TestWritePNG(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "grid.png")
	g := Grid(ramp(4, 5, 6), 4, 5, 6, 2, 1, 2)
	for range 2 { // the second write replaces the first
		if err := WritePNG(path, g); err != nil {
			t.Fatal(err)
		}
	}
	got := readPNG(t, path)
	if got.Bounds() != g.Bounds() || !bytes.Equal(got.Pix, g.Pix) {
		t.Error("PNG round trip changed the picture")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("folder holds %d entries; want only grid.png", len(entries))
	}
}

func TestWriteGIF(t *testing.T) {
	path := filepath.Join(t.TempDir(), "denoise.gif")
	var frames []*image.Gray
	for i := range 5 {
		v := make([]float32, 16)
		for j := range v {
			v[j] = float32(i)/2 - 1 // -1, -0.5, 0, 0.5, 1
		}
		frames = append(frames, Grid(v, 1, 4, 4, 1, 1, 1))
	}
	if err := WriteGIF(path, frames, 8); err != nil {
		t.Fatal(err)
	}
	anim := viztest.DecodeGIF(t, path)
	if len(anim.Image) != 5 {
		t.Fatalf("%d frames; want 5", len(anim.Image))
	}
	if want := []int{8, 8, 8, 8, 100}; !equal(anim.Delay, want) {
		t.Errorf("delays = %v; want %v", anim.Delay, want)
	}
	if anim.LoopCount != 0 {
		t.Errorf("LoopCount = %d; want 0 (forever)", anim.LoopCount)
	}
	for i, p := range anim.Image {
		for y := range 6 {
			for x := range 6 {
				got := color.GrayModel.Convert(p.At(x, y)).(color.Gray).Y
				if want := frames[i].GrayAt(x, y).Y; got != want {
					t.Fatalf("frame %d pixel (%d,%d) = %d; want %d", i, x, y, got, want)
				}
			}
		}
	}

	t.Run("long delay holds the last frame 5 times", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "a.gif")
		if err := WriteGIF(p, frames[:2], 30); err != nil {
			t.Fatal(err)
		}
		if anim := viztest.DecodeGIF(t, p); !equal(anim.Delay, []int{30, 150}) {
			t.Errorf("delays = %v; want [30 150]", anim.Delay)
		}
	})
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "keep.png")
	if err := os.WriteFile(existing, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	small := image.NewGray(image.Rect(0, 0, 2, 2))
	tests := []struct {
		name  string
		write func() error
		want  string
	}{
		{"png into a missing folder", func() error { return WritePNG(filepath.Join(dir, "no", "x.png"), small) }, "no such file"},
		{"png that fails to encode", func() error { return WritePNG(existing, image.NewGray(image.Rect(0, 0, 0, 0))) }, "invalid image size"},
		{"gif without frames", func() error { return WriteGIF(filepath.Join(dir, "x.gif"), nil, 5) }, "no frames"},
		{"gif with frames of two sizes", func() error {
			return WriteGIF(filepath.Join(dir, "x.gif"), []*image.Gray{small, image.NewGray(image.Rect(0, 0, 3, 2))}, 5)
		}, "frame 1 is (0,0)-(3,2), frame 0 is (0,0)-(2,2)"},
		{"gif with negative delay", func() error { return WriteGIF(filepath.Join(dir, "x.gif"), []*image.Gray{small}, -1) }, "negative frame delay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.write()
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), dir) {
				t.Errorf("error = %v; want one naming the path and containing %q", err, tt.want)
			}
		})
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("folder holds %v; want only keep.png (no temporary files)", names)
	}
	if b, _ := os.ReadFile(existing); string(b) != "old" {
		t.Errorf("a failed write changed %s to %q", existing, b)
	}
}
