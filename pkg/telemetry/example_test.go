package telemetry_test

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/productsmanager/exportplatform/pkg/telemetry"
)

// A traced step: Start and End cost nothing while tracing is off (no provider installed, as
// here), so the code is the same either way; a stored traceparent continues its trace.
func ExampleStart() {
	ctx := telemetry.ContextWithTraceParent(context.Background(), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "")
	ctx, span := telemetry.Start(ctx, "objectstore", "s3 upload", trace.WithAttributes(attribute.String("aws.s3.key", "products/1.csv")))
	err := errors.New("bucket gone")
	telemetry.End(span, err)

	tp, _ := telemetry.TraceParent(ctx)
	fmt.Println(span.IsRecording(), tp)
	// Output: false 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01
}
