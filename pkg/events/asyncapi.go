package events

import _ "embed"

// AsyncAPIYAML is the AsyncAPI 3.0 document of exports.requested and exports.events: the topics,
// the CloudEvents headers and every event type's data (a JSON Schema 2020-12 each, under
// components.schemas, named by x-ce-type). The producer-api serves it as JSON at
// GET /api/v1/asyncapi.json (pkg/apidoc converts it); pkg/eventschema validates events against
// it. Kept as text here so that this package stays standard library only.
//
//go:embed asyncapi.yaml
var AsyncAPIYAML []byte
