module github.com/productsmanager/exportplatform/audit-sink

go 1.26.8
