// Package apidoc turns the API and event documents, written in YAML for people, into the JSON
// the services serve (GET /api/v1/openapi.json, /api/v1/asyncapi.json) and the tests read.
package apidoc

import (
	"bytes"
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// JSON converts a YAML document to JSON, keeping the order of its keys (a reader meets
// "openapi" and "info" first, and the paths in the order they were written), with anchors,
// aliases and merge keys (<<) resolved. Mapping keys must be strings: a document whose key is a
// number or a list is refused, not silently renamed.
func JSON(doc []byte) ([]byte, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return nil, fmt.Errorf("parsing YAML: %w", err)
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) != 1 {
		return nil, fmt.Errorf("not one YAML document")
	}
	var b bytes.Buffer
	if err := write(&b, root.Content[0], ""); err != nil {
		return nil, err
	}
	if !json.Valid(b.Bytes()) {
		return nil, fmt.Errorf("the conversion wrote invalid JSON") // a bug of write
	}
	return b.Bytes(), nil
}

// pair is one key of a mapping, in order.
type pair struct {
	key   string
	value *yaml.Node
}

// pairs are a mapping's keys in order, merge keys expanded; a key given again (explicitly after
// a merge) replaces the earlier value in its place.
func pairs(n *yaml.Node, path string) ([]pair, error) {
	var out []pair
	at := map[string]int{}
	add := func(k string, v *yaml.Node) {
		if i, ok := at[k]; ok {
			out[i].value = v
			return
		}
		at[k] = len(out)
		out = append(out, pair{k, v})
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" {
			for v.Kind == yaml.AliasNode {
				v = v.Alias
			}
			if v.Kind != yaml.MappingNode {
				return nil, fmt.Errorf("at %s: << merges a mapping only", path)
			}
			merged, err := pairs(v, path)
			if err != nil {
				return nil, err
			}
			for _, p := range merged {
				add(p.key, p.value)
			}
			continue
		}
		if k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
			return nil, fmt.Errorf("at %s: key %q is a %s, not a string (quote it)", path, k.Value, k.Tag)
		}
		add(k.Value, v)
	}
	return out, nil
}

func write(b *bytes.Buffer, n *yaml.Node, path string) error {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		ps, err := pairs(n, path)
		if err != nil {
			return err
		}
		b.WriteByte('{')
		for i, p := range ps {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(p.key)
			b.Write(k)
			b.WriteByte(':')
			if err := write(b, p.value, path+"/"+p.key); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := write(b, c, fmt.Sprintf("%s/%d", path, i)); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("at %s: %w", path, err)
		}
		out, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("at %s: %w", path, err)
		}
		b.Write(out)
	default:
		return fmt.Errorf("at %s: unexpected YAML node", path)
	}
	return nil
}
