module github.com/productsmanager/exportplatform/producer-api

go 1.26.8
