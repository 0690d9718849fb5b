package tank_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tank.example/tank"
)

// headerReasons reads include/tank.h's generated table of reason ids: under
// " * Reason ids", a status line is " *   TANK_ERR_...", a reason line
// " *     id  text", and a deeper indent continues the text.
func headerReasons(t *testing.T) map[string]string {
	t.Helper()
	header, err := os.ReadFile(filepath.Join("..", "..", "include", "tank.h"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	status, inTable := "", false
	for _, line := range strings.Split(string(header), "\n") {
		if !inTable {
			inTable = strings.HasPrefix(line, " * Reason ids")
			continue
		}
		if !strings.HasPrefix(line, " *") {
			break
		}
		rest := strings.TrimPrefix(line, " *")
		switch indent := len(rest) - len(strings.TrimLeft(rest, " ")); indent {
		case 0, 1:
			return out
		case 3:
			status = strings.TrimSpace(rest)
		case 5:
			id := strings.Fields(rest)[0]
			if status == "" {
				t.Fatalf("tank.h lists reason %s before any status", id)
			}
			out[id] = status
		}
	}
	return out
}

// The binding's reason ids are the header's, each under the same status,
// so a reason added to libtank and not to reasons.go (or the reverse)
// fails here.
func TestReasonsAreTheHeaders(t *testing.T) {
	header := headerReasons(t)
	if len(header) < 30 {
		t.Fatalf("read only %d reasons from tank.h: %v", len(header), header)
	}
	ours := tank.ReasonStatuses()
	for id, status := range ours {
		if want, ok := header[id]; !ok {
			t.Errorf("reasons.go has %s, tank.h does not", id)
		} else if status.String() != want {
			t.Errorf("reasons.go has %s under %s, tank.h under %s", id, status, want)
		}
	}
	for id, status := range header {
		if _, ok := ours[id]; !ok {
			t.Errorf("tank.h has %s (%s), reasons.go does not", id, status)
		}
	}
}
