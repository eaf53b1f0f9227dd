package seed

import (
	"slices"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// productCore is what both the products and the product_suppliers generators need to know
// about a product; it comes from its own stream so each generator can recompute it.
type productCore struct {
	leaf       int   // index into tree.leaves: the product's kind, even without a category
	categoryID int64 // 0: no category (about 1%)
	price      int64 // cents, 50 to 500000
	suppliers  int   // 0 (about 1%) to 3
}

func (g *rng) core(id int64) productCore {
	g.reset(saltCategory, id)
	c := productCore{leaf: g.IntN(len(tree.leaves))}
	l := tree.leaves[c.leaf]
	switch x := g.IntN(1000); {
	case x < 10: // no category
	case x < 100:
		c.categoryID = l.midID // filed under the intermediate level
	default:
		c.categoryID = l.id
	}
	c.price = g.price()
	switch x := g.IntN(100); {
	case x == 0:
		c.suppliers = 0
	case x < 30:
		c.suppliers = 1
	case x < 70:
		c.suppliers = 2
	default:
		c.suppliers = 3
	}
	return c
}

// price draws cents from 0.50 to 5000.00, skewed towards cheap items, often ending in .99.
func (g *rng) price() int64 {
	var lo, hi int64
	switch x := g.IntN(100); {
	case x < 25:
		lo, hi = 50, 1000
	case x < 55:
		lo, hi = 1000, 5000
	case x < 80:
		lo, hi = 5000, 20000
	case x < 95:
		lo, hi = 20000, 100000
	default:
		lo, hi = 100000, 500001
	}
	c := lo + g.Int64N(hi-lo)
	if c >= 1000 && g.pct(40) {
		c = c - c%100 + 99
	}
	return min(c, 500000)
}

// ProductColumns are the columns of products, in the order the generator yields them.
var ProductColumns = []string{"id", "sku", "name", "description", "brand", "ean", "price", "currency",
	"stock", "status", "category_id", "weight_grams", "attributes", "created_at", "updated_at"}

// productSource yields the products rows 1..n (a pgx.CopyFromSource). The values of a row are
// valid until the next call to Next: buffers are reused, memory stays flat.
type productSource struct {
	n, id      int64
	core, g    *rng
	name, desc []byte
	attrs      []byte
	vals       [15]any
}

func newProductSource(n int64) *productSource {
	return &productSource{n: n, core: newRNG(), g: newRNG(),
		name: make([]byte, 0, 256), desc: make([]byte, 0, 8192), attrs: make([]byte, 0, 512)}
}

func (s *productSource) Next() bool {
	if s.id >= s.n {
		return false
	}
	s.id++
	s.fill()
	return true
}

func (s *productSource) Values() ([]any, error) { return s.vals[:], nil }
func (s *productSource) Err() error             { return nil }

func (s *productSource) fill() {
	id := s.id
	c := s.core.core(id)
	g := s.g
	g.reset(saltProduct, id)
	ref := tree.leaves[c.leaf]
	root := &taxonomy[ref.root]
	noun := root.mids[ref.mid].leaves[ref.leaf].noun
	brand := pick(g, root.brands)
	model := pick(g, modelLetters) + strconv.Itoa(100+g.IntN(9900)) + pick(g, modelSuffixes)
	color := g.IntN(len(colors))

	s.name = s.productName(s.name[:0], id, noun, brand, model, color)
	s.desc = s.description(s.desc[:0], noun, brand, model)
	s.attrs = s.attributes(s.attrs[:0], color)

	currency := "EUR"
	switch x := g.IntN(100); {
	case x < 3:
		currency = "USD"
	case x < 4:
		currency = "GBP"
	case x < 5:
		currency = "CHF"
	}
	var stock int32
	switch x := g.IntN(100); {
	case x < 8:
	case x < 68:
		stock = 1 + g.Int32N(100)
	case x < 93:
		stock = 101 + g.Int32N(900)
	default:
		stock = 1001 + g.Int32N(9000)
	}
	status := "active"
	switch x := g.IntN(100); {
	case x < 15:
		status = "draft"
	case x < 20:
		status = "archived"
	}
	var category, weight any
	if c.categoryID != 0 {
		category = c.categoryID
	}
	if !g.pct(10) {
		if g.pct(70) {
			weight = 5 + g.Int32N(2000)
		} else {
			weight = 2000 + g.Int32N(48001)
		}
	}
	created, updated := g.timestamps()

	prefix := root.code
	if c.categoryID == 0 {
		prefix = "GEN"
	}
	s.vals = [15]any{id, sku(prefix, id), s.name, s.desc, brand, EAN13(id), Cents(c.price), currency,
		stock, status, category, weight, s.attrs, created, updated}
}

func sku(prefix string, id int64) string {
	b := make([]byte, 0, 16)
	b = append(b, prefix...)
	b = append(b, '-')
	for range 7 - digits(id) {
		b = append(b, '0')
	}
	return string(strconv.AppendInt(b, id, 10))
}

func digits(n int64) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}

func (s *productSource) productName(b []byte, id int64, noun, brand, model string, color int) []byte {
	g := s.g
	if id%50 == 7 { // a product in 50 carries a name built to break naive exports
		return append(b, edgeNames[(id/50)%int64(len(edgeNames))]...)
	}
	sp := func(b []byte, parts ...string) []byte {
		for i, p := range parts {
			if i > 0 {
				b = append(b, ' ')
			}
			b = append(b, p...)
		}
		return b
	}
	switch x := g.IntN(100); {
	case x < 30:
		b = sp(b, noun, brand, model)
	case x < 50:
		b = sp(b, brand, noun, pick(g, adjectives), "-", colors[color])
	case x < 65: // Câble HDMI 2.1 "Ultra" 2m
		b = sp(b, noun, model, "\""+pick(g, editions)+"\"", pick(g, sizes))
	case x < 80:
		b = sp(b, noun, pick(g, adjectives)+",", colors[color]+",", pick(g, sizes))
	case x < 90:
		b = sp(b, noun, brand, model, "("+colors[color]+")")
	case x < 95:
		b = append(b, "Lot de "...)
		b = strconv.AppendInt(b, int64(2+g.IntN(5)), 10)
		b = append(b, " : "...)
		b = appendLowerFirst(b, noun)
		b = append(b, ' ')
		b = append(b, pick(g, adjectives)...)
	case x < 99:
		b = sp(b, noun, model+";", pick(g, adjectives)+";", colors[color])
	default:
		b = sp(b, noun, brand, pick(g, []string{"🎧", "✅", "🔥", "⚡"}), pick(g, editions))
	}
	return b
}

func appendLowerFirst(b []byte, s string) []byte {
	r, n := utf8.DecodeRuneInString(s)
	b = utf8.AppendRune(b, unicode.ToLower(r))
	return append(b, s[n:]...)
}

// appendTemplate expands %N (noun, lowercased), %B (brand) and %M (model).
func appendTemplate(b []byte, tmpl, noun, brand, model string) []byte {
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] == '%' && i+1 < len(tmpl) {
			switch tmpl[i+1] {
			case 'N':
				b = appendLowerFirst(b, noun)
				i++
				continue
			case 'B':
				b = append(b, brand...)
				i++
				continue
			case 'M':
				b = append(b, model...)
				i++
				continue
			}
		}
		b = append(b, tmpl[i])
	}
	return b
}

func (s *productSource) description(b []byte, noun, brand, model string) []byte {
	g := s.g
	if g.IntN(200) == 0 {
		return b // 0.5% empty
	}
	if g.pct(2) {
		b = append(b, pick(g, leadingDescriptions)...)
	}
	b = appendTemplate(b, pick(g, intros), noun, brand, model)
	sep := " "
	switch x := g.IntN(100); {
	case x < 20:
		sep = "\n"
	case x < 30:
		sep = "\r\n"
	case x < 35:
		sep = "\n\n"
	}
	for range 1 + g.IntN(4) {
		b = append(b, sep...)
		b = append(b, pick(g, features)...)
	}
	if g.pct(8) {
		for range 2 + g.IntN(3) {
			b = append(b, '\n')
			b = append(b, pick(g, bulletFeatures)...)
		}
	}
	if g.pct(5) {
		b = append(b, sep...)
		b = append(b, pick(g, tabbedFeatures)...)
	}
	if g.pct(10) {
		b = append(b, pick(g, emojiTails)...)
	}
	if g.IntN(200) == 0 { // 0.5%: a long technical sheet, 2 to 6 KB
		target := len(b) + 2048 + g.IntN(4096)
		b = append(b, "\n\nCaractéristiques techniques détaillées :"...)
		for len(b) < target {
			b = append(b, "\n"...)
			b = append(b, pick(g, features)...)
			if g.pct(30) {
				b = append(b, ' ')
				b = append(b, pick(g, tabbedFeatures)...)
			}
		}
	}
	return b
}

// attributes writes a JSON object: color, size, material, tags, warranty, origin, dimensions…
func (s *productSource) attributes(b []byte, color int) []byte {
	g := s.g
	b = append(b, `{"color":`...)
	b = appendJSONString(b, colorKeys[color])
	if g.pct(50) {
		b = append(b, `,"size":`...)
		b = appendJSONString(b, pick(g, sizeKeys))
	}
	if g.pct(40) {
		b = append(b, `,"material":`...)
		b = appendJSONString(b, pick(g, materials))
	}
	if n := g.IntN(4); n > 0 {
		b = append(b, `,"tags":[`...)
		for i := range n {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, pick(g, tags))
		}
		b = append(b, ']')
	}
	b = append(b, `,"warranty_months":`...)
	b = strconv.AppendInt(b, int64(pick(g, []int{0, 6, 12, 24, 24, 24, 36, 60})), 10)
	if g.pct(60) {
		b = append(b, `,"origin":`...)
		b = appendJSONString(b, pick(g, origins))
	}
	if g.pct(30) {
		b = append(b, `,"dimensions_mm":{"l":`...)
		b = strconv.AppendInt(b, int64(10+g.IntN(1990)), 10)
		b = append(b, `,"w":`...)
		b = strconv.AppendInt(b, int64(10+g.IntN(990)), 10)
		b = append(b, `,"h":`...)
		b = strconv.AppendInt(b, int64(5+g.IntN(995)), 10)
		b = append(b, '}')
	}
	if g.pct(10) {
		b = append(b, `,"energy_class":`...)
		b = appendJSONString(b, pick(g, []string{"A", "B", "C", "D", "E", "F", "G"}))
	}
	if g.pct(5) {
		b = append(b, `,"notes":`...)
		b = appendJSONString(b, pick(g, features)+"\n"+pick(g, tabbedFeatures))
	}
	if g.pct(20) {
		b = append(b, `,"eco_friendly":`...)
		b = strconv.AppendBool(b, g.pct(50))
	}
	return append(b, '}')
}

func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// EAN13 returns the EAN-13 of product id: a GS1-like prefix (some starting with 0, as UPC codes
// do), nine digits that are a bijection of id mod 10^9 (unique below a billion products), and
// the check digit.
func EAN13(id int64) string {
	prefixes := [...]int64{376, 376, 376, 300, 340, 400, 429, 500, 800, 840, 871, 560, 12, 36}
	p := prefixes[splitmix64(uint64(id))%uint64(len(prefixes))]
	body := (uint64(id) * 982451653) % 1_000_000_000
	var d [13]byte
	v := uint64(p)*1_000_000_000 + body
	for i := 11; i >= 0; i-- {
		d[i] = byte('0' + v%10)
		v /= 10
	}
	d[12] = EANCheckDigit(string(d[:12]))
	return string(d[:])
}

// EANCheckDigit returns the check digit of the first 12 digits of an EAN-13.
func EANCheckDigit(first12 string) byte {
	sum := 0
	for i := 0; i < 12; i++ {
		n := int(first12[i] - '0')
		if i%2 == 1 {
			n *= 3
		}
		sum += n
	}
	return byte('0' + (10-sum%10)%10)
}

// LinkColumns are the columns of product_suppliers, in generator order.
var LinkColumns = []string{"product_id", "supplier_id", "supplier_sku", "cost_price", "lead_time_days", "is_primary"}

type link struct {
	supplier int64
	primary  bool
}

// linkSource yields the product_suppliers rows of products 1..n over suppliers 1..suppliers:
// 1 to 3 distinct suppliers per product (none for about 1%), exactly one of them primary.
type linkSource struct {
	n, suppliers int64
	id           int64
	core, g      *rng
	cur          [3]link
	cnt, idx     int
	price        int64
	rows         int64
	vals         [6]any
}

func newLinkSource(n, suppliers int64) *linkSource {
	return &linkSource{n: n, suppliers: suppliers, core: newRNG(), g: newRNG()}
}

func (s *linkSource) Next() bool {
	for s.idx >= s.cnt {
		if s.id >= s.n {
			return false
		}
		s.id++
		s.nextProduct()
	}
	g := s.g
	l := s.cur[s.idx]
	s.idx++
	cost := max(1, s.price*int64(40+g.IntN(46))/100)
	var lead int32
	switch x := g.IntN(100); {
	case x < 80:
		lead = 1 + g.Int32N(14)
	case x < 95:
		lead = 15 + g.Int32N(31)
	default:
		lead = 60 + g.Int32N(61)
	}
	s.vals = [6]any{s.id, l.supplier, supplierSKU(g, l.supplier), Cents(cost), lead, l.primary}
	s.rows++
	return true
}

func (s *linkSource) Values() ([]any, error) { return s.vals[:], nil }
func (s *linkSource) Err() error             { return nil }

func (s *linkSource) nextProduct() {
	c := s.core.core(s.id)
	s.price = c.price
	s.cnt, s.idx = min(c.suppliers, int(s.suppliers)), 0
	g := s.g
	g.reset(saltLinks, s.id)
	for i := 0; i < s.cnt; i++ {
	draw:
		sup := 1 + g.Int64N(s.suppliers)
		for j := range i {
			if s.cur[j].supplier == sup {
				goto draw
			}
		}
		s.cur[i] = link{supplier: sup}
	}
	slices.SortFunc(s.cur[:s.cnt], func(a, b link) int { return int(a.supplier - b.supplier) })
	if s.cnt > 0 {
		s.cur[g.IntN(s.cnt)].primary = true
	}
}

func supplierSKU(g *rng, supplier int64) string {
	const alnum = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
	b := make([]byte, 0, 16)
	if g.pct(25) { // numeric with leading zeros, as many ERPs print them
		v := g.Int64N(10_000_000)
		for range 8 - digits(v) {
			b = append(b, '0')
		}
		return string(strconv.AppendInt(b, v, 10))
	}
	b = append(b, 'S')
	for range 4 - digits(supplier) {
		b = append(b, '0')
	}
	b = strconv.AppendInt(b, supplier, 10)
	b = append(b, '-')
	for range 6 {
		b = append(b, alnum[g.IntN(len(alnum))])
	}
	return string(b)
}
