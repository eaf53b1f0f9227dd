package api

import (
	_ "embed"
	"net/http"

	"github.com/productsmanager/exportplatform/pkg/apidoc"
	"github.com/productsmanager/exportplatform/pkg/events"
)

// openAPIYAML is the REST surface's OpenAPI 3.1 document: every route of NewServer has its
// operation there (TestEveryRouteDocumented), and the e2e suite validates its traffic against it.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// OpenAPI is the OpenAPI document as served, JSON.
func OpenAPI() ([]byte, error) { return apidoc.JSON(openAPIYAML) }

// document serves a JSON document made once at start; one that does not convert is a bug the
// unit tests catch, answered 500 rather than a crash.
func (a *api) document(name string, build func() ([]byte, error)) http.HandlerFunc {
	doc, err := build()
	return func(w http.ResponseWriter, r *http.Request) {
		if err != nil {
			a.internal(w, r, "building the "+name+" document", err)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("Access-Control-Allow-Origin", "*") // a public description, read by tools anywhere
		_, _ = w.Write(doc)
	}
}

// asyncAPI is the event document as served, JSON (pkg/events owns it).
func asyncAPI() ([]byte, error) { return apidoc.JSON(events.AsyncAPIYAML) }
