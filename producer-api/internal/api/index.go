package api

import (
	_ "embed"
	"net/http"
)

//go:embed index.html
var indexHTML []byte

// index serves the placeholder home page (the full web UI comes with the job-tracker issue).
func index(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(indexHTML)
}
