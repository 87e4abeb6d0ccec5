package prefactor

import (
	"errors"
	"fmt"

	"github.com/agenttrace/agenttrace"
)

// ErrInvalidPFID is wrapped by the errors of ParsePFID and PFIDPartition.
var ErrInvalidPFID = errors.New("prefactor: invalid PFID")

// crockford is the lowercase Crockford Base32 alphabet PFIDs use.
const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

// decodeTab maps a byte to its Crockford value, or 0xff. Upper case is
// accepted.
var decodeTab = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := range len(crockford) {
		t[crockford[i]] = byte(i)
		if c := crockford[i]; c >= 'a' && c <= 'z' {
			t[c-'a'+'A'] = byte(i)
		}
	}
	return t
}()

// MaxPartition is the largest PFID partition (30 bits).
const MaxPartition = 1<<30 - 1

// PFID returns the Prefactor ID of an agenttrace ID (a ULID) in partition p:
// the ULID's 10 timestamp characters, 6 partition characters and the
// ULID's 16 random characters, lower case. p is masked to 30 bits.
func PFID(id agenttrace.ID, partition uint32) string {
	var b [32]byte
	appendPFID(b[:0], id, partition)
	return string(b[:])
}

func appendPFID(dst []byte, id agenttrace.ID, partition uint32) []byte {
	u := id.ULID()
	var text [26]byte
	_ = u.MarshalTextTo(text[:]) // cannot fail: the buffer is 26 bytes
	for i := range text {
		text[i] = crockford[decodeTab[text[i]]]
	}
	dst = append(dst, text[:10]...)
	partition &= MaxPartition
	for shift := 25; shift >= 0; shift -= 5 {
		dst = append(dst, crockford[(partition>>uint(shift))&31])
	}
	return append(dst, text[10:]...)
}

// ValidPFID reports whether s is a PFID in canonical (lower case) form:
// 32 Crockford Base32 characters, the first 0-7.
func ValidPFID(s string) bool {
	if len(s) != 32 || s[0] < '0' || s[0] > '7' {
		return false
	}
	for i := 1; i < 32; i++ {
		c := s[i]
		if decodeTab[c] == 0xff || (c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// PFIDPartition returns the partition of a PFID (its characters 10 to 15).
// Upper case is accepted.
func PFIDPartition(s string) (uint32, error) {
	if len(s) != 32 || decodeTab[s[0]] > 7 {
		return 0, fmt.Errorf("%w: %q", ErrInvalidPFID, clip(s))
	}
	for i := 1; i < 32; i++ {
		if decodeTab[s[i]] == 0xff {
			return 0, fmt.Errorf("%w: %q", ErrInvalidPFID, clip(s))
		}
	}
	var p uint32
	for i := 10; i < 16; i++ {
		p = p<<5 | uint32(decodeTab[s[i]])
	}
	return p, nil
}

// ParsePFID returns the agenttrace ID and partition a PFID encodes (the
// inverse of PFID). Upper case is accepted.
func ParsePFID(s string) (agenttrace.ID, uint32, error) {
	p, err := PFIDPartition(s)
	if err != nil {
		return agenttrace.ID{}, 0, err
	}
	id, err := agenttrace.ParseID(s[:10] + s[16:])
	if err != nil {
		return agenttrace.ID{}, 0, fmt.Errorf("%w: %q: %v", ErrInvalidPFID, clip(s), err)
	}
	return id, p, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
