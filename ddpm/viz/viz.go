// Package viz draws pictures of images whose pixels lie in [-1, 1], the range
// a DDPM works in: grids of samples, labeled grids (forward-diffusion figures,
// denoising strips, one row per class) and animated GIFs, written to disk
// atomically.
//
// Images are given as one []float32 holding n images of h×w pixels, image
// after image, row-major, the layout of data.Set.Images. A pixel x is shown
// as the gray level GrayLevel(x): -1 is black, 1 is white.
//
// The package is plain Go: it does not use libtorch.
package viz

import (
	"fmt"
	"image"
	"math"
)

// PadGray is the gray level of the padding between tiles and of the margins
// that hold labels: white, so that tiles of mostly black images stay apart.
const PadGray uint8 = 255

// GrayLevel maps a pixel value in [-1, 1] to a gray level:
// round(clamp((x+1)/2, 0, 1) * 255). NaN maps to 0.
func GrayLevel(x float32) uint8 {
	v := (float64(x) + 1) / 2
	switch {
	case !(v > 0): // v <= 0 or NaN
		return 0
	case v >= 1:
		return 255
	}
	return uint8(math.Round(v * 255))
}

// Grid lays out n images, each h×w with values in [-1, 1], left to right and
// top to bottom in a grid with cols columns, as one grayscale picture.
// Each pixel becomes a scale×scale block (nearest neighbour), and pad pixels
// of PadGray separate the tiles and surround the grid, so the picture is
// cols*(w*scale+pad)+pad wide and rows*(h*scale+pad)+pad high, with
// rows = ceil(n/cols).
//
// cols below 1 or above n means n (one row); scale below 1 means 1; pad below
// 0 means 0. Grid panics if h or w is below 1, n is negative, or images holds
// fewer than n*h*w values.
func Grid(images []float32, n, h, w, cols, pad, scale int) *image.Gray {
	l := newLayout(images, n, h, w, cols, pad, scale)
	dst := l.canvas()
	l.drawTiles(dst, images)
	return dst
}

// layout places tiles of h×w images, each pixel scaled, in cells of
// cellW×cellH separated by pad, after a margin of left and top pixels.
// Tiles are centred in their cells; cells are larger than tiles only when
// labels need the room.
type layout struct {
	n, h, w, scale  int
	cols, rows, pad int
	cellW, cellH    int
	left, top       int
}

func newLayout(images []float32, n, h, w, cols, pad, scale int) layout {
	if h < 1 || w < 1 || n < 0 {
		panic(fmt.Sprintf("viz: bad image shape: %d images of %dx%d", n, h, w))
	}
	if len(images) < n*h*w {
		panic(fmt.Sprintf("viz: %d images of %dx%d need %d values, got %d", n, h, w, n*h*w, len(images)))
	}
	if cols < 1 || cols > n {
		cols = n
	}
	scale = max(scale, 1)
	pad = max(pad, 0)
	rows := 0
	if cols > 0 {
		rows = (n + cols - 1) / cols
	}
	return layout{n: n, h: h, w: w, scale: scale, cols: cols, rows: rows, pad: pad,
		cellW: w * scale, cellH: h * scale}
}

// canvas returns a new picture of the layout's size filled with PadGray.
func (l layout) canvas() *image.Gray {
	W := l.left + l.pad + l.cols*(l.cellW+l.pad)
	H := l.top + l.pad + l.rows*(l.cellH+l.pad)
	dst := image.NewGray(image.Rect(0, 0, W, H))
	for i := range dst.Pix {
		dst.Pix[i] = PadGray
	}
	return dst
}

// cell returns the rectangle of the cell in grid row r and column c.
func (l layout) cell(r, c int) image.Rectangle {
	x := l.left + l.pad + c*(l.cellW+l.pad)
	y := l.top + l.pad + r*(l.cellH+l.pad)
	return image.Rect(x, y, x+l.cellW, y+l.cellH)
}

// drawTiles draws every image into its cell.
func (l layout) drawTiles(dst *image.Gray, images []float32) {
	k, tw, th := l.scale, l.w*l.scale, l.h*l.scale
	for i := range l.n {
		cell := l.cell(i/l.cols, i%l.cols)
		x0 := cell.Min.X + (cell.Dx()-tw)/2
		y0 := cell.Min.Y + (cell.Dy()-th)/2
		img := images[i*l.h*l.w : (i+1)*l.h*l.w]
		for y := range th {
			row := dst.Pix[(y0+y)*dst.Stride+x0:]
			src := img[(y/k)*l.w:]
			for x := range tw {
				row[x] = GrayLevel(src[x/k])
			}
		}
	}
}
