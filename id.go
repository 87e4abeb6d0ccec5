package agenttrace

import (
	"encoding/binary"
	"math/rand/v2"
	"time"

	"github.com/oklog/ulid/v2"
)

// ID identifies an instance or a span. It is a ULID: 48 bits of millisecond
// timestamp followed by 80 random bits, so IDs sort by creation time. The zero
// ID means "none" (for example the parent of a root span).
type ID [16]byte

// newID returns a ULID for time t. The random part comes from the runtime's
// per-thread ChaCha8 generator, which needs no lock and does not allocate.
func newID(t time.Time) ID {
	var id ID
	ms := uint64(t.UnixMilli())
	id[0] = byte(ms >> 40)
	id[1] = byte(ms >> 32)
	id[2] = byte(ms >> 24)
	id[3] = byte(ms >> 16)
	id[4] = byte(ms >> 8)
	id[5] = byte(ms)
	binary.BigEndian.PutUint16(id[6:8], uint16(rand.Uint32()))
	binary.BigEndian.PutUint64(id[8:16], rand.Uint64())
	return id
}

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool { return id == ID{} }

// String returns the canonical 26-character ULID text form, or "" for the
// zero ID.
func (id ID) String() string {
	if id.IsZero() {
		return ""
	}
	return ulid.ULID(id).String()
}

// Time returns the creation time encoded in the ID, to the millisecond.
func (id ID) Time() time.Time { return ulid.Time(ulid.ULID(id).Time()) }

// ULID returns the ID as an oklog ULID.
func (id ID) ULID() ulid.ULID { return ulid.ULID(id) }

// MarshalText implements encoding.TextMarshaler (the ULID text form).
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler. An empty text is the
// zero ID.
func (id *ID) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*id = ID{}
		return nil
	}
	u, err := ulid.ParseStrict(string(b))
	if err != nil {
		return err
	}
	*id = ID(u)
	return nil
}

// ParseID parses the 26-character ULID text form of an ID.
func ParseID(s string) (ID, error) {
	var id ID
	err := id.UnmarshalText([]byte(s))
	return id, err
}
