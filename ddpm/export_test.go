package ddpm

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"maps"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
)

// gotchValues reads every parameter of m straight from its variable store, independently of
// Model.Weights: name → (shape, values).
func gotchValues(t *testing.T, m *Model) map[string]Array {
	t.Helper()
	out := map[string]Array{}
	for name, v := range m.VS.Variables() {
		shape, err := v.Size()
		if err != nil {
			t.Fatal(err)
		}
		data, err := float32s(&v)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = Array{Name: name, Shape: shape, Data: data}
	}
	return out
}

// parseSafetensors decodes a safetensors file by hand, from the format's definition (8-byte
// little-endian header length, JSON header, little-endian data at data_offsets), without the
// library that wrote it.
func parseSafetensors(t *testing.T, file []byte) (map[string]Array, map[string]string) {
	t.Helper()
	n := binary.LittleEndian.Uint64(file[:8])
	if n%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", n)
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(file[8:8+n], &header); err != nil {
		t.Fatalf("header: %v", err)
	}
	var meta map[string]string
	if err := json.Unmarshal(header["__metadata__"], &meta); err != nil {
		t.Fatalf("__metadata__: %v", err)
	}
	delete(header, "__metadata__")
	data := file[8+n:]
	out := map[string]Array{}
	end := uint64(0)
	for name, raw := range header {
		var info struct {
			DType       string   `json:"dtype"`
			Shape       []int64  `json:"shape"`
			DataOffsets []uint64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(raw, &info); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if info.DType != "F32" {
			t.Errorf("%s: dtype %s, want F32", name, info.DType)
		}
		a := Array{Name: name, Shape: info.Shape}
		for i := info.DataOffsets[0]; i < info.DataOffsets[1]; i += 4 {
			a.Data = append(a.Data, math.Float32frombits(binary.LittleEndian.Uint32(data[i:])))
		}
		out[name] = a
		end = max(end, info.DataOffsets[1])
	}
	if end != uint64(len(data)) {
		t.Errorf("tensors end at byte %d of %d data bytes", end, len(data))
	}
	return out, meta
}

func sameArrays(t *testing.T, what string, got []Array, want map[string]Array) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d tensors, want %d", what, len(got), len(want))
	}
	for _, g := range got {
		w, ok := want[g.Name]
		switch {
		case !ok:
			t.Errorf("%s: unexpected tensor %s", what, g.Name)
		case !slices.Equal(g.Shape, w.Shape):
			t.Errorf("%s: %s has shape %v, want %v", what, g.Name, g.Shape, w.Shape)
		case !slices.Equal(g.Data, w.Data):
			t.Errorf("%s: %s values differ", what, g.Name)
		}
	}
}

func TestSafetensorsRoundTrip(t *testing.T) {
	lockThread(t)
	tests := []struct {
		name string
		cfg  UNetConfig
	}{
		{"unconditional", UNetConfig{ImageChannels: 1, BaseChannels: 8, TimeEmbDim: 16}},
		{"conditional", UNetConfig{ImageChannels: 1, BaseChannels: 8, TimeEmbDim: 16, NumClasses: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ManualSeed(5)
			m, err := NewModel(tt.cfg, gotch.CPU)
			if err != nil {
				t.Fatal(err)
			}
			want := gotchValues(t, m)
			weights, err := m.Weights()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.IsSortedFunc(weights, func(a, b Array) int { return strings.Compare(a.Name, b.Name) }) {
				t.Error("Weights are not in name order")
			}
			var params int64
			for _, w := range weights {
				params += int64(len(w.Data))
			}
			if wantN := expectedParams(8, 16, int64(tt.cfg.NumClasses)); params != wantN {
				t.Errorf("exported %d parameters, the architecture has %d", params, wantN)
			}
			sameArrays(t, "Weights", weights, want)
			runtime.KeepAlive(m) // gotchValues read copies of its variable store's tensors

			meta := map[string]string{"format": "pt", "hash": "abc"}
			var buf bytes.Buffer
			if err := WriteSafetensors(&buf, weights, meta); err != nil {
				t.Fatal(err)
			}
			byHand, gotMeta := parseSafetensors(t, buf.Bytes())
			sameArrays(t, "file (parsed by hand)", weights, byHand)
			if !maps.Equal(gotMeta, meta) {
				t.Errorf("metadata %v, want %v", gotMeta, meta)
			}
			read, readMeta, err := ReadSafetensors(buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			sameArrays(t, "ReadSafetensors", read, want)
			if !maps.Equal(readMeta, meta) {
				t.Errorf("ReadSafetensors metadata %v, want %v", readMeta, meta)
			}
			var again bytes.Buffer
			if err := WriteSafetensors(&again, read, meta); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Bytes(), buf.Bytes()) {
				t.Error("writing the same tensors twice gave different bytes")
			}
		})
	}
}

func TestSafetensorsErrors(t *testing.T) {
	tests := []struct {
		name   string
		arrays []Array
		want   string
	}{
		{"short data", []Array{{Name: "w", Shape: []int64{2, 3}, Data: make([]float32, 5)}}, "6 values) but 5"},
		{"duplicate", []Array{{Name: "w", Shape: []int64{1}, Data: []float32{1}}, {Name: "w", Shape: []int64{1}, Data: []float32{2}}}, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := WriteSafetensors(&bytes.Buffer{}, tt.arrays, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestExportCheckpointWeights reads both weight sets back out of a saved checkpoint: they must be
// exactly the trainer's parameters and EMA averages, and the wrong requests must fail.
func TestExportCheckpointWeights(t *testing.T) {
	lockThread(t)
	cfg := UNetConfig{ImageChannels: 1, BaseChannels: 8, TimeEmbDim: 16}
	save := func(emaDecay float64) (*Trainer, string) {
		s, _ := LinearSchedule(100, 1e-4, 0.02)
		d, err := NewDiffusion(s, gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		ManualSeed(7)
		m, err := NewModel(cfg, gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := NewTrainer(m, d, TrainConfig{LR: 1e-2, EMADecay: emaDecay, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		x0, err := NoiseFor(1, 4, 1, 28, 28, gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		defer x0.MustDrop()
		for range 2 { // two steps, so that the EMA (decay 0.5) differs from the weights
			if _, err := tr.Step(x0, nil); err != nil {
				t.Fatal(err)
			}
		}
		dir := filepath.Join(t.TempDir(), "last.ckpt")
		if err := tr.SaveCheckpoint(dir, 1, 0); err != nil {
			t.Fatal(err)
		}
		return tr, dir
	}
	values := func(list []namedTensor) map[string]Array {
		out := map[string]Array{}
		for _, p := range list {
			shape, _ := p.tensor.Size()
			data, err := float32s(p.tensor)
			if err != nil {
				t.Fatal(err)
			}
			out[p.name] = Array{Name: p.name, Shape: shape, Data: data}
		}
		return out
	}
	withEMA, emaDir := save(0.5)
	raw, ema := values(withEMA.Model.params), values(withEMA.EMA.average)
	if slices.Equal(raw["init_conv.weight"].Data, ema["init_conv.weight"].Data) {
		t.Fatal("test setup: the EMA equals the weights, so the test could not tell them apart")
	}
	noEMA, rawDir := save(0)

	tests := []struct {
		name, dir, weights, wantSet string
		want                        map[string]Array
	}{
		{"default is ema", emaDir, "", WeightsEMA, ema},
		{"ema", emaDir, WeightsEMA, WeightsEMA, ema},
		{"raw", emaDir, WeightsRaw, WeightsRaw, raw},
		{"default without ema is raw", rawDir, "", WeightsRaw, values(noEMA.Model.params)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, set, err := CheckpointWeights(tt.dir, cfg, tt.weights)
			if err != nil {
				t.Fatal(err)
			}
			if set != tt.wantSet {
				t.Errorf("weight set %q, want %q", set, tt.wantSet)
			}
			sameArrays(t, tt.name, got, tt.want)
		})
	}

	errs := []struct {
		name, dir, weights string
		cfg                UNetConfig
		want               string
	}{
		{"ema missing", rawDir, WeightsEMA, cfg, "has no EMA weights"},
		{"unknown set", emaDir, "best", cfg, `unknown weight set "best"`},
		{"other model", emaDir, "", UNetConfig{ImageChannels: 1, BaseChannels: 16, TimeEmbDim: 16}, "does not match"},
		{"no checkpoint", filepath.Join(t.TempDir(), "none"), "", cfg, "no such file"},
	}
	runtime.KeepAlive(withEMA) // values read copies of their variable stores' tensors
	runtime.KeepAlive(noEMA)
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := CheckpointWeights(tt.dir, tt.cfg, tt.weights)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
