package quality

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sugarme/gotch/ts"
	"gonum.org/v1/gonum/mat"

	"github.com/ddpmlab/ddpmlab/ddpm/durable"
)

// writeIDX writes a raw IDX file: magic, big-endian dimensions, then the bytes.
func writeIDX(t *testing.T, path string, magic uint32, dims []uint32, body []byte) {
	t.Helper()
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, magic)
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, d)
	}
	b.Write(body)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// syntheticData writes a tiny, easy MNIST-shaped dataset into a new folder: class k is a bright
// 6×6 square at a position that depends on k, on a noisy background.
func syntheticData(t *testing.T, nTrain, nTest int, seed uint64) string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(seed, 7))
	split := func(images, labels string, n int) {
		pix := make([]byte, n*28*28)
		lab := make([]byte, n)
		for i := 0; i < n; i++ {
			k := i % NumClasses
			lab[i] = byte(k)
			img := pix[i*784 : (i+1)*784]
			for j := range img {
				img[j] = byte(rng.IntN(60))
			}
			r0, c0 := 2+(k/5)*12, 1+(k%5)*5
			for r := r0; r < r0+6; r++ {
				for c := c0; c < c0+5; c++ {
					img[r*28+c] = 255
				}
			}
		}
		writeIDX(t, filepath.Join(dir, images), 2051, []uint32{uint32(n), 28, 28}, pix)
		writeIDX(t, filepath.Join(dir, labels), 2049, []uint32{uint32(n)}, lab)
	}
	split("train-images-idx3-ubyte", "train-labels-idx1-ubyte", nTrain)
	split("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", nTest)
	return dir
}

// tinyConfig trains in well under a second.
var tinyConfig = TrainConfig{Conv1: 4, Conv2: 4, Hidden: 8, Epochs: 4, BatchSize: 20, LR: 1e-2, Seed: 1}

func TestLoadOrTrainCaches(t *testing.T) {
	lockThread(t)
	dataDir := syntheticData(t, 200, 50, 1)
	cacheDir := t.TempDir()
	live := len(ts.ExistingTensors)

	open := func(cfg TrainConfig, dataDir string) (*Classifier, string) {
		t.Helper()
		var log strings.Builder
		c, err := LoadOrTrainWith(context.Background(), Options{Dataset: "mnist", DataDir: dataDir, CacheDir: cacheDir, Config: &cfg, Log: &log})
		if err != nil {
			t.Fatal(err)
		}
		return c, log.String()
	}

	first, log := open(tinyConfig, dataDir)
	if !strings.Contains(log, "training the mnist reference classifier") {
		t.Errorf("first call did not train; log:\n%s", log)
	}
	if !regexp.MustCompile(`^mnist-[0-9a-f]{12}$`).MatchString(filepath.Base(first.Dir)) || filepath.Dir(first.Dir) != cacheDir {
		t.Errorf("cache folder %s, want %s/mnist-<12 hex digits>", first.Dir, cacheDir)
	}
	if first.Accuracy < 0.5 { // chance is 0.1
		t.Errorf("accuracy %.2f on the easy synthetic set, want >= 0.5", first.Accuracy)
	}
	var info Info
	if b, err := os.ReadFile(filepath.Join(first.Dir, infoFile)); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	if info.Config != tinyConfig || info.TestAccuracy != first.Accuracy || info.TrainImages != 200 || info.TestImages != 50 ||
		len(info.DataFiles) != 4 || info.TrainSeconds <= 0 || info.Key[:12] != strings.TrimPrefix(filepath.Base(first.Dir), "mnist-") {
		t.Errorf("classifier.json: %+v", info)
	}
	entries, _ := os.ReadDir(cacheDir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("cache holds %q, want only the classifier folder (no lock, no temp folder)", names)
	}

	// Same data and config: loaded, not trained, and the same network.
	second, log := open(tinyConfig, dataDir)
	if log != "" {
		t.Errorf("second call logged %q, want a silent load", log)
	}
	if second.Dir != first.Dir || second.Accuracy != first.Accuracy {
		t.Errorf("second call: %s %.4f, want %s %.4f", second.Dir, second.Accuracy, first.Dir, first.Accuracy)
	}
	images := make([]float32, 3*784)
	for i := range images {
		images[i] = float32(i%97)/48 - 1
	}
	f1, p1, err := first.Features(images, 3)
	if err != nil {
		t.Fatal(err)
	}
	f2, p2, err := second.Features(images, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !mat.Equal(f1, f2) || !mat.Equal(p1, p2) {
		t.Error("the loaded classifier computes different features than the trained one")
	}

	// A different config or different data: a different folder.
	other := tinyConfig
	other.Seed = 2
	third, _ := open(other, dataDir)
	fourth, _ := open(tinyConfig, syntheticData(t, 200, 50, 2))
	if third.Dir == first.Dir || fourth.Dir == first.Dir || third.Dir == fourth.Dir {
		t.Errorf("folders %s, %s, %s: want three different ones", first.Dir, third.Dir, fourth.Dir)
	}

	for _, c := range []*Classifier{first, second, third, fourth} {
		c.Close()
	}
	if got := len(ts.ExistingTensors); got != live {
		t.Errorf("training and loading leaked tensors: %d live before, %d after Close", live, got)
	}
	if _, _, err := first.Features(images, 3); err == nil {
		t.Error("Features after Close: no error")
	}
}

func TestLoadOrTrainLock(t *testing.T) {
	lockThread(t)
	dataDir := syntheticData(t, 100, 20, 1)
	cacheDir := t.TempDir()
	cfg := tinyConfig
	files, err := hashDataFiles(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	key, err := cacheKey("mnist", files, cfg)
	if err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(cacheDir, "mnist-"+key[:12]) + ".lock"
	host, _ := os.Hostname()
	writeLock := func(pid int, when time.Time) {
		b, _ := json.Marshal(durable.LockInfo{Host: host, PID: pid, Time: when})
		if err := os.WriteFile(lock, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Held by a live process (this one): wait until the context ends.
	writeLock(os.Getpid(), time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	var log strings.Builder
	_, err = LoadOrTrainWith(ctx, Options{Dataset: "mnist", DataDir: dataDir, CacheDir: cacheDir, Config: &cfg, Log: &log})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(log.String(), "waiting for") {
		t.Errorf("with the lock held: err %v, log %q; want a deadline error after waiting", err, log.String())
	}

	// Held by a process that has exited: broken, then trained.
	done := exec.Command("true")
	if err := done.Run(); err != nil {
		t.Skipf("cannot run a process to get a dead pid: %v", err)
	}
	writeLock(done.Process.Pid, time.Now())
	log.Reset()
	c, err := LoadOrTrainWith(context.Background(), Options{Dataset: "mnist", DataDir: dataDir, CacheDir: cacheDir, Config: &cfg, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !strings.Contains(log.String(), "breaking stale lock") {
		t.Errorf("log %q, want it to break the stale lock", log.String())
	}
	if _, err := os.Stat(lock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file left behind: %v", err)
	}
}
