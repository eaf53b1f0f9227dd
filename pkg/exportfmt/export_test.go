package exportfmt

// Hooks for the external tests.

// NewDeflate is the XLSX entries' compressor.
var NewDeflate = newDeflate

// SetMaxSheetBytes lowers the XML size past which a table continues on a new sheet, which
// is 3.75 GiB otherwise.
func SetMaxSheetBytes(x *XLSX, n int64) { x.maxSheetBytes = n }
