package data

import "fmt"

// The values of [Spec.Resize]: how an image becomes S×S.
const (
	// Resize resizes the whole image to S×S with area interpolation (below);
	// a non-square image is stretched.
	Resize = "resize"
	// CenterCrop crops the largest centred square, then resizes it to S×S as
	// Resize does, so the aspect ratio is kept and the borders of the longer
	// side are lost. An odd margin leaves the extra row or column at the
	// bottom or right.
	CenterCrop = "center_crop"
)

// Luma weights of ITU-R BT.601, the grey value Y = 0.299 R + 0.587 G + 0.114 B
// (the weights of Go's color.GrayModel and of PIL's "L" mode).
const lumaR, lumaG, lumaB = 0.299, 0.587, 0.114

// convert turns one image (c, h, w) of values in [-1, 1] into (outC, outH,
// outW): channels first (RGB to grey by BT.601 luma, grey to RGB by copying
// the plane), then the crop, then area interpolation to outH×outW.
//
// Area interpolation ("box" resampling; OpenCV's INTER_AREA when shrinking):
// output pixel (i, j) covers the source rectangle [i·h/outH, (i+1)·h/outH) ×
// [j·w/outW, (j+1)·w/outW) and is the mean of the source pixels under it,
// each weighted by the area it shares with that rectangle. Shrinking by a
// whole factor averages blocks exactly; enlarging by a whole factor repeats
// pixels. All three steps are affine maps whose weights sum to 1, so they
// give the same result in [-1, 1] as in [0, 255].
func convert(img []float32, c, h, w, outC, outH, outW int, mode string) ([]float32, error) {
	if len(img) != c*h*w {
		return nil, fmt.Errorf("image has %d values, want %d×%d×%d", len(img), c, h, w)
	}
	// 1. Channels.
	planes := make([][]float32, c)
	for k := range planes {
		planes[k] = img[k*h*w : (k+1)*h*w]
	}
	switch {
	case outC == c:
	case c == 3 && outC == 1:
		y := make([]float32, h*w)
		for i := range y {
			y[i] = float32(lumaR*float64(planes[0][i]) + lumaG*float64(planes[1][i]) + lumaB*float64(planes[2][i]))
		}
		planes = [][]float32{y}
	case c == 1 && outC == 3:
		planes = [][]float32{planes[0], planes[0], planes[0]}
	default:
		return nil, fmt.Errorf("cannot convert %d channels to %d", c, outC)
	}

	// 2. The crop: the largest centred square.
	y0, x0, ch, cw := 0, 0, h, w
	switch mode {
	case Resize, "":
	case CenterCrop:
		m := min(h, w)
		y0, x0, ch, cw = (h-m)/2, (w-m)/2, m, m
	default:
		return nil, fmt.Errorf("unknown resize mode %q (want %q or %q)", mode, Resize, CenterCrop)
	}

	// 3. Area interpolation, separably: rows (along x), then columns (along y).
	wx, wy := areaWeights(cw, outW), areaWeights(ch, outH)
	out := make([]float32, 0, outC*outH*outW)
	tmp := make([]float64, ch*outW)
	for _, p := range planes {
		for y := range ch {
			row := p[(y0+y)*w+x0 : (y0+y)*w+x0+cw]
			for j, ws := range wx {
				var s float64
				for _, t := range ws {
					s += t.w * float64(row[t.src])
				}
				tmp[y*outW+j] = s
			}
		}
		for _, ws := range wy {
			for j := range outW {
				var s float64
				for _, t := range ws {
					s += t.w * tmp[t.src*outW+j]
				}
				out = append(out, float32(s))
			}
		}
	}
	return out, nil
}

// tap is one source pixel and its weight in an output pixel.
type tap struct {
	src int
	w   float64
}

// areaWeights returns, for each of m output pixels along a line of n source
// pixels, the source pixels it overlaps and their weights: the overlap
// length divided by the output pixel's length n/m, so each list sums to 1.
func areaWeights(n, m int) [][]tap {
	out := make([][]tap, m)
	if n == m {
		for i := range out {
			out[i] = []tap{{i, 1}}
		}
		return out
	}
	for i := range out {
		// The output pixel covers [lo, hi) in source pixels; lo = i·n/m, kept as
		// the fraction i·n / m so that whole-factor cases are exact.
		lo, hi := float64(i*n)/float64(m), float64((i+1)*n)/float64(m)
		for j := (i * n) / m; j < n && float64(j) < hi; j++ {
			ov := min(hi, float64(j+1)) - max(lo, float64(j))
			if ov > 0 {
				out[i] = append(out[i], tap{j, ov * float64(m) / float64(n)})
			}
		}
	}
	return out
}
