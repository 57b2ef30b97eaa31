package viz

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"os"
	"path/filepath"
	"testing"

	"github.com/ddpmlab/ddpmlab/ddpm/viz/viztest"
)

// rgbOf repeats grey images (n·h·w values) into three equal channel planes each.
func rgbOf(grey []float32, n, h, w int) []float32 {
	out := make([]float32, 0, 3*len(grey))
	for i := range n {
		img := grey[i*h*w : (i+1)*h*w]
		out = append(append(append(out, img...), img...), img...)
	}
	return out
}

func TestGridC(t *testing.T) {
	t.Run("one channel is Grid", func(t *testing.T) {
		want := Grid(ramp(5, 3, 4), 5, 3, 4, 2, 1, 2)
		got, ok := GridC(ramp(5, 3, 4), 5, 1, 3, 4, 2, 1, 2).(*image.Gray)
		if !ok || got.Bounds() != want.Bounds() || !bytes.Equal(got.Pix, want.Pix) {
			t.Error("GridC with c = 1 differs from Grid")
		}
	})
	t.Run("grey RGB has the grey picture in every channel", func(t *testing.T) {
		grey := Grid(ramp(5, 3, 4), 5, 3, 4, 2, 1, 2)
		rgb, ok := GridC(rgbOf(ramp(5, 3, 4), 5, 3, 4), 5, 3, 3, 4, 2, 1, 2).(*image.NRGBA)
		if !ok || rgb.Bounds() != grey.Bounds() {
			t.Fatalf("GridC c = 3: %T %v, want *image.NRGBA %v", rgb, rgb.Bounds(), grey.Bounds())
		}
		for y := range grey.Bounds().Dy() {
			for x := range grey.Bounds().Dx() {
				v := grey.GrayAt(x, y).Y
				if got := rgb.NRGBAAt(x, y); got != (color.NRGBA{R: v, G: v, B: v, A: 255}) {
					t.Fatalf("pixel (%d,%d) = %v, want grey %d", x, y, got, v)
				}
			}
		}
	})
	t.Run("channel planes map to R, G, B", func(t *testing.T) {
		// One 1×2 image: R plane (-1, 1), G plane (0, -1), B plane (1, 0.5); pad 1, scale 1.
		img := GridC([]float32{-1, 1, 0, -1, 1, 0.5}, 1, 3, 1, 2, 1, 1, 1).(*image.NRGBA)
		if img.Bounds() != image.Rect(0, 0, 4, 3) {
			t.Fatalf("bounds %v, want 4×3", img.Bounds())
		}
		for _, tt := range []struct {
			x, y int
			want color.NRGBA
		}{
			{0, 0, color.NRGBA{255, 255, 255, 255}}, // padding
			{1, 1, color.NRGBA{0, 128, 255, 255}},
			{2, 1, color.NRGBA{255, 0, 191, 255}},
			{3, 1, color.NRGBA{255, 255, 255, 255}},
		} {
			if got := img.NRGBAAt(tt.x, tt.y); got != tt.want {
				t.Errorf("pixel (%d,%d) = %v, want %v", tt.x, tt.y, got, tt.want)
			}
		}
	})
	t.Run("two channels panic", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Error("no panic")
			}
		}()
		GridC(make([]float32, 8), 1, 2, 2, 2, 1, 0, 1)
	})
}

func TestLabeledGridC(t *testing.T) {
	cols, rows := []string{"t=0", "t=999"}, []string{"cat", "dog"}
	grey := LabeledGrid(ramp(4, 6, 6), 4, 6, 6, 2, 2, 2, cols, rows)
	if g, ok := LabeledGridC(ramp(4, 6, 6), 4, 1, 6, 6, 2, 2, 2, cols, rows).(*image.Gray); !ok || !bytes.Equal(g.Pix, grey.Pix) {
		t.Error("LabeledGridC with c = 1 differs from LabeledGrid")
	}
	rgb := LabeledGridC(rgbOf(ramp(4, 6, 6), 4, 6, 6), 4, 3, 6, 6, 2, 2, 2, cols, rows).(*image.NRGBA)
	if rgb.Bounds() != grey.Bounds() {
		t.Fatalf("bounds %v, want %v", rgb.Bounds(), grey.Bounds())
	}
	// Labels and tiles in the same places: equal channels give the grey picture exactly.
	for y := range grey.Bounds().Dy() {
		for x := range grey.Bounds().Dx() {
			v := grey.GrayAt(x, y).Y
			if got := rgb.NRGBAAt(x, y); got != (color.NRGBA{R: v, G: v, B: v, A: 255}) {
				t.Fatalf("pixel (%d,%d) = %v, want grey %d", x, y, got, v)
			}
		}
	}
}

func TestWriteRGB(t *testing.T) {
	// Two frames of one 2×3 colour image, scale 1, no padding: every value of the cube's
	// rounding shows up (−1 → 0 → level 0, 0 → 128 → level 3 = 153, 0.5 → 191 → level 4 = 204).
	frame := func(shift float32) image.Image {
		v := []float32{-1, 0, 0.5, 1, -0.5, 0, 0.5, 1, -1, 0, 0, 0, 1, -1, 0.25, 0.75, -0.25, 0}
		for i := range v {
			v[i] = max(-1, min(1, v[i]+shift))
		}
		return GridC(v, 1, 3, 2, 3, 1, 0, 1)
	}
	frames := []image.Image{frame(0), frame(0.3)}
	dir := t.TempDir()

	t.Run("PNG keeps the colours exactly", func(t *testing.T) {
		path := filepath.Join(dir, "grid.png")
		if err := WritePNG(path, frames[0]); err != nil {
			t.Fatal(err)
		}
		got := viztest.DecodePNG(t, path)
		want := frames[0].(*image.NRGBA)
		for y := range 2 {
			for x := range 3 {
				if c := color.NRGBAModel.Convert(got.At(x, y)); c != want.NRGBAAt(x, y) {
					t.Errorf("pixel (%d,%d) = %v, want %v", x, y, c, want.NRGBAAt(x, y))
				}
			}
		}
	})
	t.Run("GIF rounds each channel to the 6-level cube", func(t *testing.T) {
		path := filepath.Join(dir, "denoise.gif")
		if err := WriteGIFImages(path, frames, 8); err != nil {
			t.Fatal(err)
		}
		anim := viztest.DecodeGIF(t, path)
		if len(anim.Image) != 2 || !equal(anim.Delay, []int{8, 100}) {
			t.Fatalf("%d frames, delays %v; want 2, [8 100]", len(anim.Image), anim.Delay)
		}
		round := func(v uint8) uint8 { return uint8(51 * ((int(v) + 25) / 51)) }
		for i, p := range anim.Image {
			src := frames[i].(*image.NRGBA)
			for y := range 2 {
				for x := range 3 {
					s := src.NRGBAAt(x, y)
					want := color.NRGBA{R: round(s.R), G: round(s.G), B: round(s.B), A: 255}
					if got := color.NRGBAModel.Convert(p.At(x, y)); got != want {
						t.Errorf("frame %d pixel (%d,%d) = %v, want %v (from %v)", i, x, y, got, want, s)
					}
				}
			}
		}
	})
	t.Run("any image type quantises alike", func(t *testing.T) {
		// An *image.RGBA copy of the frames (the generic path) gives the same GIF bytes.
		var copies []image.Image
		for _, f := range frames {
			c := image.NewRGBA(f.Bounds())
			draw.Draw(c, c.Bounds(), f, image.Point{}, draw.Src)
			copies = append(copies, c)
		}
		a, b := filepath.Join(dir, "a.gif"), filepath.Join(dir, "b.gif")
		if err := WriteGIFImages(a, frames, 8); err != nil {
			t.Fatal(err)
		}
		if err := WriteGIFImages(b, copies, 8); err != nil {
			t.Fatal(err)
		}
		ba, _ := os.ReadFile(a)
		bb, _ := os.ReadFile(b)
		if len(ba) == 0 || !bytes.Equal(ba, bb) {
			t.Error("an RGBA copy of the frames gives a different GIF")
		}
	})
	t.Run("mixed bounds are refused", func(t *testing.T) {
		other := GridC(make([]float32, 12), 1, 3, 2, 2, 1, 0, 1)
		if err := WriteGIFImages(filepath.Join(dir, "bad.gif"), []image.Image{frames[0], other}, 8); err == nil {
			t.Error("no error for frames of different sizes")
		}
	})
}
