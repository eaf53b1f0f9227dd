package seed

import "strconv"

type countryDef struct {
	code, tld, dial string
	weight          int
	forms, cities   []string
	surnames        []string
}

var countries = []countryDef{
	{"FR", "fr", "+33", 40, []string{"SARL", "SAS", "SA", "EURL"},
		[]string{"Paris", "Lyon", "Marseille", "Besançon", "Saint-Étienne", "Nîmes", "Lille", "Nantes", "Orléans", "Fréjus"},
		[]string{"Dupont", "Lefèvre", "Moreau", "Garnier", "Bérard", "Fournier", "Chevalier", "Rousseau", "Mercier", "Lemaître"}},
	{"DE", "de", "+49", 12, []string{"GmbH", "AG", "KG"},
		[]string{"Berlin", "München", "Köln", "Düsseldorf", "Hamburg", "Nürnberg"},
		[]string{"Müller", "Schäfer", "Weiß", "Groß", "Schröder", "Bauer"}},
	{"ES", "es", "+34", 8, []string{"S.L.", "S.A."},
		[]string{"Madrid", "Barcelona", "Málaga", "Córdoba", "Alcalá de Henares"},
		[]string{"García", "Muñoz", "Peña", "Núñez", "Ibáñez"}},
	{"IT", "it", "+39", 8, []string{"S.r.l.", "S.p.A."},
		[]string{"Milano", "Torino", "Napoli", "Forlì", "Cantù"},
		[]string{"Rossi", "Bianchi", "Ferrari", "Esposito", "Niccolò"}},
	{"BE", "be", "+32", 5, []string{"SRL", "BV", "SA"},
		[]string{"Bruxelles", "Liège", "Gent", "Namur"},
		[]string{"Peeters", "Janssens", "Dubois", "Lambert"}},
	{"NL", "nl", "+31", 4, []string{"B.V."},
		[]string{"Amsterdam", "Rotterdam", "Utrecht", "Den Haag"},
		[]string{"de Vries", "van Dijk", "Bakker", "Jansen"}},
	{"GB", "co.uk", "+44", 5, []string{"Ltd", "PLC", "LLP"},
		[]string{"London", "Manchester", "Leeds", "Bristol"},
		[]string{"Smith", "O'Brien", "Taylor", "Brown"}},
	{"US", "com", "+1", 5, []string{"Inc.", "LLC", "Corp."},
		[]string{"New York", "San José", "Austin", "Seattle"},
		[]string{"Johnson", "Miller", "Davis", "Martínez"}},
	{"CN", "cn", "+86", 6, []string{"Co., Ltd.", "Trading Co., Ltd."},
		[]string{"Shenzhen", "Guangzhou", "Ningbo", "Yiwu"},
		[]string{"Wang", "Li", "Zhang", "Chen"}},
	{"PL", "pl", "+48", 3, []string{"Sp. z o.o."},
		[]string{"Kraków", "Łódź", "Gdańsk", "Wrocław"},
		[]string{"Nowak", "Kowalski", "Wiśniewski", "Wójcik"}},
	{"PT", "pt", "+351", 2, []string{"Lda."},
		[]string{"Lisboa", "Porto", "Braga"},
		[]string{"Gonçalves", "Conceição", "Simões"}},
	{"CH", "ch", "+41", 2, []string{"AG", "SA", "Sàrl"},
		[]string{"Zürich", "Genève", "Lausanne", "Neuchâtel"},
		[]string{"Meier", "Favre", "Keller", "Schnyder"}},
}

var sectors = []string{"Distribution", "Import Export", "Électronique", "Logistique", "Trading",
	"Industries", "Négoce", "Components", "Wholesale", "Fournitures", "Tech", "& Fils", "Group"}

// SupplierColumns are the columns of suppliers, in generator order.
var SupplierColumns = []string{"id", "code", "name", "email", "phone", "country", "city", "active",
	"created_at", "updated_at"}

// SupplierCount is the number of suppliers seeded with n products: n/100, at least 10.
func SupplierCount(n int) int { return max(10, n/100) }

// supplierSource yields the suppliers rows 1..n.
type supplierSource struct {
	n, id int64
	g     *rng
	vals  [10]any
}

func newSupplierSource(n int64) *supplierSource { return &supplierSource{n: n, g: newRNG()} }

func (s *supplierSource) Values() ([]any, error) { return s.vals[:], nil }
func (s *supplierSource) Err() error             { return nil }

func (s *supplierSource) Next() bool {
	if s.id >= s.n {
		return false
	}
	s.id++
	id, g := s.id, s.g
	g.reset(saltSupplier, id)

	total := 0
	for _, c := range countries {
		total += c.weight
	}
	x := g.IntN(total)
	ci := 0
	for x >= countries[ci].weight {
		x -= countries[ci].weight
		ci++
	}
	c := &countries[ci]
	surname := pick(g, c.surnames)
	sector := pick(g, sectors)
	city := pick(g, c.cities)
	form := pick(g, c.forms)

	var name string
	switch x := g.IntN(100); {
	case id%7 == 5 && id/7 < int64(len(edgeSuppliers)): // all of them among the first 60
		name = edgeSuppliers[id/7]
	case id%97 == 50:
		name = edgeSuppliers[(id/97)%int64(len(edgeSuppliers))]
	case x < 40:
		name = surname + " " + sector + " " + form
	case x < 60:
		name = sector + " " + city + " " + form
	case x < 75:
		name = "Établissements " + surname
	case x < 85:
		name = surname + " & " + pick(g, c.surnames) + " " + form
	case x < 95:
		name = "\"" + surname + " " + sector + "\" " + form
	default:
		name = surname + ", " + sector + " " + form
	}

	local := pick(g, []string{"contact", "ventes", "commandes", "info", "sales", "contact+eu", "Service.Client"})
	domain := slugify(surname + " " + sector)
	if domain == "" {
		domain = "supplier" + itoa(id)
	}
	email := local + "@" + domain + "." + c.tld

	phone := c.dial
	for i := range 9 {
		if i%2 == 1 || i == 0 {
			phone += " "
		}
		phone += strconv.Itoa(g.IntN(10))
	}
	if g.pct(10) { // national format, leading zero
		phone = "0" + phone[len(c.dial)+1:]
	}

	created, updated := g.timestamps()
	s.vals = [10]any{id, supplierCode(id), name, email, phone, c.code, city, !g.pct(8), created, updated}
	return true
}

func supplierCode(id int64) string {
	b := []byte("SUP-")
	for range 5 - digits(id) {
		b = append(b, '0')
	}
	return string(strconv.AppendInt(b, id, 10))
}

// categorySource yields the fixed category tree.
type categorySource struct {
	i    int
	vals [5]any
}

// CategoryColumns are the columns of categories, in generator order.
var CategoryColumns = []string{"id", "parent_id", "name", "slug", "path"}

func (s *categorySource) Next() bool {
	if s.i >= len(tree.categories) {
		return false
	}
	c := tree.categories[s.i]
	s.i++
	var parent any
	if c.ParentID != 0 {
		parent = c.ParentID
	}
	s.vals = [5]any{c.ID, parent, c.Name, c.Slug, c.Path}
	return true
}

func (s *categorySource) Values() ([]any, error) { return s.vals[:], nil }
func (s *categorySource) Err() error             { return nil }
