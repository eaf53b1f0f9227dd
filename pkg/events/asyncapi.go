package events

import (
	_ "embed"

	"github.com/productsmanager/exportplatform/pkg/apidoc"
)

// asyncAPIYAML describes the topics and every event type's data (a JSON Schema 2020-12 each,
// under components.schemas, named by x-ce-type); pkg/eventschema validates against it.
//
//go:embed asyncapi.yaml
var asyncAPIYAML []byte

// AsyncAPI is the AsyncAPI 3.0 document of exports.requested and exports.events, JSON (served at
// GET /api/v1/asyncapi.json).
func AsyncAPI() ([]byte, error) { return apidoc.JSON(asyncAPIYAML) }
