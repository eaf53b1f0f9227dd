package seed

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Category is one row of the categories table.
type Category struct {
	ID       int64
	ParentID int64 // 0: a root (NULL in the table)
	Name     string
	Slug     string
	Path     string // "Home > Audio > Headphones"
}

// leafRef points a leaf category back into the taxonomy.
type leafRef struct {
	root, mid, leaf int
	id, midID       int64
}

// catalogTree is the fixed category tree, numbered depth-first from 1.
type catalogTree struct {
	categories []Category
	leaves     []leafRef
}

var tree = buildTree()

func buildTree() catalogTree {
	var t catalogTree
	used := map[string]bool{}
	add := func(parent *Category, name string) Category {
		c := Category{ID: int64(len(t.categories) + 1), Name: name, Path: name, Slug: slugify(name)}
		if parent != nil {
			c.ParentID = parent.ID
			c.Path = parent.Path + " > " + name
			if used[c.Slug] {
				c.Slug = parent.Slug + "-" + c.Slug
			}
		}
		used[c.Slug] = true
		t.categories = append(t.categories, c)
		return c
	}
	for ri, r := range taxonomy {
		root := add(nil, r.name)
		for mi, m := range r.mids {
			mid := add(&root, m.name)
			for li, l := range m.leaves {
				leaf := add(&mid, l.name)
				t.leaves = append(t.leaves, leafRef{root: ri, mid: mi, leaf: li, id: leaf.ID, midID: mid.ID})
			}
		}
	}
	return t
}

// Categories returns the category tree the seed loads (the same for every N).
func Categories() []Category {
	return append([]Category(nil), tree.categories...)
}

// slugify folds accents to ASCII, lowercases and joins words with dashes: "Câbles HDMI" ->
// "cables-hdmi", "LEGO® & construction" -> "lego-construction".
func slugify(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue
		case r == 'œ' || r == 'Œ':
			b.WriteString("oe")
			dash = false
		case r == 'ß':
			b.WriteString("ss")
			dash = false
		case r == 'ø' || r == 'Ø':
			b.WriteByte('o')
			dash = false
		case r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			b.WriteRune(unicode.ToLower(r))
			dash = false
		default:
			if !dash && b.Len() > 0 {
				b.WriteByte('-')
				dash = true
			}
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}
