package attest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Predicate types.
const (
	SLSAProvenanceV1 = "https://slsa.dev/provenance/v1"
	SPDXDocument     = "https://spdx.dev/Document"
	// VerificationSummaryV1 is SLSA's verification summary (VSA) v1.
	VerificationSummaryV1 = "https://slsa.dev/verification_summary/v1"
)

// BuildType is the versioned URI of accord's build type; docs/buildtype.md
// documents every field.
const BuildType = "https://accord.dev/buildtypes/tekton-pipeline/v1"

// Subject is an artifact a statement is about.
type Subject struct {
	Name   string
	SHA256 string // lowercase hex
}

// Dependency is a resolved dependency: a URI and its digest set.
type Dependency struct {
	Name   string
	URI    string
	Digest map[string]string
}

// Build describes one build for its provenance. Everything but Run is the
// same on every builder that builds the same request.
type Build struct {
	// Source: repository URI, ref and commit (empty for a directory), and
	// the dirHash1 of the tree the pipeline started from.
	SourceURI, SourceRef, SourceCommit, SourceTree string
	// SourceDateEpoch is the SOURCE_DATE_EPOCH every step saw.
	SourceDateEpoch int64
	// Pipeline name and closure digest.
	Pipeline, PipelineDigest string
	// Params are the pipeline params as given (after accord filled
	// source-url/source-commit).
	Params map[string]any
	// Dependencies: catalog files, step images, fetched modules.
	Dependencies []Dependency
	// Internal holds builder-specific parameters (runtime, variation).
	Internal map[string]any
	// Run says who ran it and when.
	Run Run
}

// Run is runDetails: the only builder-specific, time-dependent part.
type Run struct {
	BuilderID    string
	InvocationID string
	Started      time.Time
	Finished     time.Time
	// LinksSHA256 is the SHA-256 (hex) of the builder's links bundle
	// ([LinksBundle]) exactly as stored, recorded as the "links" byproduct:
	// verification uses only the links a trusted provenance names. Empty
	// for a build that recorded no links.
	LinksSHA256 string
}

// LinksByproduct is the name of the runDetails.byproducts entry that names
// the links bundle.
const LinksByproduct = "links"

// Provenance returns the in-toto Statement v1 with an SLSA v1 provenance
// predicate about subjects, as compact JSON with sorted keys.
func Provenance(b *Build, subjects []Subject) ([]byte, error) {
	ext := map[string]any{
		"pipeline": map[string]any{"name": b.Pipeline, "digest": b.PipelineDigest},
		"params":   b.Params,
	}
	src := map[string]any{}
	if b.SourceURI != "" {
		src["uri"] = b.SourceURI
	}
	if b.SourceRef != "" {
		src["ref"] = b.SourceRef
	}
	if b.SourceCommit != "" {
		src["commit"] = b.SourceCommit
	}
	if b.SourceTree != "" {
		src["dirHash1"] = b.SourceTree
	}
	src["sourceDateEpoch"] = b.SourceDateEpoch
	ext["source"] = src
	extS, err := toStruct(ext)
	if err != nil {
		return nil, fmt.Errorf("externalParameters: %w", err)
	}
	intS, err := toStruct(b.Internal)
	if err != nil {
		return nil, fmt.Errorf("internalParameters: %w", err)
	}
	var deps []*intoto.ResourceDescriptor
	if b.SourceCommit != "" {
		deps = append(deps, &intoto.ResourceDescriptor{Name: "source", Uri: gitURI(b.SourceURI, b.SourceRef), Digest: map[string]string{"gitCommit": b.SourceCommit}})
	} else if b.SourceTree != "" {
		deps = append(deps, &intoto.ResourceDescriptor{Name: "source", Digest: map[string]string{"dirHash1": b.SourceTree}})
	}
	sorted := append([]Dependency(nil), b.Dependencies...)
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].Name != sorted[j].Name {
			return sorted[i].Name < sorted[j].Name
		}
		return sorted[i].URI < sorted[j].URI
	})
	for _, d := range sorted {
		deps = append(deps, &intoto.ResourceDescriptor{Name: d.Name, Uri: d.URI, Digest: d.Digest})
	}
	pred := &slsa.Provenance{
		BuildDefinition: &slsa.BuildDefinition{
			BuildType:            BuildType,
			ExternalParameters:   extS,
			InternalParameters:   intS,
			ResolvedDependencies: deps,
		},
		RunDetails: &slsa.RunDetails{
			Builder: &slsa.Builder{Id: b.Run.BuilderID},
			Metadata: &slsa.BuildMetadata{
				InvocationId: b.Run.InvocationID,
				StartedOn:    timestamppb.New(b.Run.Started.UTC()),
				FinishedOn:   timestamppb.New(b.Run.Finished.UTC()),
			},
		},
	}
	if b.Run.LinksSHA256 != "" {
		pred.RunDetails.Byproducts = []*intoto.ResourceDescriptor{{
			Name: LinksByproduct, Digest: map[string]string{"sha256": b.Run.LinksSHA256}, MediaType: LinksBundleMediaType,
		}}
	}
	if err := pred.Validate(); err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	return Statement(SLSAProvenanceV1, subjects, pred)
}

// Statement wraps a predicate (a proto message or any JSON-marshalable
// value) in an in-toto Statement v1 and returns compact JSON.
func Statement(predicateType string, subjects []Subject, predicate any) ([]byte, error) {
	var ps *structpb.Struct
	var raw []byte
	var err error
	switch p := predicate.(type) {
	case proto.Message:
		raw, err = protojson.Marshal(p)
	default:
		raw, err = json.Marshal(p)
	}
	if err != nil {
		return nil, err
	}
	ps = &structpb.Struct{}
	if err := protojson.Unmarshal(raw, ps); err != nil {
		return nil, fmt.Errorf("predicate: %w", err)
	}
	st := &intoto.Statement{Type: intoto.StatementTypeUri, PredicateType: predicateType, Predicate: ps}
	subs := append([]Subject(nil), subjects...)
	sort.Slice(subs, func(i, j int) bool { return subs[i].Name < subs[j].Name })
	for _, s := range subs {
		st.Subject = append(st.Subject, &intoto.ResourceDescriptor{Name: s.Name, Digest: map[string]string{"sha256": s.SHA256}})
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	out, err := protojson.Marshal(st)
	if err != nil {
		return nil, err
	}
	// protojson adds random whitespace on purpose; normalise it. encoding/json
	// then sorts map keys, so the bytes are stable.
	var v any
	if err := json.Unmarshal(out, &v); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func toStruct(m map[string]any) (*structpb.Struct, error) {
	if m == nil {
		return &structpb.Struct{}, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	s := &structpb.Struct{}
	return s, protojson.Unmarshal(b, s)
}

// gitURI is the SLSA-style git URI: git+<url>@<ref>.
func gitURI(url, ref string) string {
	u := url
	if !strings.HasPrefix(u, "git+") {
		u = "git+" + u
	}
	if ref != "" {
		u += "@" + ref
	}
	return u
}

// ParsedStatement is the part of a statement verification reads.
type ParsedStatement struct {
	Type          string `json:"_type"`
	PredicateType string `json:"predicateType"`
	Subject       []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	Predicate json.RawMessage `json:"predicate"`
}

// ParseStatement decodes an in-toto statement.
func ParseStatement(b []byte) (*ParsedStatement, error) {
	var s ParsedStatement
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("not an in-toto statement: %w", err)
	}
	if s.Type != intoto.StatementTypeUri || s.PredicateType == "" || len(s.Subject) == 0 {
		return nil, fmt.Errorf("not an in-toto v1 statement (_type %q, predicateType %q, %d subjects)", s.Type, s.PredicateType, len(s.Subject))
	}
	return &s, nil
}

// HasSubject reports whether the statement is about the sha256 digest.
func (s *ParsedStatement) HasSubject(sha256hex string) bool {
	for _, sub := range s.Subject {
		if sub.Digest["sha256"] == sha256hex {
			return true
		}
	}
	return false
}

// Summary is what accord's provenance says about a build, for rebuilding
// and for policy checks.
type Summary struct {
	BuilderID      string
	SourceURI      string
	SourceRef      string
	SourceCommit   string
	SourceTree     string
	Pipeline       string
	PipelineDigest string
	Params         map[string]any
	BuildType      string
	// SourceDateEpoch is the SOURCE_DATE_EPOCH the build used.
	SourceDateEpoch int64
	// Internal are the builder's internalParameters (runtime, variation).
	Internal map[string]any
	// Dependencies map each resolved dependency to its digest
	// ("sha256:..."); see [DependencyDigests].
	Dependencies map[string]string
	// Started and Finished are the run's times (runDetails.metadata).
	Started, Finished time.Time
	// LinksSHA256 is the digest of the links bundle the provenance names
	// (runDetails.byproducts "links"), or "".
	LinksSHA256 string
}

// ParseProvenance reads a provenance predicate of accord's build type.
func ParseProvenance(pred json.RawMessage) (*Summary, error) {
	var p struct {
		BuildDefinition struct {
			BuildType          string `json:"buildType"`
			ExternalParameters struct {
				Source struct {
					URI      string `json:"uri"`
					Ref      string `json:"ref"`
					Commit   string `json:"commit"`
					DirHash1 string `json:"dirHash1"`
					Epoch    int64  `json:"sourceDateEpoch"`
				} `json:"source"`
				Pipeline struct {
					Name   string `json:"name"`
					Digest string `json:"digest"`
				} `json:"pipeline"`
				Params map[string]any `json:"params"`
			} `json:"externalParameters"`
			InternalParameters   map[string]any `json:"internalParameters"`
			ResolvedDependencies []struct {
				Name   string            `json:"name"`
				URI    string            `json:"uri"`
				Digest map[string]string `json:"digest"`
			} `json:"resolvedDependencies"`
		} `json:"buildDefinition"`
		RunDetails struct {
			Builder struct {
				ID string `json:"id"`
			} `json:"builder"`
			Metadata struct {
				StartedOn  time.Time `json:"startedOn"`
				FinishedOn time.Time `json:"finishedOn"`
			} `json:"metadata"`
			Byproducts []struct {
				Name   string            `json:"name"`
				Digest map[string]string `json:"digest"`
			} `json:"byproducts"`
		} `json:"runDetails"`
	}
	if err := json.Unmarshal(pred, &p); err != nil {
		return nil, fmt.Errorf("provenance predicate: %w", err)
	}
	ep := p.BuildDefinition.ExternalParameters
	var list []Dependency
	for _, d := range p.BuildDefinition.ResolvedDependencies {
		list = append(list, Dependency{Name: d.Name, URI: d.URI, Digest: d.Digest})
	}
	deps := DependencyDigests(list)
	links := ""
	for _, bp := range p.RunDetails.Byproducts {
		if bp.Name == LinksByproduct {
			if links != "" {
				return nil, fmt.Errorf("provenance names more than one links byproduct")
			}
			links = bp.Digest["sha256"]
		}
	}
	return &Summary{
		Internal: p.BuildDefinition.InternalParameters, Dependencies: deps, LinksSHA256: links,
		Started: p.RunDetails.Metadata.StartedOn, Finished: p.RunDetails.Metadata.FinishedOn,
		BuilderID: p.RunDetails.Builder.ID, SourceURI: ep.Source.URI, SourceRef: ep.Source.Ref,
		SourceCommit: ep.Source.Commit, SourceTree: ep.Source.DirHash1,
		Pipeline: ep.Pipeline.Name, PipelineDigest: ep.Pipeline.Digest, Params: ep.Params,
		BuildType: p.BuildDefinition.BuildType, SourceDateEpoch: ep.Source.Epoch,
	}, nil
}

// DependencyDigests maps each dependency with a sha256 digest to it
// ("sha256:..."), keyed by its URI, else its name: the form in which
// builders compare what their builds resolved.
func DependencyDigests(deps []Dependency) map[string]string {
	m := map[string]string{}
	for _, d := range deps {
		k := d.URI
		if k == "" {
			k = d.Name
		}
		if v, ok := d.Digest["sha256"]; ok {
			m[k] = "sha256:" + v
		}
	}
	return m
}
