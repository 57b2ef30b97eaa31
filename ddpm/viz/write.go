package viz

import (
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"io"

	"github.com/ddpmlab/ddpmlab/ddpm/durable"
)

func grayOf(v uint8) color.Gray { return color.Gray{Y: v} }

// WritePNG encodes img as PNG to path durably and atomically (durable.Write):
// into a temporary file in the same folder, synced and renamed over path. On
// error path is unchanged, no temporary file is left behind, and the error
// names path.
func WritePNG(path string, img image.Image) error {
	return durable.Write(path, 0o644, func(w io.Writer) error { return png.Encode(w, img) })
}

// WriteGIF writes frames as an animated GIF that loops forever, atomically
// like [WritePNG]. Each frame shows for delay hundredths of a second; the
// last is held for max(5*delay, 100) so the end result can be seen before
// the loop restarts. Frames must all have the same bounds; their 256 gray
// levels are kept exactly.
func WriteGIF(path string, frames []*image.Gray, delay int) error {
	all := make([]image.Image, len(frames))
	for i, f := range frames {
		all[i] = f
	}
	return WriteGIFImages(path, all, delay)
}

// RGBCube is the palette of colour GIFs: the 6×6×6 colour cube, index
// 36·r + 6·g + b for channel levels r, g, b in 0..5, each level 51 apart
// (0, 51, …, 255). It is fixed, so every frame and every run shares it, and
// it holds white (the padding) and black exactly.
var RGBCube = func() color.Palette {
	p := make(color.Palette, 0, 216)
	for r := range 6 {
		for g := range 6 {
			for b := range 6 {
				p = append(p, color.RGBA{R: uint8(51 * r), G: uint8(51 * g), B: uint8(51 * b), A: 255})
			}
		}
	}
	return p
}()

// cubeLevel is the RGBCube level nearest to the 8-bit channel value v.
func cubeLevel(v uint8) uint8 { return uint8((int(v) + 25) / 51) }

// WriteGIFImages is [WriteGIF] for frames of any kind. If every frame is an
// *image.Gray the GIF is WriteGIF's, 256 grey levels kept exactly. Otherwise
// (colour frames, e.g. from [GridC]) every pixel is quantised to the fixed
// [RGBCube] palette without dithering: each of R, G and B rounds to the
// nearest of its 6 levels, so a channel is off by at most 25 of 255 and a
// frame's colours do not depend on its neighbours. Frames must all have the
// same bounds.
func WriteGIFImages(path string, frames []image.Image, delay int) error {
	if len(frames) == 0 {
		return fmt.Errorf("write %s: no frames", path)
	}
	if delay < 0 {
		return fmt.Errorf("write %s: negative frame delay %d", path, delay)
	}
	grey := true
	for _, f := range frames {
		if _, ok := f.(*image.Gray); !ok {
			grey = false
		}
	}
	palette := RGBCube
	if grey {
		palette = make(color.Palette, 256)
		for i := range palette {
			palette[i] = grayOf(uint8(i))
		}
	}
	b := frames[0].Bounds()
	anim := &gif.GIF{LoopCount: 0, Config: image.Config{ColorModel: palette, Width: b.Dx(), Height: b.Dy()}}
	for i, f := range frames {
		if f.Bounds() != b {
			return fmt.Errorf("write %s: frame %d is %v, frame 0 is %v", path, i, f.Bounds(), b)
		}
		p := image.NewPaletted(image.Rect(0, 0, b.Dx(), b.Dy()), palette)
		if g, ok := f.(*image.Gray); ok && grey {
			// Palette index i is gray level i, so pixels copy over unchanged.
			for y := range b.Dy() {
				copy(p.Pix[y*p.Stride:y*p.Stride+b.Dx()], g.Pix[g.PixOffset(b.Min.X, b.Min.Y+y):])
			}
		} else if rgb, ok := f.(*image.NRGBA); ok { // GridC's pictures: read the bytes
			for y := range b.Dy() {
				row := rgb.Pix[rgb.PixOffset(b.Min.X, b.Min.Y+y):]
				for x := range b.Dx() {
					r, g, bl := row[4*x], row[4*x+1], row[4*x+2]
					p.Pix[y*p.Stride+x] = 36*cubeLevel(r) + 6*cubeLevel(g) + cubeLevel(bl)
				}
			}
		} else {
			for y := range b.Dy() {
				for x := range b.Dx() {
					c := color.NRGBAModel.Convert(f.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
					p.Pix[y*p.Stride+x] = 36*cubeLevel(c.R) + 6*cubeLevel(c.G) + cubeLevel(c.B)
				}
			}
		}
		d := delay
		if i == len(frames)-1 {
			d = max(5*delay, 100)
		}
		anim.Image = append(anim.Image, p)
		anim.Delay = append(anim.Delay, d)
	}
	return durable.Write(path, 0o644, func(w io.Writer) error { return gif.EncodeAll(w, anim) })
}
