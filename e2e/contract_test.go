package e2e

import (
	_ "github.com/getkin/kin-openapi/openapi3filter"
	_ "github.com/santhosh-tekuri/jsonschema/v6"
)
