package eventschema_test

import (
	"fmt"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/eventschema"
)

func ExampleValidator_Data() {
	v, err := eventschema.New()
	if err != nil {
		panic(err)
	}
	ok := v.Data(events.TypeCancelled, []byte(`{"job_id":"01a241b2-db9d-7720-aabc-679f8dbb6fcc","cancelled_at":"2026-12-04T10:00:00Z"}`))
	bad := v.Data(events.TypeCancelled, []byte(`{"job_id":"01a241b2-db9d-7720-aabc-679f8dbb6fcc"}`))
	fmt.Println(ok == nil, bad == nil)
	// Output: true false
}
