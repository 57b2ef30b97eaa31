package data

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ddpmlab/ddpmlab/ddpm/durable"
)

// Download fetches the four .gz files of the named dataset into the folder
// dest (created if needed), trying each canonical mirror in turn, and
// verifies each file against torchvision's published MD5. A file already in
// dest with the right checksum is kept. For cifar10 it fetches the one
// archive cifar-10-binary.tar.gz, checks its MD5 and extracts the batch
// files and batches.meta.txt flat into dest (see [Locate]); the archive is
// removed once extracted. Each file is written to a temporary
// file in dest and renamed into place only once its checksum matches, so
// dest never holds a partial or corrupt file under a dataset name.
// One line per file is written to progress (which may be nil).
func Download(ctx context.Context, name, dest string, progress io.Writer) error {
	d, err := lookup(name)
	if err != nil {
		return err
	}
	return newDownloader().fetch(ctx, d, dest, progress)
}

// downloader fetches dataset files over HTTP. Tests build one with their
// own mirrors and checksums in the dataset value they pass to fetch.
type downloader struct {
	client *http.Client
}

func newDownloader() *downloader {
	return &downloader{client: &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 15 * time.Second}).DialContext,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}}}
}

// fetch downloads every file of d into dest.
func (dl *downloader) fetch(ctx context.Context, d dataset, dest string, progress io.Writer) error {
	if progress == nil {
		progress = io.Discard
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return err
	}
	if d.archive != "" {
		return dl.fetchArchive(ctx, d, dest, progress)
	}
	for _, base := range allFiles() {
		file := base + ".gz"
		want := d.md5[file]
		path := filepath.Join(dest, file)
		if sum, err := md5File(path); err == nil && sum == want {
			fmt.Fprintf(progress, "%s: %s already present, checksum ok\n", d.name, path)
			continue
		}
		if err := dl.fetchFromMirrors(ctx, d, file, path, want, progress); err != nil {
			return err
		}
	}
	return nil
}

// fetchFromMirrors downloads file from each of d's mirrors in turn into path
// until one copy's MD5 is want, writing one line per try to progress. It
// stops at once if ctx is done; if every mirror fails, the error joins each
// mirror's error.
func (dl *downloader) fetchFromMirrors(ctx context.Context, d dataset, file, path, want string, progress io.Writer) error {
	var errs []error
	for _, mirror := range d.mirrors {
		u := mirror + file
		start := time.Now()
		n, err := dl.fetchFile(ctx, u, path, want)
		if err == nil {
			fmt.Fprintf(progress, "%s: %s: %d bytes from %s in %.1fs, md5 ok\n",
				d.name, file, n, u, time.Since(start).Seconds())
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("download %s: %w", u, ctx.Err())
		}
		fmt.Fprintf(progress, "%s: %s: %v\n", d.name, u, err)
		errs = append(errs, fmt.Errorf("%s: %w", u, err))
	}
	if errs != nil {
		return fmt.Errorf("download %s %s failed from every mirror: %w", d.name, file, errors.Join(errs...))
	}
	return nil
}

// ChecksumError reports a downloaded file whose MD5 is not the published one.
type ChecksumError struct {
	URL       string
	Got, Want string // hex MD5
}

// Error returns "URL: md5 GOT, want WANT".
func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s: md5 %s, want %s", e.URL, e.Got, e.Want)
}

// fetchFile downloads u to path atomically, checking its MD5 against want,
// and returns the number of bytes written.
func (dl *downloader) fetchFile(ctx context.Context, u, path, want string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := dl.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HTTP %s", resp.Status)
	}

	h := md5.New()
	var n int64
	err = durable.Write(path, 0o644, func(w io.Writer) error {
		var err error
		n, err = io.Copy(io.MultiWriter(w, h), resp.Body)
		if err != nil {
			return err
		}
		if resp.ContentLength >= 0 && n != resp.ContentLength {
			return fmt.Errorf("got %d bytes, server announced %d", n, resp.ContentLength)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			return &ChecksumError{URL: u, Got: got, Want: want}
		}
		return nil
	})
	return n, err
}

// reachable reports whether a TCP connection to the host of baseURL can be
// opened within a few seconds.
func (dl *downloader) reachable(ctx context.Context, baseURL string) error {
	addr, err := hostPort(baseURL)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var dialer net.Dialer
	c, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// md5File returns the hex MD5 of the file at path.
func md5File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hostPort returns the host:port a base URL connects to.
func hostPort(baseURL string) (string, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return "", err
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	if u.Hostname() == "" || port == "" {
		return "", fmt.Errorf("cannot tell host and port of %q", baseURL)
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}
