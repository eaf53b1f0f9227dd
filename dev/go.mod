module github.com/productsmanager/exportplatform/dev

go 1.26.8
