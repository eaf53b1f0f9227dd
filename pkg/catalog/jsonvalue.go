package catalog

import "github.com/productsmanager/exportplatform/pkg/exportfmt"

// appendObject appends a compact JSON object of keys and their text values typed as the JSON
// writer types cells: numbers as numbers (when they are), booleans as booleans, the rest as
// strings, NULL as null. Keys are this package's own names: they need no escaping.
func appendObject(dst []byte, keys []string, types []Type, vals [][]byte) []byte {
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, k...)
		dst = append(dst, '"', ':')
		v := vals[i]
		switch {
		case v == nil:
			dst = append(dst, "null"...)
		case types[i] == TypeInteger || types[i] == TypeDecimal:
			dst = exportfmt.AppendJSONNumber(dst, v)
		case types[i] == TypeBoolean && (string(v) == "true" || string(v) == "false"):
			dst = append(dst, v...)
		default:
			dst = exportfmt.AppendJSONString(dst, v)
		}
	}
	return append(dst, '}')
}
