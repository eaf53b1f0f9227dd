// Package platform is the domain of export platforms (CONTRACT §4, the seed's ExportPlatform):
// a named, preconfigured destination with a default export configuration. A platform's
// defaults sit under its schedules' and requests' own configuration (export.Merge: request >
// schedule > platform); its type may be a channel template that brings the channel's columns
// and titles. Validation returns a *FieldError naming the JSON path at fault.
package platform

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/export"
)

// Type is a platform's kind: a channel template, or custom.
type Type string

// Platform types. Each template brings its channel's expected columns and titles as defaults.
const (
	Custom         Type = "custom"
	GoogleShopping Type = "google_shopping"
	Amazon         Type = "amazon"
	Shopify        Type = "shopify"
	WooCommerce    Type = "woocommerce"
	PrestaShop     Type = "prestashop"
)

// Types lists the platform types, for messages.
var Types = []Type{Custom, GoogleShopping, Amazon, Shopify, WooCommerce, PrestaShop}

// templates are the channels' defaults: the product columns each channel's import expects,
// titled as it expects them. What the catalog lacks (a product page link, an image) the
// platform's own default_config adds or the channel's feed rules fill.
var templates = map[Type]export.Request{
	GoogleShopping: {Entity: "products", Format: export.FormatCSV,
		Fields:  []string{"sku", "name", "description", "brand", "ean", "price", "currency", "stock", "category_path"},
		Options: map[string]any{"delimiter": "tab", "bom": false, "formula_escape": false},
		Filters: map[string]any{"status": "active"},
		Headers: map[string]string{"sku": "id", "name": "title", "ean": "gtin", "stock": "quantity", "category_path": "product_type"}},
	Amazon: {Entity: "products", Format: export.FormatCSV,
		Fields:  []string{"sku", "name", "brand", "ean", "price", "stock", "description"},
		Options: map[string]any{"delimiter": "tab", "bom": false, "formula_escape": false},
		Filters: map[string]any{"status": "active"},
		Headers: map[string]string{"sku": "item_sku", "name": "item_name", "brand": "brand_name", "ean": "external_product_id",
			"price": "standard_price", "stock": "quantity", "description": "product_description"}},
	Shopify: {Entity: "products", Format: export.FormatCSV,
		Fields:  []string{"sku", "name", "description", "brand", "category_name", "price", "stock", "ean", "status"},
		Options: map[string]any{"bom": false},
		Headers: map[string]string{"sku": "Variant SKU", "name": "Title", "description": "Body (HTML)", "brand": "Vendor",
			"category_name": "Type", "price": "Variant Price", "stock": "Variant Inventory Qty", "ean": "Variant Barcode",
			"status": "Status"}},
	WooCommerce: {Entity: "products", Format: export.FormatCSV,
		Fields: []string{"sku", "name", "description", "price", "stock", "category_path", "brand", "ean"},
		Headers: map[string]string{"sku": "SKU", "name": "Name", "description": "Description", "price": "Regular price",
			"stock": "Stock", "category_path": "Categories", "brand": "Brands", "ean": "GTIN, UPC, EAN, or ISBN"}},
	PrestaShop: {Entity: "products", Format: export.FormatCSV,
		Fields:  []string{"sku", "name", "price", "stock", "ean", "brand", "category_path", "description"},
		Options: map[string]any{"delimiter": ";"},
		Headers: map[string]string{"sku": "Reference #", "name": "Name *", "price": "Price tax excluded", "stock": "Quantity",
			"ean": "EAN13", "brand": "Manufacturer", "category_path": "Categories (x,y,z...)", "description": "Description"}},
}

// Template is the defaults a platform type brings (nothing for custom).
func Template(t Type) export.Request { return templates[t] }

// DestinationType is where a platform's files go once stored.
type DestinationType string

// Destination types.
const (
	Storage DestinationType = "storage" // our bucket only: the file is downloaded from the API
	S3      DestinationType = "s3"      // any S3-compatible bucket
	SFTP    DestinationType = "sftp"    // a directory on an SFTP server
	HTTP    DestinationType = "http"    // PUT or POST to a URL
)

// Destination is where a platform delivers. Secrets are references (SecretRef), never values:
// a reference names an environment variable of the delivering service or a mounted file.
type Destination struct {
	Type DestinationType `json:"type"`
	// s3
	Endpoint     string `json:"endpoint,omitempty"` // host[:port], no scheme
	Bucket       string `json:"bucket,omitempty"`
	Prefix       string `json:"prefix,omitempty"`
	Region       string `json:"region,omitempty"`
	UseTLS       *bool  `json:"use_tls,omitempty"`    // default true
	PathStyle    bool   `json:"path_style,omitempty"` // bucket in the path rather than the host
	AccessKeyRef string `json:"access_key_ref,omitempty"`
	SecretKeyRef string `json:"secret_key_ref,omitempty"`
	// sftp
	Host          string `json:"host,omitempty"`
	Port          int    `json:"port,omitempty"` // default 22
	User          string `json:"user,omitempty"`
	PasswordRef   string `json:"password_ref,omitempty"`
	PrivateKeyRef string `json:"private_key_ref,omitempty"`
	// HostKey is the server's public key as in known_hosts ("ssh-ed25519 AAAA…"): the delivery
	// refuses a server that shows another.
	HostKey   string `json:"host_key,omitempty"`
	Directory string `json:"directory,omitempty"`
	// http
	URL              string `json:"url,omitempty"`
	Method           string `json:"method,omitempty"` // PUT (default) or POST
	AuthorizationRef string `json:"authorization_ref,omitempty"`
}

// Webhook is the URL notified when a platform's job (or a single request's) completes, fails
// or is delivered, signed as Standard Webhooks says with the secret SecretRef names.
type Webhook = events.Webhook

// WebhookEvents are the events a webhook may ask for.
var WebhookEvents = []string{"completed", "failed", "delivered", "delivery_failed"}

// Spec is what a user sets on a platform (create and full update).
type Spec struct {
	Name          string         `json:"name"`
	Type          Type           `json:"type"`
	DefaultConfig export.Request `json:"default_config"`
	Destination   Destination    `json:"destination"`
	Webhook       *Webhook       `json:"webhook"`
}

// Platform is a stored platform.
type Platform struct {
	ID string `json:"id"`
	Spec
	// ScheduleIDs are the schedules tied to the platform (read-only).
	ScheduleIDs []string  `json:"schedule_ids"`
	Owner       string    `json:"owner"`
	CreatedBy   string    `json:"created_by"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	Version     int64     `json:"version"`
}

// FieldError is a refused platform: Field is the JSON path at fault.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + " " + e.Message }

func refuse(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

const maxNameLength = 200

// Normalize fills the defaults (type custom, destination storage, ports, methods) and checks
// every field but the export configuration's contents, which export.Prepare checks once
// merged (Defaults).
func (s *Spec) Normalize() error {
	s.Name = strings.TrimSpace(s.Name)
	switch {
	case s.Name == "":
		return refuse("name", "is required")
	case utf8.RuneCountInString(s.Name) > maxNameLength:
		return refuse("name", "is longer than %d characters", maxNameLength)
	case strings.ContainsFunc(s.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return refuse("name", "must not hold control characters")
	}
	if s.Type == "" {
		s.Type = Custom
	}
	if _, ok := templates[s.Type]; !ok && s.Type != Custom {
		return refuse("type", "%q is not one of %s", s.Type, joinTypes())
	}
	if err := s.Destination.normalize(); err != nil {
		return err
	}
	if s.Webhook != nil {
		if err := CheckWebhook(s.Webhook); err != nil {
			return err
		}
	}
	return nil
}

func joinTypes() string {
	var out []string
	for _, t := range Types {
		out = append(out, string(t))
	}
	return strings.Join(out, ", ")
}

// refRE: env:NAME (an environment variable of the delivering service) or file:/absolute/path
// (a mounted secret).
var refRE = regexp.MustCompile(`^(env:[A-Za-z_][A-Za-z0-9_]{0,127}|file:/[^\x00-\x1f]{1,1000})$`)

func checkRef(field, ref string, required bool) error {
	if ref == "" {
		if required {
			return refuse(field, "is required: env:NAME or file:/path of the secret (never the secret itself)")
		}
		return nil
	}
	if !refRE.MatchString(ref) {
		return refuse(field, "must be env:NAME or file:/path of the secret (never the secret itself)")
	}
	return nil
}

var (
	hostRE   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:[0-9]{1,5})?$`)
	bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	keyRE    = regexp.MustCompile(`^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521) [A-Za-z0-9+/]+=*$`)
)

// checkPath: a path of plain segments (an S3 prefix, an SFTP directory): no "." or ".."
// segment, no control characters.
func checkPath(field, p string) error {
	if len(p) > 512 || strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return refuse(field, "must be at most 512 printable characters")
	}
	for _, seg := range strings.Split(strings.Trim(p, "/"), "/") {
		if seg == ".." || seg == "." {
			return refuse(field, "must not hold . or .. segments")
		}
	}
	return nil
}

func (d *Destination) normalize() error {
	if d.Type == "" {
		d.Type = Storage
	}
	set := map[string]bool{
		"endpoint": d.Endpoint != "", "bucket": d.Bucket != "", "prefix": d.Prefix != "", "region": d.Region != "",
		"use_tls": d.UseTLS != nil, "path_style": d.PathStyle, "access_key_ref": d.AccessKeyRef != "", "secret_key_ref": d.SecretKeyRef != "",
		"host": d.Host != "", "port": d.Port != 0, "user": d.User != "", "password_ref": d.PasswordRef != "",
		"private_key_ref": d.PrivateKeyRef != "", "host_key": d.HostKey != "", "directory": d.Directory != "",
		"url": d.URL != "", "method": d.Method != "", "authorization_ref": d.AuthorizationRef != "",
	}
	allowed := map[DestinationType][]string{
		Storage: nil,
		S3:      {"endpoint", "bucket", "prefix", "region", "use_tls", "path_style", "access_key_ref", "secret_key_ref"},
		SFTP:    {"host", "port", "user", "password_ref", "private_key_ref", "host_key", "directory"},
		HTTP:    {"url", "method", "authorization_ref"},
	}
	keys, ok := allowed[d.Type]
	if !ok {
		return refuse("destination.type", "%q is not one of storage, s3, sftp, http", d.Type)
	}
	for _, k := range slices.Sorted(maps.Keys(set)) {
		if set[k] && !slices.Contains(keys, k) {
			return refuse("destination."+k, "is not a setting of a %s destination", d.Type)
		}
	}
	switch d.Type {
	case S3:
		if !hostRE.MatchString(d.Endpoint) {
			return refuse("destination.endpoint", "must be host[:port], without a scheme")
		}
		if !bucketRE.MatchString(d.Bucket) {
			return refuse("destination.bucket", "must be a bucket name (3 to 63 lower-case letters, digits, dots and hyphens)")
		}
		if err := checkPath("destination.prefix", d.Prefix); err != nil {
			return err
		}
		if err := checkRef("destination.access_key_ref", d.AccessKeyRef, true); err != nil {
			return err
		}
		if err := checkRef("destination.secret_key_ref", d.SecretKeyRef, true); err != nil {
			return err
		}
		if d.UseTLS == nil {
			d.UseTLS = ptr(true)
		}
	case SFTP:
		if !hostRE.MatchString(d.Host) || strings.Contains(d.Host, ":") {
			return refuse("destination.host", "must be a host name or address (the port goes in port)")
		}
		if d.Port == 0 {
			d.Port = 22
		}
		if d.Port < 1 || d.Port > 65535 {
			return refuse("destination.port", "must be from 1 to 65535")
		}
		if d.User == "" || len(d.User) > 64 || strings.ContainsAny(d.User, " :@/\x00") {
			return refuse("destination.user", "is required: the login name")
		}
		if d.PasswordRef == "" && d.PrivateKeyRef == "" {
			return refuse("destination.private_key_ref", "or password_ref is required")
		}
		if err := checkRef("destination.password_ref", d.PasswordRef, false); err != nil {
			return err
		}
		if err := checkRef("destination.private_key_ref", d.PrivateKeyRef, false); err != nil {
			return err
		}
		d.HostKey = strings.TrimSpace(d.HostKey)
		if !keyRE.MatchString(d.HostKey) {
			return refuse("destination.host_key", "is required: the server's public key as in known_hosts (\"ssh-ed25519 AAAA…\"), so that no other server receives the files")
		}
		if err := checkPath("destination.directory", d.Directory); err != nil {
			return err
		}
	case HTTP:
		if err := checkURL("destination.url", d.URL); err != nil {
			return err
		}
		switch d.Method = strings.ToUpper(d.Method); d.Method {
		case "":
			d.Method = "PUT"
		case "PUT", "POST":
		default:
			return refuse("destination.method", "must be PUT or POST")
		}
		if err := checkRef("destination.authorization_ref", d.AuthorizationRef, false); err != nil {
			return err
		}
	}
	return nil
}

func checkURL(field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || len(raw) > 2048 {
		return refuse(field, "must be an http(s) URL without credentials (put them in a secret reference)")
	}
	return nil
}

// CheckWebhook validates a webhook (a platform's, or a request's), naming the field at fault
// under "webhook.".
func CheckWebhook(w *Webhook) error {
	if err := checkURL("webhook.url", w.URL); err != nil {
		return err
	}
	if err := checkRef("webhook.secret_ref", w.SecretRef, true); err != nil {
		return err
	}
	for _, e := range w.Events {
		if !slices.Contains(WebhookEvents, e) {
			return refuse("webhook.events", "%q is not one of %s", e, strings.Join(WebhookEvents, ", "))
		}
	}
	return nil
}

// New is a platform made from a normalized spec.
func New(id string, spec Spec, owner string, now time.Time) Platform {
	now = now.UTC()
	return Platform{ID: id, Spec: spec, ScheduleIDs: []string{}, Owner: owner, CreatedBy: owner, CreatedAt: now, UpdatedAt: now, Version: 1}
}

// Defaults are the platform's export configuration: its type's template under its own
// default_config. A schedule's configuration and a request go over it (export.Merge).
func (s Spec) Defaults() export.Request {
	return export.Merge(Template(s.Type), s.DefaultConfig)
}

// Access is the audit event of an act (events.Action*) on the platform, without its actor and
// client, which the caller adds.
func (p Platform) Access(action string) events.Accessed {
	c := p.Defaults()
	return events.Accessed{Action: action, ResourceType: "platform", ResourceID: p.ID, Owner: p.Owner,
		Entity: c.Entity, Format: c.Format, Fields: c.Fields, Filters: c.Filters}
}

func ptr[T any](v T) *T { return &v }
