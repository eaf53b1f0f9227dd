// Package apidoc turns the API and event documents, written in YAML for people, into the JSON
// the services serve (GET /api/v1/openapi.json, /api/v1/asyncapi.json) and the tests read.
package apidoc

import (
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// JSON converts a YAML document (anchors and aliases resolved) to JSON. Mapping keys must be
// strings: a document whose key is a number or a list is refused, not silently renamed.
func JSON(doc []byte) ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(doc, &v); err != nil {
		return nil, fmt.Errorf("parsing YAML: %w", err)
	}
	v, err := stringKeys(v, "")
	if err != nil {
		return nil, err
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("writing JSON: %w", err)
	}
	return out, nil
}

// stringKeys returns v with every mapping as map[string]any.
func stringKeys(v any, path string) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			c, err := stringKeys(e, path+"/"+k)
			if err != nil {
				return nil, err
			}
			t[k] = c
		}
		return t, nil
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("at %s: key %v is a %T, not a string (quote it)", path, k, k)
			}
			c, err := stringKeys(e, path+"/"+ks)
			if err != nil {
				return nil, err
			}
			m[ks] = c
		}
		return m, nil
	case []any:
		for i, e := range t {
			c, err := stringKeys(e, fmt.Sprintf("%s/%d", path, i))
			if err != nil {
				return nil, err
			}
			t[i] = c
		}
		return t, nil
	}
	return v, nil
}
