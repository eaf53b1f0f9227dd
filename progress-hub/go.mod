module github.com/productsmanager/exportplatform/progress-hub

go 1.26.8
