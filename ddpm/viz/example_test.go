package viz_test

import (
	"fmt"

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
