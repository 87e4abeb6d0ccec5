package prefactorapi

import (
	"crypto/rand"
	"encoding/binary"
	"time"
)

const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

var isCrockford = func() (t [256]bool) {
	for i := range len(crockford) {
		t[crockford[i]] = true
	}
	return t
}()

// NewPFID makes a PFID for now in partition p (masked to 30 bits): 48 bits
// of milliseconds, the partition, 80 random bits.
func NewPFID(p uint32) string { return newPFIDAt(time.Now(), p) }

func newPFIDAt(t time.Time, p uint32) string {
	var b [20]byte
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:6], uint32(ms))
	binary.BigEndian.PutUint32(b[6:10], p&(1<<30-1))
	_, _ = rand.Read(b[10:])
	return EncodePFID(&b)
}

// EncodePFID encodes 20 bytes: 48 bits of time in 10 characters, the two
// padding bits skipped, 30 bits of partition in 6, 80 random bits in 16.
func EncodePFID(b *[20]byte) string {
	var out [32]byte
	hi := uint64(b[0])<<40 | uint64(b[1])<<32 | uint64(binary.BigEndian.Uint32(b[2:6]))
	for i := range 10 {
		out[i] = crockford[(hi>>uint(45-5*i))&31]
	}
	p := binary.BigEndian.Uint32(b[6:10]) & (1<<30 - 1)
	for i := range 6 {
		out[10+i] = crockford[(p>>uint(25-5*i))&31]
	}
	var r uint64
	bits, n := 0, 16
	for _, c := range b[10:] {
		r = r<<8 | uint64(c)
		bits += 8
		for bits >= 5 {
			bits -= 5
			out[n] = crockford[(r>>uint(bits))&31]
			n++
		}
	}
	return string(out[:])
}

// ValidPFID checks the canonical form: ^[0-7][0-9abcdefghjkmnpqrstvwxyz]{31}$.
func ValidPFID(v string) bool {
	if len(v) != 32 || v[0] < '0' || v[0] > '7' {
		return false
	}
	for i := 1; i < 32; i++ {
		if !isCrockford[v[i]] {
			return false
		}
	}
	return true
}

// PartitionOf returns the 6 characters of a valid PFID's partition.
func PartitionOf(id string) string { return id[10:16] }
