package check

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/strvals"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// chartDir is the chart under test, relative to this package.
const chartDir = "../helm/fluxiondb"

// Release facts used for every render; tests derive names from them.
const (
	releaseName = "fluxiondb"
	releaseNS   = "db"
	// fullname is what fluxiondb.fullname yields for releaseName: the
	// release name already contains the chart name.
	fullname = "fluxiondb"
)

// kinds maps "apiVersion/kind" to a constructor of the typed object a
// manifest of that kind is decoded into. A kind the chart renders but that
// is missing here fails the test, so this list is the chart's inventory.
var kinds = map[string]func() any{
	"apps/v1/StatefulSet":          func() any { return new(appsv1.StatefulSet) },
	"v1/Service":                   func() any { return new(corev1.Service) },
	"v1/Secret":                    func() any { return new(corev1.Secret) },
	"v1/ServiceAccount":            func() any { return new(corev1.ServiceAccount) },
	"networking.k8s.io/v1/Ingress": func() any { return new(networkingv1.Ingress) },
}

// manifest is one rendered Kubernetes object, decoded into its API type.
type manifest struct {
	source string // template file it came from
	kind   string // "apiVersion/kind"
	obj    any
}

// release is one rendering of the chart.
type release struct {
	files     map[string]string
	manifests []manifest
	notes     string
}

// setValues parses Helm --set syntax, so tests read like the commands an
// operator types (`--set secret.secretKey=...`).
func setValues(t *testing.T, sets ...string) map[string]any {
	t.Helper()
	vals := map[string]any{}
	for _, s := range sets {
		if err := strvals.ParseInto(s, vals); err != nil {
			t.Fatalf("parse --set %q: %v", s, err)
		}
	}
	return vals
}

// yamlValues parses a values file, for values --set cannot express well.
func yamlValues(t *testing.T, doc string) map[string]any {
	t.Helper()
	vals, err := chartutil.ReadValues([]byte(doc))
	if err != nil {
		t.Fatalf("parse values: %v", err)
	}
	return vals.AsMap()
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart %s: %v", chartDir, err)
	}
	return ch
}

// renderValues merges user values over the chart's and validates them
// against values.schema.json, as `helm install` does.
func renderValues(ch *chart.Chart, vals map[string]any) (chartutil.Values, error) {
	opts := chartutil.ReleaseOptions{Name: releaseName, Namespace: releaseNS, Revision: 1, IsInstall: true}
	return chartutil.ToRenderValues(ch, vals, opts, chartutil.DefaultCapabilities)
}

// render renders the chart as `helm install` would and strictly decodes
// every manifest. It also renders in Helm's strict mode, where a reference
// to a value that does not exist (a misspelt .Values path) is an error
// instead of an empty string.
func render(t *testing.T, vals map[string]any) (*release, error) {
	t.Helper()
	ch := loadChart(t)
	rv, err := renderValues(ch, vals)
	if err != nil {
		return nil, err
	}
	files, err := engine.Render(ch, rv)
	if err != nil {
		return nil, err
	}
	if _, err := (engine.Engine{Strict: true}).Render(ch, rv); err != nil {
		t.Errorf("strict render (a template reads a value that does not exist): %v", err)
	}
	rel := &release{files: files}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		text := files[name]
		if path.Base(name) == "NOTES.txt" {
			rel.notes = text
			continue
		}
		for _, doc := range releaseutil.SplitManifests(text) {
			if isBlankYAML(doc) {
				continue
			}
			m, err := decodeManifest(name, doc)
			if err != nil {
				t.Errorf("%v\n--- manifest ---\n%s", err, doc)
				continue
			}
			rel.manifests = append(rel.manifests, m)
		}
	}
	return rel, nil
}

// mustRender is render for values that must be accepted.
func mustRender(t *testing.T, vals map[string]any) *release {
	t.Helper()
	rel, err := render(t, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	checkInvariants(t, rel)
	return rel
}

// isBlankYAML reports whether a document holds only comments and space.
func isBlankYAML(doc string) bool {
	for _, line := range strings.Split(doc, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			return false
		}
	}
	return true
}

// decodeManifest decodes one YAML document into its k8s.io/api type.
//
// Two decoders must both accept it. encoding/json with
// DisallowUnknownFields rejects fields the type does not have; but it
// matches names case-insensitively, so sigs.k8s.io/json's UnmarshalStrict —
// the decoder the API server uses — also runs, and rejects a wrongly cased
// or duplicated field. YAMLToJSONStrict rejects duplicate YAML keys.
func decodeManifest(source, doc string) (manifest, error) {
	js, err := yaml.YAMLToJSONStrict([]byte(doc))
	if err != nil {
		return manifest{}, fmt.Errorf("%s: yaml: %w", source, err)
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(js, &head); err != nil {
		return manifest{}, fmt.Errorf("%s: read apiVersion/kind: %w", source, err)
	}
	kind := head.APIVersion + "/" + head.Kind
	newObj, ok := kinds[kind]
	if !ok {
		return manifest{}, fmt.Errorf("%s: kind %q is not one the chart is known to render", source, kind)
	}
	obj := newObj()
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return manifest{}, fmt.Errorf("%s: decode %s: %w", source, kind, err)
	}
	obj = newObj()
	strictErrs, err := kjson.UnmarshalStrict(js, obj)
	if err != nil {
		return manifest{}, fmt.Errorf("%s: decode %s: %w", source, kind, err)
	}
	if len(strictErrs) > 0 {
		return manifest{}, fmt.Errorf("%s: decode %s strictly: %v", source, kind, strictErrs)
	}
	return manifest{source: source, kind: kind, obj: obj}, nil
}

// all returns the rendered objects of type T.
func all[T any](rel *release) []*T {
	var out []*T
	for _, m := range rel.manifests {
		if o, ok := m.obj.(*T); ok {
			out = append(out, o)
		}
	}
	return out
}

// one returns the only rendered object of type T, failing otherwise.
func one[T any](t *testing.T, rel *release) *T {
	t.Helper()
	objs := all[T](rel)
	if len(objs) != 1 {
		var zero T
		t.Fatalf("rendered %d objects of type %T, want 1", len(objs), zero)
	}
	return objs[0]
}

// none fails if an object of type T was rendered.
func none[T any](t *testing.T, rel *release) {
	t.Helper()
	if objs := all[T](rel); len(objs) != 0 {
		var zero T
		t.Fatalf("rendered %d objects of type %T, want none", len(objs), zero)
	}
}

func serviceNamed(t *testing.T, rel *release, name string) *corev1.Service {
	t.Helper()
	for _, s := range all[corev1.Service](rel) {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no Service named %q rendered", name)
	return nil
}

// container returns the StatefulSet's only container.
func container(t *testing.T, sts *appsv1.StatefulSet) corev1.Container {
	t.Helper()
	cs := sts.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("StatefulSet has %d containers, want 1", len(cs))
	}
	return cs[0]
}

func envVar(c corev1.Container, name string) (corev1.EnvVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return corev1.EnvVar{}, false
}

func podVolume(sts *appsv1.StatefulSet, name string) (corev1.Volume, bool) {
	for _, v := range sts.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return v, true
		}
	}
	return corev1.Volume{}, false
}

// TestStrictDecodeCatchesMistakes proves decodeManifest is strict: each
// manifest below has one mistake the API server would reject.
func TestStrictDecodeCatchesMistakes(t *testing.T) {
	const good = "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  ports:\n    - name: ws\n      port: 8080\n"
	if _, err := decodeManifest("good", good); err != nil {
		t.Fatalf("valid manifest refused: %v", err)
	}
	for name, doc := range map[string]string{
		"unknown field":   strings.Replace(good, "port: 8080", "prot: 8080", 1),
		"misplaced field": strings.Replace(good, "  name: x\n", "  name: x\n  ports: []\n", 1),
		"wrong case":      strings.Replace(good, "port: 8080", "Port: 8080", 1),
		"duplicate key":   strings.Replace(good, "port: 8080", "port: 8080\n      port: 8081", 1),
		"wrong type":      strings.Replace(good, "port: 8080", "port: http", 1),
		"unknown kind":    strings.Replace(good, "kind: Service", "kind: Deployment", 1),
	} {
		if _, err := decodeManifest(name, doc); err == nil {
			t.Errorf("%s: accepted:\n%s", name, doc)
		}
	}
}
