package store

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ddpmlab/ddpmlab/ddpm/durable"
)

// Summary is the content of summary.json, written when a run is done.
type Summary struct {
	FinalLoss          float64 `json:"final_loss"`
	BestLoss           float64 `json:"best_loss"`
	TrainSeconds       float64 `json:"train_seconds"`
	ImagesPerSec       float64 `json:"images_per_sec"`
	ParamCount         int64   `json:"param_count"`
	Weights            string  `json:"weights"` // "ema" or "raw"
	Sampler            string  `json:"sampler"`
	SampleSteps        int     `json:"sample_steps"`
	SampleSecondsPer64 float64 `json:"sample_seconds_per_64"`
	Metrics            Metrics `json:"metrics"`
}

// Metrics are the sample-quality metrics of a run. A metric that was not computed is nil
// and absent from the JSON, so "not measured" never reads as 0.
type Metrics struct {
	FD *float64 `json:"fd,omitempty"`
	// FDLow and FDHigh bound FD's 95% bootstrap interval over the samples, and FDBootstrap
	// holds its replicates: the FD of each resample, the same resamples (same seed) for every
	// run of the same n, so two runs' replicates pair up for a bootstrapped difference
	// (ddpm/quality.BootstrapFD). Absent in runs evaluated before they were recorded.
	FDLow         *float64  `json:"fd_lo,omitempty"`
	FDHigh        *float64  `json:"fd_hi,omitempty"`
	FDBootstrap   []float64 `json:"fd_bootstrap,omitempty"`
	FDReal        *float64  `json:"fd_real,omitempty"`
	FDRealN       *float64  `json:"fd_real_n,omitempty"` // n real train images against the test split: FD's floor at this n
	Recognizable  *float64  `json:"recognizable,omitempty"`
	ClassEntropy  *float64  `json:"class_entropy,omitempty"`
	MinClassShare *float64  `json:"min_class_share,omitempty"`
	// Class-conditional models: the share of samples classified as the class asked for, and
	// the mean within-class feature distance of the samples and of real test images.
	ClassAccuracy *float64 `json:"class_accuracy,omitempty"`
	Diversity     *float64 `json:"diversity,omitempty"`
	DiversityReal *float64 `json:"diversity_real,omitempty"`
	// N is how many generated samples the metrics measured (eval.num_samples); absent in
	// runs stored before it was recorded, whose config says it.
	N *int `json:"n,omitempty"`
}

// ReadSummary reads a run's summary.json; errors.Is(err, fs.ErrNotExist) if the run has
// none yet.
func (s *Store) ReadSummary(hash string) (Summary, error) {
	var sum Summary
	if err := ReadJSON(s.Path(hash, SummaryFile), &sum); err != nil {
		return Summary{}, s.notExist(hash, err)
	}
	return sum, nil
}

// WriteSummary writes a run's summary.json atomically.
func (s *Store) WriteSummary(hash string, sum Summary) error {
	return WriteJSON(s.Path(hash, SummaryFile), sum)
}

// LossRow is one row of metrics/loss.csv: the loss of one optimizer step.
type LossRow struct {
	Step  int
	Epoch int
	Loss  float64
}

// EpochRow is one row of metrics/epochs.csv.
type EpochRow struct {
	Epoch        int
	MeanLoss     float64
	Seconds      float64
	ImagesPerSec float64
}

var (
	lossHeader   = []string{"step", "epoch", "loss"}
	epochsHeader = []string{"epoch", "mean_loss", "seconds", "images_per_sec"}
)

// ReadLoss reads a run's metrics/loss.csv. Errors name the file and line.
func (s *Store) ReadLoss(hash string) ([]LossRow, error) {
	var rows []LossRow
	err := readCSV(s.Path(hash, LossFile), lossHeader, func(f *fields) {
		rows = append(rows, LossRow{Step: f.int(), Epoch: f.int(), Loss: f.float()})
	})
	return rows, s.notExist(hash, err)
}

// ReadEpochs reads a run's metrics/epochs.csv. Errors name the file and line.
func (s *Store) ReadEpochs(hash string) ([]EpochRow, error) {
	var rows []EpochRow
	err := readCSV(s.Path(hash, EpochsFile), epochsHeader, func(f *fields) {
		rows = append(rows, EpochRow{Epoch: f.int(), MeanLoss: f.float(), Seconds: f.float(), ImagesPerSec: f.float()})
	})
	return rows, s.notExist(hash, err)
}

// WriteLoss replaces a run's metrics/loss.csv atomically with rows. The child rewrites
// the whole file at each checkpoint, so after a resume the file holds exactly the steps
// the checkpoint has seen.
func (s *Store) WriteLoss(hash string, rows []LossRow) error {
	return writeCSV(s.Path(hash, LossFile), lossHeader, len(rows), func(i int) []string {
		r := rows[i]
		return []string{strconv.Itoa(r.Step), strconv.Itoa(r.Epoch), formatFloat(r.Loss)}
	})
}

// WriteEpochs replaces a run's metrics/epochs.csv atomically with rows.
func (s *Store) WriteEpochs(hash string, rows []EpochRow) error {
	return writeCSV(s.Path(hash, EpochsFile), epochsHeader, len(rows), func(i int) []string {
		r := rows[i]
		return []string{strconv.Itoa(r.Epoch), formatFloat(r.MeanLoss), formatFloat(r.Seconds), formatFloat(r.ImagesPerSec)}
	})
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func writeCSV(path string, header []string, n int, row func(int) []string) error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(header) // writes to a bytes.Buffer cannot fail; Flush reports csv errors
	for i := range n {
		_ = w.Write(row(i))
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return durable.WriteFile(path, buf.Bytes(), 0o644)
}

// fields parses the fields of one CSV record in order, keeping the first error.
type fields struct {
	rec []string
	i   int
	err error
}

func (f *fields) next() string {
	s := f.rec[f.i]
	f.i++
	return s
}

func (f *fields) int() int {
	s := f.next()
	v, err := strconv.Atoi(s)
	if err != nil && f.err == nil {
		f.err = fmt.Errorf("column %d: %q is not an integer", f.i, s)
	}
	return v
}

func (f *fields) float() float64 {
	s := f.next()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil && f.err == nil {
		f.err = fmt.Errorf("column %d: %q is not a number", f.i, s)
	}
	return v
}

// readCSV reads a CSV file with the given header, calling row for every record.
func readCSV(path string, header []string, row func(*fields)) error {
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	r := csv.NewReader(file)
	r.FieldsPerRecord = -1 // checked below, with a clearer message
	r.ReuseRecord = true
	got, err := r.Read()
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: empty file, want header %q", path, header)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if !slices.Equal(got, header) {
		return fmt.Errorf("%s:1: header is %q, want %q", path, got, header)
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err) // csv.ParseError carries the line
		}
		line, _ := r.FieldPos(0)
		if len(rec) != len(header) {
			return fmt.Errorf("%s:%d: %d fields, want %d (%s)", path, line, len(rec), len(header), strings.Join(header, ","))
		}
		f := fields{rec: rec}
		row(&f)
		if f.err != nil {
			return fmt.Errorf("%s:%d: %w", path, line, f.err)
		}
	}
}
