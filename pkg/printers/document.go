package printers

import (
	"encoding/json"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// Document is a report in the form cli-runtime's printers take: the JSON
// document Structured prints as json, decoded the way kubectl decodes
// objects (whole numbers as int64), so that -o jsonpath and -o go-template
// see exactly the fields -o json shows, under the same names.
func Document(report any) (*unstructured.Unstructured, error) {
	b, err := json.Marshal(report)
	if err != nil {
		return nil, err
	}
	content := map[string]any{}
	if err := utiljson.Unmarshal(b, &content); err != nil {
		return nil, err
	}
	return &unstructured.Unstructured{Object: content}, nil
}
