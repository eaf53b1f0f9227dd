package seed

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"math"
	"math/big"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// rowsOf drains a source, handing each row to fn; values are only valid during the call.
func rowsOf(t testing.TB, src pgx.CopyFromSource, cols int, fn func(vals []any)) int {
	t.Helper()
	n := 0
	for src.Next() {
		vals, err := src.Values()
		if err != nil {
			t.Fatal(err)
		}
		if len(vals) != cols {
			t.Fatalf("row %d: %d values, want %d", n, len(vals), cols)
		}
		fn(vals)
		n++
	}
	if err := src.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

func hashValue(h hash.Hash, v any) {
	var b [8]byte
	switch v := v.(type) {
	case nil:
		h.Write([]byte{0})
	case int64:
		binary.BigEndian.PutUint64(b[:], uint64(v))
		h.Write(append([]byte{1}, b[:]...))
	case int32:
		binary.BigEndian.PutUint32(b[:], uint32(v))
		h.Write(append([]byte{2}, b[:4]...))
	case string:
		fmt.Fprintf(h, "\x03%d:%s", len(v), v)
	case []byte:
		fmt.Fprintf(h, "\x04%d:%s", len(v), v)
	case Cents:
		binary.BigEndian.PutUint64(b[:], uint64(v))
		h.Write(append([]byte{5}, b[:]...))
	case bool:
		if v {
			h.Write([]byte{6, 1})
		} else {
			h.Write([]byte{6, 0})
		}
	case time.Time:
		binary.BigEndian.PutUint64(b[:], uint64(v.UnixMicro()))
		h.Write(append([]byte{7}, b[:]...))
		h.Write([]byte(v.Location().String()))
	default:
		panic(fmt.Sprintf("unexpected value type %T", v))
	}
}

// hashCatalog hashes every row Seed would load for n products, without a database.
func hashCatalog(t testing.TB, n int) string {
	h := sha256.New()
	each := func(vals []any) {
		for _, v := range vals {
			hashValue(h, v)
		}
		h.Write([]byte{'\n'})
	}
	s := int64(SupplierCount(n))
	rowsOf(t, &categorySource{}, len(CategoryColumns), each)
	rowsOf(t, newSupplierSource(s), len(SupplierColumns), each)
	rowsOf(t, newProductSource(int64(n)), len(ProductColumns), each)
	rowsOf(t, newLinkSource(int64(n), s), len(LinkColumns), each)
	return hex.EncodeToString(h.Sum(nil))
}

func TestDeterministic(t *testing.T) {
	const n = 3000
	first := hashCatalog(t, n)
	results := make(chan string, 2)
	for range 2 { // concurrently too: generators share no state
		go func() { results <- hashCatalog(t, n) }()
	}
	for range 2 {
		if got := <-results; got != first {
			t.Fatalf("same N, different data: %s vs %s", got, first)
		}
	}
	if other := hashCatalog(t, n+1); other == first {
		t.Fatal("N and N+1 give the same data")
	}
}

// The data of a given N must not drift between versions unnoticed: the demo catalog, the
// benchmarks and the end-to-end tests count on it. If you changed the generator on purpose,
// update the hash below.
func TestGolden(t *testing.T) {
	const want = "89128738cd76709e6b1fd1ca740e1771182668df3580f2f0bb47dfe1edc18444"
	if got := hashCatalog(t, 1000); got != want {
		t.Errorf("catalog for N=1000 changed: hash %s, want %s", got, want)
	}
}

// Product i does not depend on N (only the suppliers it links to do).
func TestProductsIndependentOfN(t *testing.T) {
	collect := func(n int64) []string {
		var out []string
		rowsOf(t, newProductSource(n), len(ProductColumns), func(vals []any) {
			h := sha256.New()
			for _, v := range vals {
				hashValue(h, v)
			}
			out = append(out, hex.EncodeToString(h.Sum(nil)))
		})
		return out
	}
	small, large := collect(200), collect(5000)
	for i := range small {
		if small[i] != large[i] {
			t.Fatalf("product %d differs between N=200 and N=5000", i+1)
		}
	}
}

func TestDistributions(t *testing.T) {
	const n = 20000
	suppliers := int64(SupplierCount(n))
	var noCategory, noWeight, long int
	status := map[string]int{}
	currencies := map[string]int{}
	skus := map[string]bool{}
	eans := map[string]bool{}
	leafOrMid := map[int64]bool{}
	for _, c := range tree.categories {
		if c.ParentID != 0 {
			leafOrMid[c.ID] = true
		}
	}
	rowsOf(t, newProductSource(n), len(ProductColumns), func(v []any) {
		id := v[0].(int64)
		if v[10] == nil {
			noCategory++
		} else if !leafOrMid[v[10].(int64)] {
			t.Errorf("product %d: category %v is not a known child category", id, v[10])
		}
		if v[11] == nil {
			noWeight++
		} else if w := v[11].(int32); w < 1 || w > 50000 {
			t.Errorf("product %d: weight %d", id, w)
		}
		status[v[9].(string)]++
		currencies[v[7].(string)]++
		sku := v[1].(string)
		if skus[sku] {
			t.Errorf("duplicate sku %s", sku)
		}
		skus[sku] = true
		ean := v[5].(string)
		if eans[ean] {
			t.Errorf("duplicate ean %s", ean)
		}
		eans[ean] = true
		if p := v[6].(Cents); p < 50 || p > 500000 {
			t.Errorf("product %d: price %s", id, p)
		}
		if s := v[8].(int32); s < 0 || s > 10000 {
			t.Errorf("product %d: stock %d", id, s)
		}
		if len(v[3].([]byte)) >= 2048 {
			long++
		}
		if !json.Valid(v[12].([]byte)) {
			t.Errorf("product %d: attributes not JSON: %s", id, v[12])
		}
		created, updated := v[13].(time.Time), v[14].(time.Time)
		if created.Before(timeStart) || !updated.Before(timeEnd) || updated.Before(created) {
			t.Errorf("product %d: timestamps %s %s", id, created, updated)
		}
	})
	within := func(what string, got int, wantPct, tolPct float64) {
		t.Helper()
		pct := 100 * float64(got) / n
		if math.Abs(pct-wantPct) > tolPct {
			t.Errorf("%s: %.2f%%, want %.1f%% ± %.1f", what, pct, wantPct, tolPct)
		}
	}
	within("products without category", noCategory, 1, 0.4)
	within("products without weight", noWeight, 10, 1.5)
	within("active", status["active"], 80, 2)
	within("draft", status["draft"], 15, 2)
	within("archived", status["archived"], 5, 1)
	within("EUR", currencies["EUR"], 95, 1.5)
	if len(status) != 3 {
		t.Errorf("statuses %v", status)
	}
	if long == 0 {
		t.Error("no long description (>= 2 KB)")
	}

	// Links: 1 to 3 distinct suppliers, exactly one primary, about 1% of products without any.
	type agg struct {
		count, primaries int
		seen             map[int64]bool
	}
	per := map[int64]*agg{}
	links := rowsOf(t, newLinkSource(n, suppliers), len(LinkColumns), func(v []any) {
		pid, sid := v[0].(int64), v[1].(int64)
		if pid < 1 || pid > n || sid < 1 || sid > suppliers {
			t.Fatalf("link %d-%d out of range", pid, sid)
		}
		a := per[pid]
		if a == nil {
			a = &agg{seen: map[int64]bool{}}
			per[pid] = a
		}
		if a.seen[sid] {
			t.Errorf("product %d: supplier %d twice", pid, sid)
		}
		a.seen[sid] = true
		a.count++
		if v[5].(bool) {
			a.primaries++
		}
		if c := v[3].(Cents); c < 1 {
			t.Errorf("product %d: cost price %s", pid, c)
		}
		if d := v[4].(int32); d < 1 || d > 120 {
			t.Errorf("product %d: lead time %d", pid, d)
		}
	})
	for pid, a := range per {
		if a.count > 3 || a.primaries != 1 {
			t.Errorf("product %d: %d links, %d primary", pid, a.count, a.primaries)
		}
	}
	within("products without supplier", n-len(per), 1, 0.4)
	if avg := float64(links) / n; avg < 1.8 || avg > 2.2 {
		t.Errorf("%.2f links per product, want about 2", avg)
	}
}

func TestEAN13(t *testing.T) {
	if got := EANCheckDigit("400638133393"); got != '1' { // 4006381333931, a real EAN
		t.Errorf("check digit of 400638133393: %c, want 1", got)
	}
	valid := regexp.MustCompile(`^[0-9]{13}$`)
	leadingZero := false
	for _, id := range []int64{1, 2, 3, 42, 999, 12345, 999_999, 1_000_000, 123_456_789, 999_999_999} {
		e := EAN13(id)
		if !valid.MatchString(e) {
			t.Fatalf("EAN13(%d) = %q", id, e)
		}
		// Weighted sum of all 13 digits must be a multiple of 10.
		sum := 0
		for i, r := range e {
			d := int(r - '0')
			if i%2 == 1 {
				d *= 3
			}
			sum += d
		}
		if sum%10 != 0 {
			t.Errorf("EAN13(%d) = %s: bad check digit", id, e)
		}
	}
	for id := int64(1); id <= 20000; id++ {
		if strings.HasPrefix(EAN13(id), "0") {
			leadingZero = true
			break
		}
	}
	if !leadingZero {
		t.Error("no EAN with a leading zero")
	}
}

// Every kind of character an export has to survive shows up in a small catalog.
func TestTrickyCharacters(t *testing.T) {
	const n = 2000
	var names, descs, brands, suppliers []string
	rowsOf(t, newProductSource(n), len(ProductColumns), func(v []any) {
		names = append(names, string(v[2].([]byte)))
		descs = append(descs, string(v[3].([]byte)))
		brands = append(brands, v[4].(string))
	})
	rowsOf(t, newSupplierSource(int64(SupplierCount(n))), len(SupplierColumns), func(v []any) {
		suppliers = append(suppliers, v[2].(string), v[4].(string))
	})
	all := append(append(append(append([]string{}, names...), descs...), brands...), suppliers...)
	contains := func(set []string, sub string) bool {
		for _, s := range set {
			if strings.Contains(s, sub) {
				return true
			}
		}
		return false
	}
	startsWith := func(set []string, prefix string) bool {
		for _, s := range set {
			if strings.HasPrefix(s, prefix) {
				return true
			}
		}
		return false
	}
	for _, sub := range []string{`"`, ",", ";", "\t", "\n", "\r\n", "'", "é", "ç", "ü", "ñ", "🎧", "✅", "\\"} {
		if !contains(all, sub) {
			t.Errorf("no text contains %q", sub)
		}
	}
	for _, sub := range []string{`"`, ",", ";", "\n", "🎧"} {
		if !contains(names, sub) {
			t.Errorf("no product name contains %q", sub)
		}
		if !contains(descs, sub) {
			t.Errorf("no description contains %q", sub)
		}
	}
	if !contains(names, `Câble HDMI 2.1 "Ultra" 2m`) {
		t.Error(`no product named Câble HDMI 2.1 "Ultra" 2m`)
	}
	for _, p := range []string{"=", "+", "-", "@"} {
		if !startsWith(names, p) {
			t.Errorf("no product name starts with %q", p)
		}
		if !startsWith(descs, p) {
			t.Errorf("no description starts with %q", p)
		}
		if !startsWith(suppliers, p) {
			t.Errorf("no supplier name or phone starts with %q", p)
		}
	}
	if !startsWith(brands, "@") {
		t.Error("no brand starts with @")
	}
	if !startsWith(names, "=HYPERLINK(") {
		t.Error("no =HYPERLINK( product name")
	}
	empty := 0
	for _, d := range descs {
		if d == "" {
			empty++
		}
	}
	if empty == 0 {
		t.Error("no empty description")
	}
}

func TestCategories(t *testing.T) {
	cats := Categories()
	if len(cats) < 180 || len(cats) > 220 {
		t.Fatalf("%d categories, want about 200", len(cats))
	}
	byID := map[int64]Category{}
	slugs := map[string]bool{}
	slugRE := regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	depth := map[int]int{}
	for i, c := range cats {
		if c.ID != int64(i+1) {
			t.Fatalf("category %d has id %d", i+1, c.ID)
		}
		if !slugRE.MatchString(c.Slug) || slugs[c.Slug] {
			t.Errorf("slug %q: malformed or duplicate", c.Slug)
		}
		slugs[c.Slug] = true
		want := c.Name
		if c.ParentID != 0 {
			p, ok := byID[c.ParentID]
			if !ok {
				t.Fatalf("category %d: parent %d not before it", c.ID, c.ParentID)
			}
			want = p.Path + " > " + c.Name
		}
		if c.Path != want {
			t.Errorf("category %d: path %q, want %q", c.ID, c.Path, want)
		}
		depth[strings.Count(c.Path, " > ")+1]++
		byID[c.ID] = c
	}
	if depth[1] != 10 || depth[2] == 0 || depth[3] == 0 || len(depth) != 3 {
		t.Errorf("levels: %v", depth)
	}
	if byID[2].Path != "Home > Audio" || byID[3].Path != "Home > Audio > Headphones" {
		t.Errorf("paths %q, %q", byID[2].Path, byID[3].Path)
	}
}

func TestSlugify(t *testing.T) {
	for in, want := range map[string]string{
		"Câbles HDMI":          "cables-hdmi",
		"LEGO® & construction": "lego-construction",
		"Cadres, affiches":     "cadres-affiches",
		"Protections d'écran":  "protections-d-ecran",
		"Œillet Straße Køben":  "oeillet-strasse-koben",
	} {
		if got := slugify(in); got != want {
			t.Errorf("slugify(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSupplierCount(t *testing.T) {
	for n, want := range map[int]int{0: 10, 999: 10, 1000: 10, 1099: 10, 1100: 11, 100000: 1000, 1000000: 10000} {
		if got := SupplierCount(n); got != want {
			t.Errorf("SupplierCount(%d) = %d, want %d", n, got, want)
		}
	}
}

// The hand-written binary numeric decodes, with pgx's own codec, to the same value.
func TestNumericEncoding(t *testing.T) {
	m := pgtype.NewMap()
	for _, c := range []int64{0, 1, 5, 10, 50, 99, 100, 101, 1000, 9999, 10000, 10001, 12345, 100000, 500000,
		999999, 1000000, 1234567800, 99999999999, 999999999999, -1, -1234, -100000000} {
		buf := appendNumericCents(nil, c)
		var got pgtype.Numeric
		if err := m.Scan(pgtype.NumericOID, pgtype.BinaryFormatCode, buf, &got); err != nil {
			t.Fatalf("%d: %v", c, err)
		}
		v := new(big.Int).Set(got.Int)
		want := big.NewInt(c)
		for e := got.Exp; e > -2; e-- {
			v.Mul(v, big.NewInt(10))
		}
		for e := got.Exp; e < -2; e++ {
			want.Mul(want, big.NewInt(10))
		}
		if v.Cmp(want) != 0 {
			t.Errorf("cents %d decode to %v e%d", c, got.Int, got.Exp)
		}
		if s := Cents(c).String(); c >= 0 && s != fmt.Sprintf("%d.%02d", c/100, c%100) {
			t.Errorf("Cents(%d).String() = %s", c, s)
		}
	}
}

func BenchmarkProducts(b *testing.B) {
	src := newProductSource(math.MaxInt64)
	for b.Loop() {
		src.Next()
		_, _ = src.Values()
	}
}

func BenchmarkLinks(b *testing.B) {
	src := newLinkSource(math.MaxInt64, 10000)
	for b.Loop() {
		src.Next()
		_, _ = src.Values()
	}
}
