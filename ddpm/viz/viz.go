// Package viz draws pictures of images whose pixels lie in [-1, 1], the range
// a DDPM works in: grids of samples, labeled grids (forward-diffusion figures,
// denoising strips, one row per class) and animated GIFs, written to disk
// atomically.
//
// Images are given as one []float32 holding n images of h×w pixels, image
// after image, row-major, the layout of data.Set.Images. A pixel x is shown
// as the gray level GrayLevel(x): -1 is black, 1 is white.
//
// Colour images (c = 3 channels) are given channel-major, each image its R
// plane, then G, then B (data.Set's CHW layout); [GridC] and [LabeledGridC]
// draw them as *image.NRGBA, each channel through GrayLevel, and draw c = 1
// exactly as [Grid] and [LabeledGrid] do. [WriteGIFImages] writes colour
// frames with a fixed palette, the 6×6×6 colour cube (see [RGBCube]).
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
	l := newLayout(images, n, 1, h, w, cols, pad, scale)
	dst := l.canvas()
	l.drawTiles(dst, images)
	return dst
}

// GridC is [Grid] for images of c channels, c·h·w values each, channel-major.
// For c = 1 it returns Grid's *image.Gray; for c = 3 an opaque *image.NRGBA
// of the same size whose pixel has R, G and B = GrayLevel of the image's R, G
// and B values, with white (PadGray) padding. Other c panic.
func GridC(images []float32, n, c, h, w, cols, pad, scale int) image.Image {
	if c == 1 {
		return Grid(images, n, h, w, cols, pad, scale)
	}
	l := newLayout(images, n, c, h, w, cols, pad, scale)
	dst := l.canvasRGB()
	l.drawTilesRGB(dst, images)
	return dst
}

// layout places tiles of h×w images, each pixel scaled, in cells of
// cellW×cellH separated by pad, after a margin of left and top pixels.
// Tiles are centred in their cells; cells are larger than tiles only when
// labels need the room.
type layout struct {
	n, c, h, w      int
	scale           int
	cols, rows, pad int
	cellW, cellH    int
	left, top       int
}

func newLayout(images []float32, n, c, h, w, cols, pad, scale int) layout {
	if h < 1 || w < 1 || n < 0 {
		panic(fmt.Sprintf("viz: bad image shape: %d images of %dx%d", n, h, w))
	}
	if c != 1 && c != 3 {
		panic(fmt.Sprintf("viz: images must have 1 or 3 channels, got %d", c))
	}
	if len(images) < n*c*h*w {
		panic(fmt.Sprintf("viz: %d images of %dx%dx%d need %d values, got %d", n, c, h, w, n*c*h*w, len(images)))
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
	return layout{n: n, c: c, h: h, w: w, scale: scale, cols: cols, rows: rows, pad: pad,
		cellW: w * scale, cellH: h * scale}
}

// bounds is the rectangle of the whole picture.
func (l layout) bounds() image.Rectangle {
	W := l.left + l.pad + l.cols*(l.cellW+l.pad)
	H := l.top + l.pad + l.rows*(l.cellH+l.pad)
	return image.Rect(0, 0, W, H)
}

// canvas returns a new picture of the layout's size filled with PadGray.
func (l layout) canvas() *image.Gray {
	dst := image.NewGray(l.bounds())
	for i := range dst.Pix {
		dst.Pix[i] = PadGray
	}
	return dst
}

// canvasRGB returns a new opaque colour picture of the layout's size filled with PadGray.
func (l layout) canvasRGB() *image.NRGBA {
	dst := image.NewNRGBA(l.bounds())
	for i := range dst.Pix {
		dst.Pix[i] = PadGray // R, G, B and A alike: opaque white
	}
	return dst
}

// cell returns the rectangle of the cell in grid row r and column c.
func (l layout) cell(r, c int) image.Rectangle {
	x := l.left + l.pad + c*(l.cellW+l.pad)
	y := l.top + l.pad + r*(l.cellH+l.pad)
	return image.Rect(x, y, x+l.cellW, y+l.cellH)
}

// origin returns the top-left corner of image i's tile, centred in its cell.
func (l layout) origin(i int) (x0, y0 int) {
	cell := l.cell(i/l.cols, i%l.cols)
	return cell.Min.X + (cell.Dx()-l.w*l.scale)/2, cell.Min.Y + (cell.Dy()-l.h*l.scale)/2
}

// drawTilesRGB draws every 3-channel image into its cell of an NRGBA picture.
func (l layout) drawTilesRGB(dst *image.NRGBA, images []float32) {
	k, tw, th, plane := l.scale, l.w*l.scale, l.h*l.scale, l.h*l.w
	for i := range l.n {
		x0, y0 := l.origin(i)
		img := images[i*3*plane : (i+1)*3*plane]
		for y := range th {
			row := dst.Pix[(y0+y)*dst.Stride+4*x0:]
			off := (y / k) * l.w
			for x := range tw {
				j := off + x/k
				row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = GrayLevel(img[j]), GrayLevel(img[plane+j]), GrayLevel(img[2*plane+j]), 255
			}
		}
	}
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
