package data

import (
	"math"
	"slices"
	"testing"
)

// px maps 8-bit values to the [-1, 1] scale the readers use.
func px(v ...float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x/127.5 - 1)
	}
	return out
}

func TestConvert(t *testing.T) {
	tests := []struct {
		name             string
		img              []float32
		c, h, w          int
		outC, outH, outW int
		mode             string
		want             []float32
	}{
		{name: "identity", img: px(1, 2, 3, 4), c: 1, h: 2, w: 2, outC: 1, outH: 2, outW: 2, want: px(1, 2, 3, 4)},
		{name: "shrink 4x4 to 2x2 averages blocks", c: 1, h: 4, w: 4, outC: 1, outH: 2, outW: 2,
			img: px(0, 4, 8, 8,
				4, 0, 8, 8,
				100, 100, 0, 0,
				100, 100, 0, 40),
			want: px(2, 8, 100, 10)},
		{name: "enlarge 2x2 to 4x4 repeats", c: 1, h: 2, w: 2, outC: 1, outH: 4, outW: 4,
			img: px(10, 20, 30, 40),
			want: px(10, 10, 20, 20,
				10, 10, 20, 20,
				30, 30, 40, 40,
				30, 30, 40, 40)},
		// Three source pixels into two: each output covers 1.5 of them, weights (2/3, 1/3) and (1/3, 2/3).
		{name: "3 to 2 by overlap", c: 1, h: 1, w: 3, outC: 1, outH: 1, outW: 2,
			img: px(0, 90, 180), want: px(30, 150)},
		// 4 wide, 2 high: resize squeezes the width, center_crop keeps columns 1 and 2.
		{name: "resize stretches", c: 1, h: 2, w: 4, outC: 1, outH: 2, outW: 2, mode: Resize,
			img: px(0, 10, 20, 30, 40, 50, 60, 70), want: px(5, 25, 45, 65)},
		{name: "center_crop keeps the middle square", c: 1, h: 2, w: 4, outC: 1, outH: 2, outW: 2, mode: CenterCrop,
			img: px(0, 10, 20, 30, 40, 50, 60, 70), want: px(10, 20, 50, 60)},
		// 5 high, 3 wide: the middle 3x3 starts at row (5-3)/2 = 1; then shrunk to 1x1, the mean of rows 1..3.
		{name: "center_crop then shrink", c: 1, h: 5, w: 3, outC: 1, outH: 1, outW: 1, mode: CenterCrop,
			img: px(255, 255, 255, 0, 0, 0, 9, 9, 9, 18, 18, 18, 255, 255, 255), want: px(9)},
		{name: "RGB to grey is BT.601 luma", c: 3, h: 1, w: 2, outC: 1, outH: 1, outW: 2,
			img:  px(255, 0 /* R */, 0, 100 /* G */, 0, 200 /* B */),
			want: px(0.299*255, 0.587*100+0.114*200)},
		{name: "grey to RGB copies", c: 1, h: 1, w: 2, outC: 3, outH: 1, outW: 2,
			img: px(7, 250), want: px(7, 250, 7, 250, 7, 250)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := convert(tt.img, tt.c, tt.h, tt.w, tt.outC, tt.outH, tt.outW, tt.mode)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d values, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if math.Abs(float64(got[i]-tt.want[i])) > 1e-6 {
					t.Fatalf("got %v\nwant %v", got, tt.want)
				}
			}
		})
	}
	if _, err := convert(px(1, 2), 1, 1, 2, 2, 1, 2, ""); err == nil {
		t.Error("1 to 2 channels: no error")
	}
}

func TestAreaWeightsSumToOne(t *testing.T) {
	for _, nm := range [][2]int{{3, 2}, {7, 3}, {28, 32}, {100, 32}, {5, 5}, {2, 7}} {
		for i, ws := range areaWeights(nm[0], nm[1]) {
			var s float64
			for _, tp := range ws {
				s += tp.w
			}
			if math.Abs(s-1) > 1e-12 {
				t.Errorf("areaWeights(%d, %d)[%d] sums to %v", nm[0], nm[1], i, s)
			}
		}
	}
}

func TestSpecShape(t *testing.T) {
	tests := []struct {
		spec    Spec
		c, h, w int
		classes int
	}{
		{Spec{Name: "mnist"}, 1, 28, 28, 10},
		{Spec{Name: "fashion_mnist"}, 1, 28, 28, 10},
		{Spec{Name: "cifar10"}, 3, 32, 32, 10},
		{Spec{Name: "cifar10", Channels: 1, ImageSize: 16}, 1, 16, 16, 10},
		{Spec{Name: "cifar10", ImageSize: 64, Resize: CenterCrop}, 3, 64, 64, 10},
	}
	for _, tt := range tests {
		info, err := tt.spec.Inspect()
		if err != nil {
			t.Fatalf("%+v: %v", tt.spec, err)
		}
		if info.C != tt.c || info.H != tt.h || info.W != tt.w || len(info.Classes) != tt.classes || info.Digest != "" {
			t.Errorf("%+v: Inspect = %+v; want %dx%dx%d and %d classes", tt.spec, info, tt.c, tt.h, tt.w, tt.classes)
		}
	}
	for _, bad := range []Spec{{Name: "cifar10", Channels: 2}, {Name: "mnist", Resize: "stretch"},
		{Name: "cifar10", Resize: CenterCrop}, {Name: "imagenet"}} {
		if _, _, _, err := bad.Shape(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

// Spec.Load converts a named dataset too: CIFAR-10 to 16x16 grey.
func TestSpecLoadConvertsCIFAR(t *testing.T) {
	dir := writeFiles(t, t.TempDir(), fakeCIFAR(2))
	s, err := Spec{Name: "cifar10", Dir: dir, ImageSize: 16, Channels: 1}.Load(Test)
	if err != nil {
		t.Fatal(err)
	}
	if s.N != 2 || s.C() != 1 || s.Height != 16 || s.Width != 16 || len(s.Images) != 2*256 {
		t.Fatalf("N=%d C=%d %dx%d len %d", s.N, s.C(), s.Height, s.Width, len(s.Images))
	}
	// Test record 0 is global record 10: R = 0, G = 255, B(k) = (10 + k) mod 256. Output pixel
	// (0, 0) averages source rows 0..1, columns 0..1: B = 10, 11, 42, 43, mean 26.5.
	want := float32((0.299*0+0.587*255+0.114*26.5)/127.5 - 1)
	if got := s.Image(0)[0]; math.Abs(float64(got-want)) > 1e-6 {
		t.Errorf("pixel (0,0) = %v, want %v", got, want)
	}
	if !slices.Equal(s.Labels, []uint8{0, 1}) {
		t.Errorf("labels %v", s.Labels)
	}
}
