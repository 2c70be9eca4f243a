// Package apidoc builds a daemon's OpenAPI 3.1 document from its route
// table (internal/apiroute) and the Go types of its api package, with
// github.com/getkin/kin-openapi: schemas come from the types by reflection
// (openapi3gen), their limits from the same `validate` tags the daemons
// check, so the document cannot drift from the code without the tests of
// each daemon noticing (DESIGN.md §11). Types that write their own JSON
// (the bundle, directory entries) get their wire schema from schemas.go.
package apidoc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3gen"

	"orderseal/internal/apiroute"
	"orderseal/internal/problem/rfc9457"
	"orderseal/internal/signedhttp/httpsig"
)

// Version is the OpenAPI version of every document.
const Version = "3.1.0"

// ProblemType is the media type of error answers (RFC 9457).
const ProblemType = "application/problem+json"

// signedScheme names the security scheme of signed routes.
const signedScheme = "orderseal-signed-http"

// Build returns the document of one daemon's API.
func Build(a apiroute.API) (*openapi3.T, error) {
	doc := &openapi3.T{
		OpenAPI: Version,
		Info:    &openapi3.Info{Title: a.Title, Description: a.Description, Version: "1"},
		Paths:   openapi3.NewPaths(),
		Components: &openapi3.Components{
			Schemas: openapi3.Schemas{},
			SecuritySchemes: openapi3.SecuritySchemes{
				signedScheme: &openapi3.SecuritySchemeRef{Value: &openapi3.SecurityScheme{
					Type: "apiKey", In: "header", Name: httpsig.HeaderSignature,
					Description: "Signed HTTP (DESIGN.md §5): the caller's identity, target, date, nonce, SHA-256 of the body and key id in " +
						strings.Join([]string{httpsig.HeaderIdentity, httpsig.HeaderTarget, httpsig.HeaderDate, httpsig.HeaderNonce,
							httpsig.HeaderContentSHA256, httpsig.HeaderKeyID}, ", ") +
						", MACed under the pairwise key of caller and daemon; answers to an identified caller are signed the same way.",
				}},
			},
		},
	}
	// Schemas are inlined where they are used, but the problem's, which
	// every route shares.
	// A request's required members are those its type's validate tags
	// require; an answer's, every member it writes even when empty.
	reqGen := openapi3gen.NewGenerator(openapi3gen.SchemaCustomizer(customizer(false)))
	respGen := openapi3gen.NewGenerator(openapi3gen.SchemaCustomizer(customizer(true)))
	schemaOf := func(gen *openapi3gen.Generator, v any) (*openapi3.SchemaRef, error) {
		ref, err := gen.NewSchemaRefForValue(v, nil)
		if err != nil {
			return nil, fmt.Errorf("schema of %T: %w", v, err)
		}
		return ref, nil
	}
	schema := func(v any) (*openapi3.SchemaRef, error) { return schemaOf(reqGen, v) }
	answer := func(v any) (*openapi3.SchemaRef, error) { return schemaOf(respGen, v) }
	p, err := answer(&rfc9457.Problem{})
	if err != nil {
		return nil, err
	}
	doc.Components.Schemas["Problem"] = p
	problem := openapi3.NewSchemaRef("#/components/schemas/Problem", p.Value)
	for _, r := range a.All() {
		op := &openapi3.Operation{Summary: r.Summary, OperationID: operationID(r), Responses: openapi3.NewResponses()}
		op.Responses.Delete("default")
		if r.Callers != nil {
			op.Security = &openapi3.SecurityRequirements{{signedScheme: []string{}}}
			var roles []string
			for _, c := range r.Callers {
				roles = append(roles, string(c))
			}
			op.Description = "Signed; callers: " + strings.Join(roles, ", ") + "."
		} else {
			op.Security = &openapi3.SecurityRequirements{}
			op.Description = "Public: no signature."
		}
		for _, name := range pathParams(r.Path) {
			op.Parameters = append(op.Parameters, &openapi3.ParameterRef{Value: openapi3.NewPathParameter(name).
				WithSchema(openapi3.NewStringSchema().WithMinLength(1).WithMaxLength(128))})
		}
		if r.Request != nil {
			s, err := schema(r.Request)
			if err != nil {
				return nil, err
			}
			op.RequestBody = &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(true).
				WithContent(openapi3.NewContentWithSchemaRef(s, []string{"application/json"}))}
		}
		for _, resp := range r.Responses {
			d := http.StatusText(resp.Status)
			out := openapi3.NewResponse().WithDescription(d)
			if resp.Body != nil {
				s, err := answer(resp.Body)
				if err != nil {
					return nil, err
				}
				out.WithContent(openapi3.NewContentWithSchemaRef(s, []string{cmpOr(resp.ContentType, "application/json")}))
			}
			op.Responses.Set(strconv.Itoa(resp.Status), &openapi3.ResponseRef{Value: out})
		}
		for _, status := range r.Problems {
			// A status that is also a success answer (a probe's 503 with
			// its JSON, or a problem) gets both media types.
			if ex := op.Responses.Value(strconv.Itoa(status)); ex != nil && ex.Value != nil && ex.Value.Content != nil {
				ex.Value.Content[ProblemType] = openapi3.NewMediaType().WithSchemaRef(problem)
				continue
			}
			op.Responses.Set(strconv.Itoa(status), &openapi3.ResponseRef{Value: openapi3.NewResponse().
				WithDescription(http.StatusText(status) + " (RFC 9457 problem)").
				WithContent(openapi3.NewContentWithSchemaRef(problem, []string{ProblemType}))})
		}
		item := doc.Paths.Value(r.Path)
		if item == nil {
			item = &openapi3.PathItem{}
			doc.Paths.Set(r.Path, item)
		}
		if item.GetOperation(r.Method) != nil {
			return nil, fmt.Errorf("%s %s twice in the route table", r.Method, r.Path)
		}
		item.SetOperation(r.Method, op)
	}
	return doc, nil
}

// JSON is the document of a as committed and served: validated, indented,
// stable.
func JSON(a apiroute.API) ([]byte, error) {
	doc, err := Build(a)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("%s: the document does not validate: %w", a.Title, err)
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// Check reports how a daemon's committed document, its route table and
// the routes its router serves disagree: a document other than the one
// the table builds (run 'make openapi'), a route served but not in the
// table, or one in the table that nothing serves. served holds "METHOD
// /path" in OpenAPI form.
func Check(a apiroute.API, committed []byte, served []string) error {
	want, err := JSON(a)
	if err != nil {
		return err
	}
	var errs []error
	if !bytes.Equal(want, committed) {
		errs = append(errs, fmt.Errorf("%s: the committed openapi.json is not what its route table builds: run 'make openapi'", a.Title))
	}
	documented := map[string]bool{}
	for _, r := range a.All() {
		documented[r.Method+" "+r.Path] = true
	}
	serves := map[string]bool{}
	for _, s := range served {
		serves[s] = true
		if !documented[s] {
			errs = append(errs, fmt.Errorf("%s: %s is served but not documented", a.Title, s))
		}
	}
	for _, r := range a.All() {
		if k := r.Method + " " + r.Path; !serves[k] {
			errs = append(errs, fmt.Errorf("%s: %s is documented but not served", a.Title, k))
		}
	}
	return errors.Join(errs...)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// operationID is "get-v1-orders-id" for GET /v1/orders/{id}.
func operationID(r apiroute.Route) string {
	s := strings.ToLower(r.Method) + strings.NewReplacer("/", "-", "{", "", "}", "", ".", "-").Replace(r.Path)
	return strings.Trim(s, "-")
}

// pathParams are the {names} of an OpenAPI path, in order.
func pathParams(path string) []string {
	var names []string
	for _, seg := range strings.Split(path, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			names = append(names, seg[1:len(seg)-1])
		}
	}
	return names
}

// EchoPath is the OpenAPI form of an echo route path: :id → {id}.
func EchoPath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") {
			segs[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(segs, "/")
}

// customizer gives a type that writes its own JSON its wire schema, a
// field the limits of its `validate` tag, and a struct its required
// members: in an answer also every member written without omitempty.
func customizer(answer bool) openapi3gen.SchemaCustomizerFn {
	return func(name string, t reflect.Type, tag reflect.StructTag, s *openapi3.Schema) error {
		return customize(answer, t, tag, s)
	}
}

func customize(answer bool, t reflect.Type, tag reflect.StructTag, s *openapi3.Schema) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if w, ok := wireSchema(t); ok {
		*s = *w()
		return nil
	}
	if s.Nullable { // OpenAPI 3.1 (JSON Schema): null is one of the types
		s.Nullable = false
		if s.Type != nil {
			s.Type = &openapi3.Types{(*s.Type)[0], "null"}
		}
	}
	if t.Kind() == reflect.Struct && t != reflect.TypeFor[time.Time]() {
		// The daemons decode strictly (internal/strictjson): no unknown
		// members; a problem may carry extension members (RFC 9457 §3.2).
		s.AdditionalProperties = openapi3.AdditionalProperties{Has: ptr(t == reflect.TypeFor[rfc9457.Problem]())}
		s.Required = requiredFields(t, answer)
	}
	applyValidate(t, tag.Get("validate"), s)
	return nil
}

func ptr[T any](v T) *T { return &v }

// requiredFields are the JSON names of t's fields tagged
// validate:"required", and in an answer those without omitempty.
func requiredFields(t reflect.Type, answer bool) []string {
	var req []string
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		written := answer && !slices.Contains(strings.Split(opts, ","), "omitempty")
		if written || slices.Contains(strings.Split(f.Tag.Get("validate"), ","), "required") {
			req = append(req, name)
		}
	}
	return req
}

// applyValidate carries the go-playground/validator rules the daemons
// enforce into the schema: lengths, bounds, enums.
func applyValidate(t reflect.Type, rules string, s *openapi3.Schema) {
	if rules == "" || rules == "-" {
		return
	}
	for _, rule := range strings.Split(rules, ",") {
		if rule == "dive" {
			return // what follows applies to the elements
		}
		key, val, _ := strings.Cut(rule, "=")
		n, numErr := strconv.ParseInt(val, 10, 64)
		switch kind := t.Kind(); {
		case key == "oneof" && kind == reflect.String:
			for _, v := range strings.Fields(val) {
				s.Enum = append(s.Enum, v)
			}
		case numErr != nil:
		case kind == reflect.String:
			switch key {
			case "max":
				s.MaxLength = ptr(uint64(n))
			case "min":
				s.MinLength = uint64(n)
			case "len":
				s.MinLength, s.MaxLength = uint64(n), ptr(uint64(n))
			}
		case kind == reflect.Slice || kind == reflect.Map:
			switch key {
			case "max":
				s.MaxItems = ptr(uint64(n))
			case "min":
				s.MinItems = uint64(n)
			}
		case kind >= reflect.Int && kind <= reflect.Float64:
			f := float64(n)
			switch key {
			case "max", "lte":
				s.Max = &f
			case "min", "gte":
				s.Min = &f
			case "gt":
				s.WithExclusiveMinValue(f)
			}
		}
	}
}
