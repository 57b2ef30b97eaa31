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
	if len(frames) == 0 {
		return fmt.Errorf("write %s: no frames", path)
	}
	if delay < 0 {
		return fmt.Errorf("write %s: negative frame delay %d", path, delay)
	}
	palette := make(color.Palette, 256)
	for i := range palette {
		palette[i] = grayOf(uint8(i))
	}
	b := frames[0].Bounds()
	anim := &gif.GIF{LoopCount: 0, Config: image.Config{ColorModel: palette, Width: b.Dx(), Height: b.Dy()}}
	for i, f := range frames {
		if f.Bounds() != b {
			return fmt.Errorf("write %s: frame %d is %v, frame 0 is %v", path, i, f.Bounds(), b)
		}
		// Palette index i is gray level i, so pixels copy over unchanged.
		p := image.NewPaletted(image.Rect(0, 0, b.Dx(), b.Dy()), palette)
		for y := range b.Dy() {
			copy(p.Pix[y*p.Stride:y*p.Stride+b.Dx()], f.Pix[f.PixOffset(b.Min.X, b.Min.Y+y):])
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
