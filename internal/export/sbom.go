package export

import (
	"bytes"
	"fmt"

	"github.com/accord-build/accord/sbom"
)

// Format is an SBOM encoding.
type Format string

// The SBOM encodings.
const (
	// SPDXJSON is SPDX 2.3 JSON.
	SPDXJSON Format = "spdx-json"
	// SPDXTagValue is SPDX 2.3 tag-value.
	SPDXTagValue Format = "spdx-tv"
)

// EncodeSBOM encodes an SPDX JSON document (an SBOM attestation's
// predicate) in format f, deterministically.
func EncodeSBOM(predicate []byte, f Format) ([]byte, error) {
	doc, err := sbom.ParseJSON(bytes.NewReader(predicate))
	if err != nil {
		return nil, fmt.Errorf("reading the SBOM: %w", err)
	}
	if f == SPDXTagValue {
		return sbom.TagValue(doc)
	}
	return sbom.JSON(doc)
}
