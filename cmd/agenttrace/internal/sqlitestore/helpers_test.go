package sqlitestore_test

import (
	"encoding/json"
	"strings"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func pad(n int) string { return strings.Repeat("x", n) }
