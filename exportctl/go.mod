module github.com/productsmanager/exportplatform/exportctl

go 1.26.8

replace github.com/productsmanager/exportplatform/pkg => ../pkg

require (
	github.com/gorilla/websocket v1.5.3
	github.com/productsmanager/exportplatform/pkg v0.0.0
	github.com/schollz/progressbar/v3 v3.19.1
	go.uber.org/goleak v1.3.0
	golang.org/x/term v0.47.0
)

require (
	github.com/golang-jwt/jwt/v5 v5.3.1 // indirect
	github.com/mattn/go-runewidth v0.0.24 // indirect
	github.com/mitchellh/colorstring v0.0.0-20190213212951-d06e56a500db // indirect
	github.com/rivo/uniseg v0.4.7 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
