package viz

import (
	"image"
	"image/color"
	"image/draw"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// face is the font of labels: 7×13 pixels a character, ASCII only (other
// characters are drawn as a box).
var face = basicfont.Face7x13

// LabeledGrid is [Grid] with text: colLabels[c] is written above column c
// and rowLabels[r] to the left of row r, in black on a PadGray margin. It
// serves forward-diffusion figures (one row per image, one column per
// timestep, colLabels "t=0", "t=50", …), denoising strips (one row) and
// class rows (rowLabels "0" … "9" or "T-shirt/top", …).
//
// Text is drawn max(1, scale/2) times the size of a 7×13 bitmap font, so
// about 8 characters fit over a column. A column or row whose label is wider
// or taller than its tiles is widened, not clipped; tiles stay centred in it.
// A nil or empty slice adds no margin; missing labels are left blank and
// extra ones ignored. With both slices empty the result equals Grid's.
func LabeledGrid(images []float32, n, h, w, cols, pad, scale int, colLabels, rowLabels []string) *image.Gray {
	return labeledGrid(images, n, 1, h, w, cols, pad, scale, colLabels, rowLabels).(*image.Gray)
}

// LabeledGridC is [LabeledGrid] for images of c channels, c·h·w values each,
// channel-major, as [GridC] draws them: c = 1 gives LabeledGrid's
// *image.Gray, c = 3 an *image.NRGBA with the same layout and black labels.
func LabeledGridC(images []float32, n, c, h, w, cols, pad, scale int, colLabels, rowLabels []string) image.Image {
	return labeledGrid(images, n, c, h, w, cols, pad, scale, colLabels, rowLabels)
}

func labeledGrid(images []float32, n, c, h, w, cols, pad, scale int, colLabels, rowLabels []string) image.Image {
	l := newLayout(images, n, c, h, w, cols, pad, scale)
	k := max(1, l.scale/2)   // text scale
	lineH := face.Height * k // height of one line of text
	gap := max(2*k, l.pad)   // space around text
	colLabels = colLabels[:min(len(colLabels), l.cols)]
	rowLabels = rowLabels[:min(len(rowLabels), l.rows)]

	if len(colLabels) > 0 {
		l.top = lineH + gap
		for _, s := range colLabels {
			l.cellW = max(l.cellW, textWidth(s)*k+2*gap) // keep neighbours apart
		}
	}
	if len(rowLabels) > 0 {
		wmax := 0
		for _, s := range rowLabels {
			wmax = max(wmax, textWidth(s)*k)
		}
		l.left = wmax + 2*gap
		l.cellH = max(l.cellH, lineH)
	}

	var dst draw.Image
	var set func(x, y int, v uint8)
	if c == 1 {
		g := l.canvas()
		l.drawTiles(g, images)
		dst, set = g, func(x, y int, v uint8) { g.SetGray(x, y, grayOf(v)) }
	} else {
		rgb := l.canvasRGB()
		l.drawTilesRGB(rgb, images)
		dst, set = rgb, func(x, y int, v uint8) { rgb.SetNRGBA(x, y, color.NRGBA{R: v, G: v, B: v, A: 255}) }
	}
	for c, s := range colLabels {
		cell := l.cell(0, c)
		x := cell.Min.X + (cell.Dx()-textWidth(s)*k)/2
		drawText(dst.Bounds(), set, image.Pt(x, l.top-gap-lineH), s, k)
	}
	for r, s := range rowLabels {
		cell := l.cell(r, 0)
		x := l.left - gap - textWidth(s)*k // right-aligned against the grid
		drawText(dst.Bounds(), set, image.Pt(x, cell.Min.Y+(cell.Dy()-lineH)/2), s, k)
	}
	return dst
}

// textWidth returns the width of s in face, unscaled.
func textWidth(s string) int {
	return font.MeasureString(face, s).Ceil()
}

// drawText draws s in black with its top-left corner at p, each font pixel a
// k×k block, through set (which writes one grey level). Pixels outside b are
// dropped.
func drawText(b image.Rectangle, set func(x, y int, v uint8), p image.Point, s string, k int) {
	w := textWidth(s)
	if w == 0 {
		return
	}
	// Render at 1:1 into white, then copy the dark pixels scaled.
	txt := image.NewGray(image.Rect(0, 0, w, face.Height))
	for i := range txt.Pix {
		txt.Pix[i] = 255
	}
	d := font.Drawer{Dst: txt, Src: image.Black, Face: face, Dot: fixed.P(0, face.Ascent)}
	d.DrawString(s)
	for y := range face.Height * k {
		for x := range w * k {
			if v := txt.Pix[(y/k)*txt.Stride+x/k]; v < 255 {
				if q := p.Add(image.Pt(x, y)); q.In(b) {
					set(q.X, q.Y, v)
				}
			}
		}
	}
}
