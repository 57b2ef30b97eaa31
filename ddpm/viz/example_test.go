package viz_test

import (
	"fmt"
	"image"

	"github.com/ddpmlab/ddpmlab/ddpm/viz"
)

// Two 1×2 images side by side with 1 pixel of white padding: -1 is black
// (0), 0 is mid-gray (128), 1 is white (255).
func Example() {
	images := []float32{
		-1, 1, // image 0
		0, -1, // image 1
	}
	g := viz.Grid(images, 2, 1, 2, 2, 1, 1)
	fmt.Println(g.Bounds().Dx(), "x", g.Bounds().Dy())
	for y := range g.Bounds().Dy() {
		fmt.Println(g.Pix[y*g.Stride : (y+1)*g.Stride])
	}
	// Output:
	// 7 x 3
	// [255 255 255 255 255 255 255]
	// [255 0 255 255 128 0 255]
	// [255 255 255 255 255 255 255]
}

// One 1×2 colour image, channel-major (its R plane, then G, then B), without padding: the left
// pixel is pure red, the right one mid-grey.
func ExampleGridC() {
	images := []float32{
		1, 0, // R
		-1, 0, // G
		-1, 0, // B
	}
	img := viz.GridC(images, 1, 3, 1, 2, 1, 0, 1).(*image.NRGBA)
	fmt.Println(img.NRGBAAt(0, 0), img.NRGBAAt(1, 0))
	// Output:
	// {255 0 0 255} {128 128 128 255}
}
