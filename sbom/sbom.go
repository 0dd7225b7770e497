package sbom

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
	"github.com/spdx/tools-golang/spdxlib"
	"github.com/spdx/tools-golang/tagvalue"
)

// Options configure generation.
type Options struct {
	// Created is the document's creation time: SOURCE_DATE_EPOCH.
	Created time.Time
	// Tool names the creator. Default "accord".
	Tool string
	// BinarySHA256 is, for [FromGoBinary], the binary's SHA-256 in
	// lowercase hex when the caller has computed it already (a run has,
	// for the provenance subject): it becomes the document's namespace and
	// the binary's checksum, and the binary is not hashed again. It must
	// be the digest of those very bytes. Default: FromGoBinary hashes the
	// binary, once. [FromImage] ignores it.
	BinarySHA256 string
}

// NamespacePrefix starts every document namespace; the subject digest ends it.
const NamespacePrefix = "https://accord.dev/spdx/"

type builder struct {
	doc *spdx.Document
	ids map[string]bool
	rel map[string]bool
}

func newBuilder(name, subjectSHA256 string, o Options) *builder {
	tool := o.Tool
	if tool == "" {
		tool = "accord"
	}
	return &builder{
		doc: &spdx.Document{
			SPDXVersion:       spdx.Version,
			DataLicense:       spdx.DataLicense,
			SPDXIdentifier:    "DOCUMENT",
			DocumentName:      name,
			DocumentNamespace: NamespacePrefix + "sha256-" + subjectSHA256,
			CreationInfo: &spdx.CreationInfo{
				Creators: []common.Creator{{CreatorType: "Tool", Creator: tool}},
				Created:  o.Created.UTC().Format(time.RFC3339),
			},
		},
		ids: map[string]bool{},
		rel: map[string]bool{},
	}
}

var idUnsafe = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// addPackage adds a package once (by name, version and checksum) and
// returns its SPDX id.
func (b *builder) addPackage(name, version, sha string, purl string) common.ElementID {
	key := name + "@" + version + "#" + sha
	h := sha256.Sum256([]byte(key))
	id := common.ElementID("Package-" + strings.Trim(idUnsafe.ReplaceAllString(name, "-"), "-") + "-" + hex.EncodeToString(h[:4]))
	if b.ids[string(id)] {
		return id
	}
	b.ids[string(id)] = true
	p := &spdx.Package{
		PackageName:             name,
		PackageSPDXIdentifier:   id,
		PackageVersion:          version,
		PackageDownloadLocation: "NOASSERTION",
		FilesAnalyzed:           false,
		PackageLicenseConcluded: "NOASSERTION",
		PackageLicenseDeclared:  "NOASSERTION",
		PackageCopyrightText:    "NOASSERTION",
	}
	if sha != "" {
		p.PackageChecksums = []common.Checksum{{Algorithm: common.SHA256, Value: sha}}
	}
	if purl != "" {
		p.PackageExternalReferences = []*spdx.PackageExternalReference{{Category: common.CategoryPackageManager, RefType: common.TypePackageManagerPURL, Locator: purl}}
	}
	b.doc.Packages = append(b.doc.Packages, p)
	return id
}

func (b *builder) relate(a common.ElementID, typ string, c common.ElementID) {
	key := string(a) + " " + typ + " " + string(c)
	if b.rel[key] {
		return
	}
	b.rel[key] = true
	b.doc.Relationships = append(b.doc.Relationships, &spdx.Relationship{
		RefA: common.MakeDocElementID("", string(a)), RefB: common.MakeDocElementID("", string(c)), Relationship: typ,
	})
}

func (b *builder) finish() (*spdx.Document, error) {
	sort.Slice(b.doc.Packages, func(i, j int) bool {
		return b.doc.Packages[i].PackageSPDXIdentifier < b.doc.Packages[j].PackageSPDXIdentifier
	})
	sort.Slice(b.doc.Relationships, func(i, j int) bool {
		x, y := b.doc.Relationships[i], b.doc.Relationships[j]
		if x.RefA.ElementRefID != y.RefA.ElementRefID {
			return x.RefA.ElementRefID < y.RefA.ElementRefID
		}
		if x.Relationship != y.Relationship {
			return x.Relationship < y.Relationship
		}
		return x.RefB.ElementRefID < y.RefB.ElementRefID
	})
	if err := spdxlib.ValidateDocument(b.doc); err != nil {
		return nil, fmt.Errorf("SPDX document %s is not valid: %w", b.doc.DocumentName, err)
	}
	return b.doc, nil
}

// ErrNotGoBinary is returned for a file without Go build info.
var ErrNotGoBinary = errors.New("not a Go binary with build info")

// FromGoBinary describes a Go binary: DOCUMENT DESCRIBES the binary, the
// binary CONTAINS its main module and DEPENDS_ON the Go standard library,
// the main module DEPENDS_ON every dependency.
func FromGoBinary(name string, bin []byte, o Options) (*spdx.Document, error) {
	sum := o.BinarySHA256
	if sum == "" {
		sum = hexSHA256(bin)
	} else if !isHexSHA256(sum) {
		return nil, fmt.Errorf("SBOM of %s: BinarySHA256 %q is not a lowercase hex SHA-256", name, sum)
	}
	b := newBuilder(name, sum, o)
	root, err := b.addGoBinary(name, bin, sum)
	if err != nil {
		return nil, err
	}
	b.relate("DOCUMENT", common.TypeRelationshipDescribe, root)
	return b.finish()
}

// addGoBinary adds the binary bin, whose SHA-256 is sum (lowercase hex;
// computed here when empty and bin is a Go binary), with its main module,
// standard library and dependencies.
func (b *builder) addGoBinary(name string, bin []byte, sum string) (common.ElementID, error) {
	bi, err := buildinfo.Read(bytes.NewReader(bin))
	if err != nil {
		return "", fmt.Errorf("%s: %w: %v", name, ErrNotGoBinary, err)
	}
	if sum == "" {
		sum = hexSHA256(bin)
	}
	root := b.addPackage(name, "", sum, "")
	std := b.addPackage("stdlib", bi.GoVersion, "", "pkg:golang/stdlib@"+bi.GoVersion)
	b.relate(root, common.TypeRelationshipDependsOn, std)
	main := b.addPackage(bi.Main.Path, bi.Main.Version, H1ToHex(bi.Main.Sum), purl(bi.Main.Path, bi.Main.Version))
	b.relate(root, common.TypeRelationshipContains, main)
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		dep := b.addPackage(d.Path, d.Version, H1ToHex(d.Sum), purl(d.Path, d.Version))
		b.relate(main, common.TypeRelationshipDependsOn, dep)
	}
	return root, nil
}

// FromImage describes an OCI image: DOCUMENT DESCRIBES the image, which
// CONTAINS every Go binary found in its (flattened) layers.
func FromImage(name string, img ggcrv1.Image, o Options) (*spdx.Document, error) {
	h, err := img.Digest()
	if err != nil {
		return nil, err
	}
	b := newBuilder(name, h.Hex, o)
	root := b.addPackage(name, h.String(), h.Hex, "pkg:oci/"+path.Base(name)+"@"+strings.ReplaceAll(h.String(), ":", "%3A"))
	b.relate("DOCUMENT", common.TypeRelationshipDescribe, root)
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading layers of %s: %w", name, err)
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Size < 4 {
			continue
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		if !bytes.HasPrefix(content, []byte("\x7fELF")) {
			continue
		}
		bin, err := b.addGoBinary("/"+strings.TrimPrefix(path.Clean("/"+hdr.Name), "/"), content, "")
		if errors.Is(err, ErrNotGoBinary) {
			continue
		}
		if err != nil {
			return nil, err
		}
		b.relate(root, common.TypeRelationshipContains, bin)
	}
	return b.finish()
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func isHexSHA256(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func purl(p, v string) string {
	if v == "" || v == "(devel)" {
		return "pkg:golang/" + p
	}
	return "pkg:golang/" + p + "@" + v
}

// H1ToHex turns a go.sum "h1:<base64>" hash into lowercase hex SHA-256.
func H1ToHex(h1 string) string {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h1, "h1:"))
	if err != nil || len(b) != sha256.Size || !strings.HasPrefix(h1, "h1:") {
		return ""
	}
	return hex.EncodeToString(b)
}

// JSON encodes doc as SPDX JSON (two-space indent, trailing newline).
func JSON(doc *spdx.Document) ([]byte, error) {
	var buf bytes.Buffer
	if err := spdxjson.Write(doc, &buf, spdxjson.Indent("  "), spdxjson.EscapeHTML(false)); err != nil {
		return nil, fmt.Errorf("writing SPDX JSON: %w", err)
	}
	return buf.Bytes(), nil
}

// TagValue encodes doc as SPDX tag-value.
func TagValue(doc *spdx.Document) ([]byte, error) {
	var buf bytes.Buffer
	if err := tagvalue.Write(doc, &buf); err != nil {
		return nil, fmt.Errorf("writing SPDX tag-value: %w", err)
	}
	return buf.Bytes(), nil
}

// ParseJSON reads an SPDX JSON document.
func ParseJSON(r io.Reader) (*spdx.Document, error) {
	doc, err := spdxjson.Read(r)
	if err != nil {
		return nil, fmt.Errorf("reading SPDX JSON: %w", err)
	}
	return doc, nil
}
