package e2e

// The API and event documents cannot drift from what the stack does: every request the suite
// sends to the API and every answer it gets go through contractTransport, which validates them
// against the OpenAPI document the API serves (kin-openapi's openapi3filter); every record the
// suite reads from Kafka, and every record the stack produced while the suite ran, is validated
// against the AsyncAPI document's schemas (pkg/eventschema). A violation fails the run
// (TestMain), listed with the request or record that showed it.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/gorilla/websocket"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/eventschema"
)

// contract collects what the documents say against what the stack did.
var contract = struct {
	sync.Mutex
	started    time.Time
	violations map[string]int // what broke the contract → how many times
	requests   int
	ops        map[string]bool // operations exercised
	allOps     []string
	records    int
	pushes     int // WebSocket messages validated
}{started: time.Now(), violations: map[string]int{}, ops: map[string]bool{}}

func violation(format string, args ...any) {
	contract.Lock()
	defer contract.Unlock()
	contract.violations[fmt.Sprintf(format, args...)]++
}

// contractTransport validates the API's traffic against its OpenAPI document.
type contractTransport struct {
	base   http.RoundTripper
	api    *url.URL
	once   sync.Once
	router routers.Router
}

func installContract() {
	api, _ := url.Parse("http://" + env("API_ADDR", "127.0.0.1:8080"))
	http.DefaultClient.Transport = &contractTransport{base: http.DefaultTransport, api: api}
}

// apiDocument is the OpenAPI document the API serves, loaded and validated once.
var apiDocument = sync.OnceValues(func() (*openapi3.T, error) {
	api := "http://" + env("API_ADDR", "127.0.0.1:8080")
	resp, err := http.DefaultTransport.RoundTrip(mustRequest(http.MethodGet, api+"/api/v1/openapi.json"))
	if err != nil {
		return nil, fmt.Errorf("GET /api/v1/openapi.json: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET /api/v1/openapi.json: %w", err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		return nil, fmt.Errorf("the OpenAPI document does not load: %w", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		return nil, fmt.Errorf("the OpenAPI document is %s, not 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("the OpenAPI document is invalid: %w", err)
	}
	return doc, nil
})

// load builds the router of the document the API serves.
func (c *contractTransport) load() {
	doc, err := apiDocument()
	if err != nil {
		violation("%v", err)
		return
	}
	routed := *doc // the router matches the document's server: this API's address
	routed.Servers = openapi3.Servers{{URL: c.api.String()}}
	if c.router, err = gorillamux.NewRouter(&routed); err != nil {
		violation("no router from the OpenAPI document: %v", err)
		return
	}
	var all []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			all = append(all, method+" "+path+" ("+op.OperationID+")")
		}
	}
	sort.Strings(all)
	contract.Lock()
	contract.allOps = all
	contract.Unlock()
}

// checkPush validates one message of the progress WebSocket against the document's
// WsServerMessage schema.
func checkPush(data []byte) {
	doc, err := apiDocument()
	if err != nil {
		violation("%v", err)
		return
	}
	ref := doc.Components.Schemas["WsServerMessage"]
	if ref == nil || ref.Value == nil {
		violation("the OpenAPI document has no WsServerMessage schema")
		return
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		violation("a WebSocket message is not JSON: %v: %.200s", err, data)
		return
	}
	contract.Lock()
	contract.pushes++
	contract.Unlock()
	if err := ref.Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		violation("a WebSocket message leaves WsServerMessage: %s; message %.300s", oneLine(err), data)
	}
}

// readPush reads the next WebSocket message into v, after validating it (checkPush).
func readPush(c *websocket.Conn, v any) error {
	_, data, err := c.ReadMessage()
	if err != nil {
		return err
	}
	checkPush(data)
	return json.Unmarshal(data, v)
}

func mustRequest(method, u string) *http.Request {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		panic(err)
	}
	return req
}

func (c *contractTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// Any producer-api of the suite (the stack's, or one a test starts with other settings).
	if !strings.HasPrefix(req.URL.Path, "/api/v1/") || req.Header.Get("Upgrade") != "" {
		return c.base.RoundTrip(req)
	}
	c.once.Do(c.load)
	if c.router == nil {
		return c.base.RoundTrip(req)
	}
	var reqBody []byte
	if req.Body != nil {
		var err error
		if reqBody, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	what := req.Method + " " + req.URL.Path
	// The router knows the document's server only: route (and validate) a copy addressed to it,
	// with its own reader of the body.
	check := req.Clone(req.Context())
	check.URL.Scheme, check.URL.Host, check.Host = c.api.Scheme, c.api.Host, c.api.Host
	check.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, findErr := c.router.FindRoute(check)
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if findErr != nil {
		// A path or method the document does not know must not be served.
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
			violation("%s answered %d but has no operation in the OpenAPI document (%v)", what, resp.StatusCode, findErr)
		}
		return resp, nil
	}
	op := route.Operation.OperationID
	contract.Lock()
	contract.requests++
	contract.ops[route.Method+" "+route.Path+" ("+op+")"] = true
	contract.Unlock()

	in := &openapi3filter.RequestValidationInput{Request: check, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
	// What the API accepted, the document must accept too (what it refused may be anything).
	if resp.StatusCode < 300 {
		if err := openapi3filter.ValidateRequest(req.Context(), in); err != nil {
			violation("%s (%s) was accepted (%d) but the document refuses the request: %s", what, op, resp.StatusCode, oneLine(err))
		}
	}
	// The answer must be a documented status with a documented body. A file (stream, download)
	// is checked for its status and media type only: it is not read here, so that the tests
	// that time or cut a transfer see it as it comes.
	file := (op == "stream" || op == "download") && resp.StatusCode == http.StatusOK
	var body []byte
	if !file && resp.Body != nil {
		if body, err = io.ReadAll(resp.Body); err != nil {
			return nil, fmt.Errorf("%s: reading the answer: %w", what, err)
		}
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, ExcludeResponseBody: file}}
	if file {
		if route.Operation.Responses.Status(200).Value.Content.Get(resp.Header.Get("Content-Type")) == nil {
			violation("%s (%s) answered a file of undocumented type %q", what, op, resp.Header.Get("Content-Type"))
		}
	} else if err := openapi3filter.ValidateResponse(req.Context(), out); err != nil {
		violation("%s (%s) answered %d outside the document: %s; body %.300s", what, op, resp.StatusCode, oneLine(err), body)
	}
	return resp, nil
}

func oneLine(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return s
}

// eventValidator validates records against the AsyncAPI document's schemas.
var eventValidator = sync.OnceValues(eventschema.New)

// checkRecord validates one Kafka record (headers and data) against the AsyncAPI document.
func checkRecord(r *kgo.Record) {
	v, err := eventValidator()
	if err != nil {
		violation("the AsyncAPI document's schemas do not compile: %v", err)
		return
	}
	h := make(map[string]string, len(r.Headers))
	for _, hd := range r.Headers {
		h[hd.Key] = string(hd.Value)
	}
	contract.Lock()
	contract.records++
	contract.Unlock()
	if err := v.Record(h, r.Value); err != nil {
		violation("%s record %s[%d]@%d (key %s): %s", r.Topic, r.Topic, r.Partition, r.Offset, r.Key, oneLine(err))
	}
}

// parseRecord reads a record of exports.events as its CloudEvents envelope, after validating it
// against the AsyncAPI document.
func parseRecord(r *kgo.Record) (events.Envelope, error) {
	checkRecord(r)
	return eventbus.Envelope(r)
}

// checkTopics validates every record the stack wrote to exports.requested and exports.events
// since the suite started (readSince: each partition up to the end offset listed once the suite
// ended). A partition that cannot be listed or read to its end is a violation, not a silent pass.
func checkTopics() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	total := 0
	err := readSince(ctx, env("KAFKA_BROKERS", "127.0.0.1:9092"), contract.started.Add(-time.Second), func(r *kgo.Record) {
		total++
		checkRecord(r)
	}, events.TopicRequested, events.TopicEvents)
	if err != nil {
		violation("%v", err)
	}
	fmt.Printf("contract: %d records of %s and %s written during the run validated against the AsyncAPI document\n",
		total, events.TopicRequested, events.TopicEvents)
}

// readSince calls fn for every record (read_committed) of topics from the first offset at or
// after since up to each partition's end offset at the time of the call: a deterministic read,
// not a quiet period. It fails when the offsets cannot be listed or a partition is not read to
// its end before ctx ends (naming the last fetch error, if any).
func readSince(ctx context.Context, brokers string, since time.Time, fn func(*kgo.Record), topics ...string) error {
	seeds := kgo.SeedBrokers(strings.Split(brokers, ",")...)
	admin, err := kgo.NewClient(seeds)
	if err != nil {
		return err
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("listing the end offsets of %v: %w", topics, err)
	}
	starts, err := adm.ListOffsetsAfterMilli(ctx, since.UnixMilli(), topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("listing the offsets of %v after %s: %w", topics, since, err)
	}
	from := map[string]map[int32]kgo.Offset{}
	left := map[string]map[int32]int64{} // topic → partition → end offset, while unread
	ends.Each(func(e kadm.ListedOffset) {
		st, _ := starts.Lookup(e.Topic, e.Partition)
		if st.Offset >= 0 && st.Offset < e.Offset {
			if from[e.Topic] == nil {
				from[e.Topic], left[e.Topic] = map[int32]kgo.Offset{}, map[int32]int64{}
			}
			from[e.Topic][e.Partition] = kgo.NewOffset().At(st.Offset)
			left[e.Topic][e.Partition] = e.Offset
		}
	})
	if len(from) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(seeds, kgo.ConsumePartitions(from), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return err
	}
	defer cl.Close()
	var lastErr error
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("partitions not read to their end offsets %v in time (last fetch error: %v)", left, lastErr)
		}
		fs.EachError(func(topic string, p int32, err error) {
			lastErr = fmt.Errorf("fetching %s[%d]: %w", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := left[r.Topic][r.Partition]; ok && r.Offset+1 >= end {
				delete(left[r.Topic], r.Partition)
				if len(left[r.Topic]) == 0 {
					delete(left, r.Topic)
				}
			}
			fn(r)
		})
	}
	return nil
}

// reportContract prints what was validated and every violation; false when there was one.
func reportContract(w io.Writer) bool {
	contract.Lock()
	defer contract.Unlock()
	var never []string
	for _, op := range contract.allOps {
		if !contract.ops[op] {
			never = append(never, op)
		}
	}
	fmt.Fprintf(w, "contract: %d API requests validated over %d of %d documented operations; %d WebSocket messages and %d Kafka records validated\n",
		contract.requests, len(contract.ops), len(contract.allOps), contract.pushes, contract.records)
	if len(never) > 0 && len(contract.ops) > 0 {
		fmt.Fprintf(w, "contract: operations this run never exercised: %s\n", strings.Join(never, "; "))
	}
	if len(contract.violations) == 0 {
		return true
	}
	keys := make([]string, 0, len(contract.violations))
	for k := range contract.violations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(w, "\nCONTRACT VIOLATIONS (%d): the stack left its OpenAPI/AsyncAPI documents\n", len(keys))
	for _, k := range keys {
		fmt.Fprintf(w, "  (x%d) %s\n", contract.violations[k], k)
	}
	return false
}

// TestDocumentsServed: the stack serves both documents without a token, and the event document
// it serves is the one this suite validates records against (pkg/events').
func TestDocumentsServed(t *testing.T) {
	s := getStack(t)
	code, body := s.do(t, http.MethodGet, "/api/v1/openapi.json", "", nil)
	if code != http.StatusOK || !bytes.HasPrefix(body, []byte(`{"openapi":"3.1.0"`)) {
		t.Fatalf("GET /api/v1/openapi.json = %d %.200s", code, body)
	}
	code, body = s.do(t, http.MethodGet, "/api/v1/asyncapi.json", "", nil)
	want, err := eventschema.Document()
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK || !bytes.Equal(body, want) {
		t.Fatalf("GET /api/v1/asyncapi.json = %d, %d bytes, not the %d of pkg/events' document: %.200s", code, len(body), len(want), body)
	}
}

// TestPushSchemaNotARubberStamp: the WebSocket message schema that checkPush applies refuses
// messages that leave it.
func TestPushSchemaNotARubberStamp(t *testing.T) {
	getStack(t)
	doc, err := apiDocument()
	if err != nil {
		t.Fatal(err)
	}
	schema := doc.Components.Schemas["WsServerMessage"].Value
	for msg, ok := range map[string]bool{
		`{"type":"pong"}`:                    true,
		`{"type":"unsubscribed","all":true}`: true,
		`{"type":"error","error":{"code":"not_found","message":"no job"}}`: true,
		`{"type":"pong","extra":1}`:                                        false,
		`{"type":"progress","task_id":"x"}`:                                false,
		`{"type":"snapshot","job":{}}`:                                     false,
		`{"type":"error","error":{"code":"teapot","message":"?"}}`:         false,
		`{"type":"hello"}`:                                                 false,
	} {
		var v any
		if err := json.Unmarshal([]byte(msg), &v); err != nil {
			t.Fatal(err)
		}
		if err := schema.VisitJSON(v, openapi3.EnableJSONSchema2020()); (err == nil) != ok {
			t.Errorf("%s: valid = %v, want %v (%v)", msg, err == nil, ok, err)
		}
	}
}
