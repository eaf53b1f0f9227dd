package exportfmt_test

import (
	"flag"
	"testing"

	"go.uber.org/goleak"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestMain fails the package if a test leaves a goroutine behind (the XLSX compressor runs
// goroutines).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
