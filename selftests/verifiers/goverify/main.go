// goverify: path validation with Go's crypto/x509 (the standard library
// only), for selftests/e2e_forgery.sh.  Usage: goverify ROOTS.pem LEAF.pem
// [INTERMEDIATES.pem].  Exit 0 accepted, 1 rejected (reason on stdout),
// 2 unusable input.  crypto/x509 has no revocation checking: CRLs are not
// an input (docs/LCA.md, Interoperability).
package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

func load(path string) []*x509.Certificate {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			// a certificate Go cannot parse is a rejection, not a usage error
			fmt.Println("parse:", err)
			os.Exit(1)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		fmt.Println(path + ": no certificate")
		os.Exit(2)
	}
	return out
}

func main() {
	if len(os.Args) < 3 || len(os.Args) > 4 {
		fmt.Println("usage: goverify ROOTS.pem LEAF.pem [INTERMEDIATES.pem]")
		os.Exit(2)
	}
	roots := x509.NewCertPool()
	for _, c := range load(os.Args[1]) {
		roots.AddCert(c)
	}
	leaf := load(os.Args[2])[0]
	inter := x509.NewCertPool()
	if len(os.Args) == 4 {
		for _, c := range load(os.Args[3]) {
			inter.AddCert(c)
		}
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		fmt.Println("rejected:", err)
		os.Exit(1)
	}
	fmt.Println("accepted")
}
