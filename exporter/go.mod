module github.com/productsmanager/exportplatform/exporter

go 1.26.8
