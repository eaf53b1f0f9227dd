module github.com/productsmanager/exportplatform/e2e

go 1.26.8
