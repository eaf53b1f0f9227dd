package telemetry_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestInstrumentedPackagesDoNotLinkTheSDK: the packages that trace (storage, messaging, HTTP)
// import only the OpenTelemetry API through pkg/telemetry; the SDK, the OTLP exporter and its
// protobuf messages are linked by the mains alone (pkg/telemetry/otlpsetup).
func TestInstrumentedPackagesDoNotLinkTheSDK(t *testing.T) {
	t.Parallel()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	const mod = "github.com/productsmanager/exportplatform/pkg/"
	pkgs := []string{"telemetry", "jobstore", "export", "objectstore", "eventbus", "relay", "server"}
	for _, p := range pkgs {
		out, err := exec.Command(gobin, "list", "-deps", mod+p).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", p, err, out)
		}
		for dep := range strings.FieldsSeq(string(out)) {
			for _, heavy := range []string{"go.opentelemetry.io/otel/sdk", "go.opentelemetry.io/otel/exporters/", "go.opentelemetry.io/proto/"} {
				if strings.HasPrefix(dep, heavy) {
					t.Errorf("pkg/%s links %s", p, dep)
				}
			}
		}
	}
}
