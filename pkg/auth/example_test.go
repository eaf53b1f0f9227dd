package auth_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/productsmanager/exportplatform/pkg/auth"
)

func ExampleMint() {
	secret := []byte("local-dev-secret")
	token, err := auth.Mint(secret, auth.Principal{
		Subject:     "alice",
		Name:        "Alice",
		Permissions: []string{auth.PermReadExports},
	}, time.Hour, time.Now())
	if err != nil {
		fmt.Println(err)
		return
	}

	v, err := auth.NewHS256Verifier(secret)
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := v.Verify(token)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Subject, p.Name, p.Has(auth.PermReadExports), p.Has(auth.PermWriteExports))
	// Output: alice Alice true false
}

func ExampleVerifier_Require() {
	secret := []byte("local-dev-secret")
	v, err := auth.NewHS256Verifier(secret)
	if err != nil {
		fmt.Println(err)
		return
	}
	onError := func(w http.ResponseWriter, r *http.Request, status int, code, message string) {
		// A service renders its own error body here.
		http.Error(w, code+": "+message, status)
	}
	create := v.Require(auth.PermWriteExports, false, onError)(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			p, _ := auth.FromContext(r.Context())
			fmt.Fprintf(w, "export queued for %s", p.Subject)
		}))

	reader, _ := auth.Mint(secret, auth.Principal{Subject: "alice", Permissions: []string{auth.PermReadExports}}, time.Hour, time.Now())
	writer, _ := auth.Mint(secret, auth.Principal{Subject: "bob", Permissions: []string{auth.PermWriteExports}}, time.Hour, time.Now())
	for _, token := range []string{"", reader, writer} {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/exports/csv/products", nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		create.ServeHTTP(w, r)
		fmt.Print(w.Code, " ", w.Body.String())
		if w.Code == http.StatusOK {
			fmt.Println()
		}
	}
	// Output:
	// 401 unauthenticated: missing bearer token
	// 403 permission_denied: missing permission WRITE_EXPORTS
	// 200 export queued for bob
}
