module github.com/productsmanager/exportplatform/scheduler

go 1.26.8
