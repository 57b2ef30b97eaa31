package serve

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// The package's tests run the test binary itself as the generation child: with
// fakeChildEnv set, TestMain runs fakeChild instead of the tests. It speaks the child's
// protocol without libtorch: its images are flat grey at a level set by the seed, so the same
// request gives the same bytes and another seed other bytes, and its start event's sampler
// names the --autoguidance it was given ("fake, autoguidance 1.5"; -1 when none was). runner's
// own tests run the real child (runner/serve_e2e_test.go).
const (
	fakeChildEnv = "DDPMLAB_SERVE_FAKE_CHILD"
	// fakeDirEnv names a folder where the fake child records itself: pid.<pid> while it runs,
	// and running, created exclusively, so that two children at once fail loudly.
	fakeDirEnv = "DDPMLAB_SERVE_FAKE_DIR"
	// fakeHoldEnv makes the fake child wait, after its first frame, until <fakeDir>/go exists.
	fakeHoldEnv = "DDPMLAB_SERVE_FAKE_HOLD"
	// fakeFailEnv makes the fake child fail after its start event.
	fakeFailEnv = "DDPMLAB_SERVE_FAKE_FAIL"
)

func TestMain(m *testing.M) {
	if os.Getenv(fakeChildEnv) == "1" {
		os.Exit(fakeChild(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func fakeChild(args []string) int {
	if len(args) == 0 || args[0] != GenerateCommand {
		fmt.Fprintf(os.Stderr, "fake child: want %s, got %q\n", GenerateCommand, args)
		return 2
	}
	fs := flag.NewFlagSet("fake", flag.ContinueOnError)
	fs.String("store", "", "")
	fs.String("run", "", "")
	fs.String("sampler", "", "")
	fs.Float64("guidance", 0, "")
	autoGuidance := fs.Float64("autoguidance", -1, "")
	class := fs.Int("class", -1, "")
	seed := fs.Int64("seed", 0, "")
	steps := fs.Int("steps", 10, "")
	n := fs.Int("n", 1, "")
	every := fs.Int("every", 1, "")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	dir := os.Getenv(fakeDirEnv)
	if dir != "" {
		pidFile := filepath.Join(dir, "pid."+strconv.Itoa(os.Getpid()))
		os.WriteFile(pidFile, nil, 0o644)
		defer os.Remove(pidFile)
		running, err := os.OpenFile(filepath.Join(dir, "running"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fake child: another child is running")
			return 1
		}
		running.Close()
		defer os.Remove(filepath.Join(dir, "running"))
	}
	emit := func(ev ChildEvent) {
		ev.Sent = time.Now().UnixNano()
		b, _ := json.Marshal(ev)
		os.Stdout.Write(append(b, '\n'))
	}
	level := uint8(*seed%200) + uint8(max(*class, 0))
	img := image.NewGray(image.Rect(0, 0, 4**n, 4))
	for i := range img.Pix {
		img.Pix[i] = level
	}
	var buf bytes.Buffer
	png.Encode(&buf, img)
	emit(ChildEvent{Kind: EventStart, Sampler: fmt.Sprintf("fake, autoguidance %g", *autoGuidance), Weights: "ema", Steps: *steps})
	if os.Getenv(fakeFailEnv) == "1" {
		fmt.Fprintln(os.Stderr, "fake child: libtorch said no")
		return 1
	}
	for step := 1; step <= *steps; step++ {
		if step%*every != 0 && step != *steps {
			continue
		}
		emit(ChildEvent{Kind: EventFrame, Step: step, Steps: *steps, T: *steps - step, X: buf.Bytes(), X0: buf.Bytes(), MsPerStep: 1})
		if step == *every && os.Getenv(fakeHoldEnv) == "1" {
			for {
				if _, err := os.Stat(filepath.Join(dir, "go")); err == nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	var anim bytes.Buffer
	pal := image.NewPaletted(img.Bounds(), []color.Color{color.Gray{Y: level}})
	gif.EncodeAll(&anim, &gif.GIF{Image: []*image.Paletted{pal}, Delay: []int{8}})
	emit(ChildEvent{Kind: EventDone, PNG: buf.Bytes(), GIF: anim.Bytes(), Seconds: 0.01})
	return 0
}
