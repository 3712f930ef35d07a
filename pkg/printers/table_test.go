package printers

import (
	"bytes"
	"testing"
)

func TestTableLooksLikeKubectl(t *testing.T) {
	var b bytes.Buffer
	err := Table(&b, []string{"NAMESPACE", "SERVICE", "TYPE"}, [][]string{
		{"provider-ns", "mysql", "Headless"},
		{"web", "frontend-long-name", "ClusterSetIP"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "NAMESPACE     SERVICE              TYPE\n" +
		"provider-ns   mysql                Headless\n" +
		"web           frontend-long-name   ClusterSetIP\n"
	if b.String() != want {
		t.Errorf("table:\n%q\nwant:\n%q", b.String(), want)
	}
}
