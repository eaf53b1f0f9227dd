// Package eventschema checks events against the JSON Schemas of the AsyncAPI document
// (pkg/events/asyncapi.yaml): one schema per event type's data, and one of the CloudEvents
// record headers. The tests of pkg/events and the e2e suite use it, so an event that leaves its
// documented shape fails them.
package eventschema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/productsmanager/exportplatform/pkg/apidoc"
	"github.com/productsmanager/exportplatform/pkg/events"
)

// base is where the document is registered with the schema compiler (never fetched).
const base = "urn:productsmanager:export-platform:asyncapi.json"

// Document is the AsyncAPI document as JSON, as the producer-api serves it.
func Document() ([]byte, error) { return apidoc.JSON(events.AsyncAPIYAML) }

// Validator validates events' data and headers.
type Validator struct {
	byType  map[events.Type]*jsonschema.Schema
	headers *jsonschema.Schema
}

// New compiles the document's schemas. Every event type that has an x-ce-type schema gets a
// validator; Types lists them.
func New() (*Validator, error) {
	raw, err := Document()
	if err != nil {
		return nil, fmt.Errorf("asyncapi document: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("asyncapi document: %w", err)
	}
	var parts struct {
		Components struct {
			Schemas map[string]struct {
				CEType events.Type `json:"x-ce-type"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, fmt.Errorf("asyncapi document: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(base, doc); err != nil {
		return nil, fmt.Errorf("asyncapi document: %w", err)
	}
	v := &Validator{byType: map[events.Type]*jsonschema.Schema{}}
	for name, s := range parts.Components.Schemas {
		if s.CEType == "" {
			continue
		}
		sch, err := c.Compile(base + "#/components/schemas/" + name)
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
		v.byType[s.CEType] = sch
	}
	if v.headers, err = c.Compile(base + "#/components/schemas/Headers"); err != nil {
		return nil, fmt.Errorf("schema Headers: %w", err)
	}
	return v, nil
}

// Types are the event types the document has a schema for, sorted.
func (v *Validator) Types() []events.Type {
	out := make([]events.Type, 0, len(v.byType))
	for t := range v.byType {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Data validates an event's data (the record value) against its type's schema; a type the
// document does not describe is an error too.
func (v *Validator) Data(t events.Type, data []byte) error {
	sch, ok := v.byType[t]
	if !ok {
		return fmt.Errorf("event type %q has no schema in the AsyncAPI document", t)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%s data is not JSON: %w", t, err)
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("%s data leaves its schema: %w", t, err)
	}
	return nil
}

// Headers validates a record's headers (name → value) against the CloudEvents headers schema.
func (v *Validator) Headers(h map[string]string) error {
	inst := make(map[string]any, len(h))
	for k, val := range h {
		inst[k] = val
	}
	if err := v.headers.Validate(inst); err != nil {
		return fmt.Errorf("record headers leave their schema: %w", err)
	}
	return nil
}

// Record validates a whole record: its headers, then its data against the type ce_type names.
func (v *Validator) Record(h map[string]string, value []byte) error {
	if err := v.Headers(h); err != nil {
		return err
	}
	return v.Data(events.Type(h[events.HeaderType]), value)
}
