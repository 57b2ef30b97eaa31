package store

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// HashLen is the length of a full hash in hex digits; ShortLen the length shown to people;
// MinPrefixLen the shortest prefix Resolve accepts.
const (
	HashLen      = 2 * sha256.Size
	ShortLen     = 12
	MinPrefixLen = 4
)

// Hash names a run: the SHA-256 of its canonical config, the bytes the store keeps as
// canonical.json (runner/config computes them; config.Hash is this type). Its String, 64
// lowercase hex digits, is the run's folder name. Every hash the runner handles is parsed
// and checked here: ParseHash for full hashes, CheckPrefix for the prefixes people type.
type Hash [sha256.Size]byte

// HashOf returns the hash of a run whose canonical.json is canonical.
func HashOf(canonical []byte) Hash { return sha256.Sum256(canonical) }

// String returns the 64 lowercase hex digits of h: the run's folder name.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Short returns the first 12 hex digits of h, the form shown to people.
func (h Hash) Short() string { return h.String()[:ShortLen] }

// IsZero reports whether h is the zero Hash (no config hashes to it).
func (h Hash) IsZero() bool { return h == Hash{} }

// ParseHash parses a full hash: exactly 64 lowercase hex digits, as run folders are named.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != HashLen || !isLowerHex(s) {
		return h, fmt.Errorf("invalid run hash %q: want %d lowercase hex digits", s, HashLen)
	}
	_, _ = hex.Decode(h[:], []byte(s)) // cannot fail: checked above
	return h, nil
}

// CheckHash reports whether hash is a full hash (see ParseHash).
func CheckHash(hash string) error {
	_, err := ParseHash(hash)
	return err
}

// CheckPrefix reports whether p can name a run: MinPrefixLen to HashLen hex digits, either
// case (Resolve lowers it).
func CheckPrefix(p string) error {
	if len(p) < MinPrefixLen || len(p) > HashLen || !isHex(p) {
		return fmt.Errorf("invalid run prefix %q: want %d to %d hex digits", p, MinPrefixLen, HashLen)
	}
	return nil
}

// Short returns the first 12 hex digits of hash, the form shown to people.
func Short(hash string) string {
	if len(hash) > ShortLen {
		return hash[:ShortLen]
	}
	return hash
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
