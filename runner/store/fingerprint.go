package store

// FingerprintFile is where a run records what it ran on and with.
const FingerprintFile = "fingerprint.json"

// Fingerprint is the content of fingerprint.json: the code, toolchain, machine and seed a
// run was trained with, written by runner/job when the run starts and read by reports.
// Numbers are stored as JSON strings ("cpus": "16"), as the first stores have them.
type Fingerprint struct {
	CodeVersion     string `json:"code_version"`
	GoVersion       string `json:"go_version"`
	LibtorchVersion string `json:"libtorch_version"`
	Host            string `json:"host"`
	OS              string `json:"os"`
	Arch            string `json:"arch"`
	CPUs            int    `json:"cpus,string"`
	Threads         int    `json:"threads,string"` // libtorch intra-op threads
	Device          string `json:"device"`         // "cpu" or the CUDA device
	Seed            int64  `json:"seed,string"`
	// Precision is the arithmetic of training and sampling: "train fp32, sample fp32", …
	Precision string `json:"precision"`
	// ImageShape is C×H×W of the images the network takes ("1×28×28"); absent in old runs.
	ImageShape string `json:"image_shape,omitempty"`
}

// ReadFingerprint reads a run's fingerprint.json; errors.Is(err, fs.ErrNotExist) if the run
// has none (it never started).
func (s *Store) ReadFingerprint(hash string) (Fingerprint, error) {
	var fp Fingerprint
	if err := ReadJSON(s.Path(hash, FingerprintFile), &fp); err != nil {
		return Fingerprint{}, s.notExist(hash, err)
	}
	return fp, nil
}

// WriteFingerprint writes a run's fingerprint.json atomically.
func (s *Store) WriteFingerprint(hash string, fp Fingerprint) error {
	return WriteJSON(s.Path(hash, FingerprintFile), fp)
}
