package apidoc_test

import (
	"fmt"

	"github.com/productsmanager/exportplatform/pkg/apidoc"
)

func ExampleJSON() {
	out, err := apidoc.JSON([]byte(`
openapi: 3.1.0
info: {title: Demo, version: '1'}
x-ok: &ok {description: OK}
paths:
  /a: {get: {responses: {'200': *ok}}}
`))
	if err != nil {
		panic(err)
	}
	fmt.Println(string(out))
	// Output: {"openapi":"3.1.0","info":{"title":"Demo","version":"1"},"x-ok":{"description":"OK"},"paths":{"/a":{"get":{"responses":{"200":{"description":"OK"}}}}}}
}
