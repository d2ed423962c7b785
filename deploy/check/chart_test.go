package check

import (
	"fmt"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

const testKey = "s3cr3t-master-key"

// checkInvariants asserts what must hold for every set of values: the
// objects refer to each other consistently (selectors, port names, volumes,
// secret references) and the pod is locked down.
func checkInvariants(t *testing.T, rel *release) {
	t.Helper()
	for _, m := range rel.manifests {
		meta := objectMeta(m.obj)
		if errs := validation.IsDNS1123Subdomain(meta.Name); len(errs) > 0 {
			t.Errorf("%s %q: invalid name: %v", m.kind, meta.Name, errs)
		}
		for _, l := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "helm.sh/chart"} {
			if meta.Labels[l] == "" {
				t.Errorf("%s %q: label %s missing", m.kind, meta.Name, l)
			}
		}
		for k, v := range meta.Labels {
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				t.Errorf("%s %q: label %s=%q: %v", m.kind, meta.Name, k, v, errs)
			}
		}
	}

	sts := one[appsv1.StatefulSet](t, rel)
	spec := sts.Spec
	if spec.Replicas == nil || *spec.Replicas != 1 {
		t.Errorf("StatefulSet replicas = %v, want exactly 1 (single-node server)", spec.Replicas)
	}
	sel, err := metav1.LabelSelectorAsSelector(spec.Selector)
	if err != nil || sel.Empty() {
		t.Fatalf("StatefulSet selector %v: %v", spec.Selector, err)
	}
	podLabels := labels.Set(spec.Template.Labels)
	if !sel.Matches(podLabels) {
		t.Errorf("StatefulSet selector %v does not match its pod labels %v", sel, podLabels)
	}
	headless := serviceNamed(t, rel, spec.ServiceName)
	if headless.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("StatefulSet serviceName %q is not a headless Service", spec.ServiceName)
	}

	c := container(t, sts)
	if c.Image == "" || strings.HasSuffix(c.Image, ":") {
		t.Errorf("container image %q is incomplete", c.Image)
	}
	portNames := map[string]int32{}
	for _, p := range c.Ports {
		portNames[p.Name] = p.ContainerPort
	}
	if portNames["ws"] != 8080 {
		t.Errorf("container ports %v: want ws=8080", c.Ports)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe missing or not httpGet", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.StrVal != "ws" {
			t.Errorf("%s probe = GET %s on port %v, want GET %s on port ws", p.name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path)
		}
	}

	// Every mount names a volume the pod has, and the data directory is
	// always mounted (emptyDir, existing claim or claim template).
	claims := map[string]bool{}
	for _, pvc := range spec.VolumeClaimTemplates {
		claims[pvc.Name] = true
	}
	mounted := map[string]string{}
	for _, vm := range c.VolumeMounts {
		mounted[vm.Name] = vm.MountPath
		if _, ok := podVolume(sts, vm.Name); !ok && !claims[vm.Name] {
			t.Errorf("volumeMount %q has no volume or claim template", vm.Name)
		}
		if _, ok := podVolume(sts, vm.Name); ok && claims[vm.Name] {
			t.Errorf("volume %q is both a pod volume and a claim template", vm.Name)
		}
	}
	for _, v := range spec.Template.Spec.Volumes {
		if _, ok := mounted[v.Name]; !ok {
			t.Errorf("volume %q is never mounted", v.Name)
		}
	}
	if mounted["data"] != "/app/data" {
		t.Errorf("data volume mounted at %q, want /app/data", mounted["data"])
	}
	if !containsString(c.Args, "--data=/app/data") {
		t.Errorf("args %q lack --data=/app/data", c.Args)
	}

	// The master key reaches the pod from a Secret; if the chart renders
	// that Secret, the reference must match it.
	e, ok := envVar(c, "FLUXIONDB_SECRET_KEY")
	if !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.Value != "" {
		t.Fatalf("FLUXIONDB_SECRET_KEY must come from a secretKeyRef, got %+v", e)
	}
	ref := e.ValueFrom.SecretKeyRef
	for _, s := range all[corev1.Secret](rel) {
		if s.Name != ref.Name {
			t.Errorf("rendered Secret %q, but the pod reads Secret %q", s.Name, ref.Name)
		}
		if len(s.Data[ref.Key]) == 0 {
			t.Errorf("Secret %q has no key %q", s.Name, ref.Key)
		}
	}
	if e, ok := envVar(c, "FLUXIONDB_PORT"); !ok || e.Value != "8080" {
		t.Errorf("FLUXIONDB_PORT = %+v, want 8080 to match the ws container port", e)
	}

	// Security: non-root, read-only root, no capabilities, default seccomp.
	psc := spec.Template.Spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.FSGroup == nil ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext too weak: %+v", psc)
	}
	csc := c.SecurityContext
	if csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem ||
		csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation ||
		csc.Capabilities == nil || !containsCap(csc.Capabilities.Drop, "ALL") {
		t.Errorf("container securityContext too weak: %+v", csc)
	}
	if mounted["tmp"] != "/tmp" {
		t.Errorf("read-only root filesystem but /tmp is not a writable volume")
	}

	// Services reach the pod through the named port.
	for _, s := range all[corev1.Service](rel) {
		if !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) || len(s.Spec.Selector) == 0 {
			t.Errorf("Service %q selector %v does not select the pod", s.Name, s.Spec.Selector)
		}
		for _, p := range s.Spec.Ports {
			if _, ok := portNames[p.TargetPort.StrVal]; !ok {
				t.Errorf("Service %q targetPort %q is not a container port name", s.Name, p.TargetPort.String())
			}
		}
	}
	for _, ing := range all[networkingv1.Ingress](rel) {
		for _, rule := range ing.Spec.Rules {
			for _, p := range rule.HTTP.Paths {
				svc := serviceNamed(t, rel, p.Backend.Service.Name)
				if !hasServicePort(svc, p.Backend.Service.Port.Name) {
					t.Errorf("Ingress backend port %q not on Service %q", p.Backend.Service.Port.Name, svc.Name)
				}
			}
		}
	}

	// The pod runs as the ServiceAccount the chart creates, when it does.
	for _, sa := range all[corev1.ServiceAccount](rel) {
		if spec.Template.Spec.ServiceAccountName != sa.Name {
			t.Errorf("pod serviceAccountName %q, chart created %q", spec.Template.Spec.ServiceAccountName, sa.Name)
		}
	}
	if a := spec.Template.Spec.AutomountServiceAccountToken; a == nil || *a {
		t.Errorf("pod automountServiceAccountToken should be false: the server never calls the API")
	}
	if !strings.Contains(rel.notes, "api-key=") {
		t.Errorf("NOTES.txt does not say how to connect:\n%s", rel.notes)
	}
}

func objectMeta(obj any) metav1.ObjectMeta {
	switch o := obj.(type) {
	case *appsv1.StatefulSet:
		return o.ObjectMeta
	case *corev1.Service:
		return o.ObjectMeta
	case *corev1.Secret:
		return o.ObjectMeta
	case *corev1.ServiceAccount:
		return o.ObjectMeta
	case *networkingv1.Ingress:
		return o.ObjectMeta
	}
	panic(fmt.Sprintf("objectMeta: add a case for %T", obj))
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func containsCap(list []corev1.Capability, s corev1.Capability) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func hasServicePort(s *corev1.Service, name string) bool {
	for _, p := range s.Spec.Ports {
		if p.Name == name {
			return true
		}
	}
	return false
}

// TestChartDefaults renders the chart with only the master key set.
func TestChartDefaults(t *testing.T) {
	rel := mustRender(t, setValues(t, "secret.secretKey="+testKey))

	sts := one[appsv1.StatefulSet](t, rel)
	c := container(t, sts)
	if c.Image != "volandoo/fluxiondb:latest" {
		t.Errorf("image = %q, want volandoo/fluxiondb:latest (appVersion)", c.Image)
	}
	if len(sts.Spec.VolumeClaimTemplates) != 0 {
		t.Errorf("persistence off but %d claim templates rendered", len(sts.Spec.VolumeClaimTemplates))
	}
	if v, _ := podVolume(sts, "data"); v.EmptyDir == nil {
		t.Errorf("persistence off: data volume = %+v, want emptyDir", v.VolumeSource)
	}

	secret := one[corev1.Secret](t, rel)
	if secret.Name != fullname || string(secret.Data["secret-key"]) != testKey {
		t.Errorf("Secret %q data[secret-key] = %q, want %q in %q", secret.Name, secret.Data["secret-key"], testKey, fullname)
	}
	ref := mustEnv(t, c, "FLUXIONDB_SECRET_KEY").ValueFrom.SecretKeyRef
	if ref.Name != fullname || ref.Key != "secret-key" {
		t.Errorf("secretKeyRef = %s/%s, want %s/secret-key", ref.Name, ref.Key, fullname)
	}
	if sts.Spec.Template.Annotations["checksum/secret"] == "" {
		t.Errorf("pod lacks checksum/secret: a changed key would not restart it")
	}
	if strings.Contains(rel.notes, testKey) {
		t.Errorf("NOTES.txt prints the master key")
	}

	svc := serviceNamed(t, rel, fullname)
	if svc.Spec.Type != corev1.ServiceTypeClusterIP || len(svc.Spec.Ports) != 2 ||
		svc.Spec.Ports[0].Name != "ws" || svc.Spec.Ports[0].Port != 8080 ||
		svc.Spec.Ports[1].Name != "metrics" || svc.Spec.Ports[1].Port != 9090 {
		t.Errorf("Service %q spec = %+v, want ClusterIP ports ws 8080 and metrics 9090", svc.Name, svc.Spec)
	}
	// /metrics on a port of its own, which no ingress routes (it asks for no key).
	if e := mustEnv(t, c, "FLUXIONDB_METRICS_ADDR"); e.Value != "0.0.0.0:9090" {
		t.Errorf("FLUXIONDB_METRICS_ADDR = %q, want 0.0.0.0:9090", e.Value)
	}
	if len(c.Ports) != 2 || c.Ports[1].Name != "metrics" || c.Ports[1].ContainerPort != 9090 {
		t.Errorf("container ports %+v, want ws and metrics 9090", c.Ports)
	}
	none[networkingv1.Ingress](t, rel)
	sa := one[corev1.ServiceAccount](t, rel)
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("ServiceAccount automountServiceAccountToken should be false")
	}
	req := c.Resources.Requests
	if req.Memory().IsZero() || req.Cpu().IsZero() {
		t.Errorf("default resources lack requests: %+v", c.Resources)
	}
	if !strings.Contains(rel.notes, "port-forward svc/"+fullname) || !strings.Contains(rel.notes, "emptyDir") {
		t.Errorf("NOTES.txt lacks port-forward hint or data-loss warning:\n%s", rel.notes)
	}
}

// TestChartSeedInstall renders exactly the install command of the README:
// helm install fluxiondb ./deploy/helm/fluxiondb --set secret.secretKey=…
// --set persistence.enabled=true.
func TestChartSeedInstall(t *testing.T) {
	rel := mustRender(t, setValues(t, "secret.secretKey=YOUR_SECRET_KEY", "persistence.enabled=true"))
	sts := one[appsv1.StatefulSet](t, rel)
	if len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("persistence on: %d claim templates, want 1", len(sts.Spec.VolumeClaimTemplates))
	}
	pvc := sts.Spec.VolumeClaimTemplates[0]
	if pvc.Name != "data" {
		t.Errorf("claim template %q, want data", pvc.Name)
	}
	if got := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; got.Cmp(resource.MustParse("8Gi")) != 0 {
		t.Errorf("claim size %s, want 8Gi", got.String())
	}
	if pvc.Spec.StorageClassName != nil {
		t.Errorf("storageClassName = %q, want unset (cluster default)", *pvc.Spec.StorageClassName)
	}
	if len(pvc.Spec.AccessModes) != 1 || pvc.Spec.AccessModes[0] != corev1.ReadWriteOnce {
		t.Errorf("access modes %v, want [ReadWriteOnce]", pvc.Spec.AccessModes)
	}
	if _, ok := podVolume(sts, "data"); ok {
		t.Errorf("persistence on: the pod also has a volume named data")
	}
	if p := sts.Spec.PersistentVolumeClaimRetentionPolicy; p == nil || p.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
		t.Errorf("claims must be retained when the release is deleted: %+v", p)
	}
	if !strings.Contains(rel.notes, "data-"+fullname+"-0") {
		t.Errorf("NOTES.txt does not name the data claim:\n%s", rel.notes)
	}
}

// TestChartPersistenceIngressExistingSecret covers a production-like
// install: an operator-managed Secret, a sized claim on a given class, and
// an Ingress with TLS.
func TestChartPersistenceIngressExistingSecret(t *testing.T) {
	rel := mustRender(t, yamlValues(t, `
image:
  repository: registry.example.com/fluxiondb
  tag: v1.2.3
secret:
  existingSecret: fluxiondb-master
  existingSecretKey: master-key
persistence:
  enabled: true
  size: 20Gi
  storageClass: fast-ssd
ingress:
  enabled: true
  className: nginx
  annotations:
    cert-manager.io/cluster-issuer: letsencrypt
    nginx.ingress.kubernetes.io/proxy-read-timeout: "7200"
  hosts:
    - host: db.example.com
      paths:
        - path: /
          pathType: Prefix
  tls:
    - secretName: db-example-tls
      hosts:
        - db.example.com
extraArgs:
  - --extra-flag=1
extraEnv:
  - name: TZ
    value: UTC
extraVolumes:
  - name: backup
    persistentVolumeClaim:
      claimName: fluxiondb-backup
extraVolumeMounts:
  - name: backup
    mountPath: /backup
nodeSelector:
  disk: ssd
tolerations:
  - key: dedicated
    operator: Equal
    value: db
    effect: NoSchedule
resources:
  requests:
    cpu: "1"
    memory: 4Gi
  limits:
    memory: 8Gi
`))
	none[corev1.Secret](t, rel)
	sts := one[appsv1.StatefulSet](t, rel)
	c := container(t, sts)
	if c.Image != "registry.example.com/fluxiondb:v1.2.3" {
		t.Errorf("image = %q", c.Image)
	}
	ref := mustEnv(t, c, "FLUXIONDB_SECRET_KEY").ValueFrom.SecretKeyRef
	if ref.Name != "fluxiondb-master" || ref.Key != "master-key" {
		t.Errorf("secretKeyRef = %s/%s, want fluxiondb-master/master-key", ref.Name, ref.Key)
	}
	if _, ok := sts.Spec.Template.Annotations["checksum/secret"]; ok {
		t.Errorf("checksum/secret rendered although the chart manages no Secret")
	}
	pvc := sts.Spec.VolumeClaimTemplates
	if len(pvc) != 1 || pvc[0].Spec.StorageClassName == nil || *pvc[0].Spec.StorageClassName != "fast-ssd" {
		t.Fatalf("claim templates %+v, want one on class fast-ssd", pvc)
	}
	if got := pvc[0].Spec.Resources.Requests[corev1.ResourceStorage]; got.Cmp(resource.MustParse("20Gi")) != 0 {
		t.Errorf("claim size %s, want 20Gi", got.String())
	}
	if len(c.Args) != 2 || c.Args[1] != "--extra-flag=1" {
		t.Errorf("args %q, want --data then --extra-flag=1", c.Args)
	}
	if e := mustEnv(t, c, "TZ"); e.Value != "UTC" {
		t.Errorf("extraEnv TZ = %+v", e)
	}
	ps := sts.Spec.Template.Spec
	var backupVol *corev1.Volume
	for i := range ps.Volumes {
		if ps.Volumes[i].Name == "backup" {
			backupVol = &ps.Volumes[i]
		}
	}
	if backupVol == nil || backupVol.PersistentVolumeClaim == nil || backupVol.PersistentVolumeClaim.ClaimName != "fluxiondb-backup" {
		t.Errorf("extraVolumes not passed through: %+v", ps.Volumes)
	}
	if m := c.VolumeMounts; len(m) != 3 || m[2].Name != "backup" || m[2].MountPath != "/backup" {
		t.Errorf("extraVolumeMounts not passed through: %+v", m)
	}
	if ps.NodeSelector["disk"] != "ssd" || len(ps.Tolerations) != 1 || ps.Tolerations[0].Effect != corev1.TaintEffectNoSchedule {
		t.Errorf("nodeSelector/tolerations not passed through: %v %v", ps.NodeSelector, ps.Tolerations)
	}
	if lim := c.Resources.Limits[corev1.ResourceMemory]; lim.Cmp(resource.MustParse("8Gi")) != 0 {
		t.Errorf("memory limit %s, want 8Gi", lim.String())
	}

	ing := one[networkingv1.Ingress](t, rel)
	if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName != "nginx" {
		t.Errorf("ingressClassName = %v, want nginx", ing.Spec.IngressClassName)
	}
	want := map[string]string{
		"nginx.ingress.kubernetes.io/proxy-read-timeout": "7200", // the operator's value wins
		"nginx.ingress.kubernetes.io/proxy-send-timeout": "3600",
		"cert-manager.io/cluster-issuer":                 "letsencrypt",
	}
	for k, v := range want {
		if ing.Annotations[k] != v {
			t.Errorf("Ingress annotation %s = %q, want %q", k, ing.Annotations[k], v)
		}
	}
	if len(ing.Spec.Rules) != 1 || ing.Spec.Rules[0].Host != "db.example.com" {
		t.Fatalf("Ingress rules %+v, want host db.example.com", ing.Spec.Rules)
	}
	p := ing.Spec.Rules[0].HTTP.Paths
	if len(p) != 1 || p[0].Path != "/" || p[0].PathType == nil || *p[0].PathType != networkingv1.PathTypePrefix ||
		p[0].Backend.Service.Name != fullname || p[0].Backend.Service.Port.Name != "ws" {
		t.Errorf("Ingress paths %+v, want / Prefix -> %s:ws", p, fullname)
	}
	if len(ing.Spec.TLS) != 1 || ing.Spec.TLS[0].SecretName != "db-example-tls" || len(ing.Spec.TLS[0].Hosts) != 1 || ing.Spec.TLS[0].Hosts[0] != "db.example.com" {
		t.Errorf("Ingress TLS %+v", ing.Spec.TLS)
	}
	if !strings.Contains(rel.notes, "wss://db.example.com/?api-key=") {
		t.Errorf("NOTES.txt lacks the wss URL:\n%s", rel.notes)
	}
}

// TestChartIngressDefaults checks the WebSocket timeouts are there when the
// operator sets no annotation at all.
func TestChartIngressDefaults(t *testing.T) {
	rel := mustRender(t, setValues(t, "secret.secretKey="+testKey, "ingress.enabled=true"))
	ing := one[networkingv1.Ingress](t, rel)
	for _, k := range []string{"proxy-read-timeout", "proxy-send-timeout"} {
		if v := ing.Annotations["nginx.ingress.kubernetes.io/"+k]; v != "3600" {
			t.Errorf("%s = %q, want 3600", k, v)
		}
	}
	if ing.Spec.IngressClassName != nil || len(ing.Spec.TLS) != 0 {
		t.Errorf("unset className/tls rendered: %+v", ing.Spec)
	}
	if !strings.Contains(rel.notes, "ws://fluxiondb.local/?api-key=") {
		t.Errorf("NOTES.txt lacks the ws URL:\n%s", rel.notes)
	}
	// The ingress routes the main port only: /metrics, served on its own port, stays inside.
	for _, r := range ing.Spec.Rules {
		for _, p := range r.HTTP.Paths {
			if p.Backend.Service == nil || p.Backend.Service.Port.Name != "ws" {
				t.Errorf("ingress path %s routes to %+v, want the ws port", p.Path, p.Backend.Service)
			}
		}
	}
	if e, _ := envVar(container(t, one[appsv1.StatefulSet](t, rel)), "FLUXIONDB_METRICS_ADDR"); e.Value == "" {
		t.Errorf("with the ingress on, /metrics is on the main port, public without a key")
	}
}

// TestChartMetricsOnTheMainPort: metrics.port 0 keeps /metrics on the main port (no
// --metrics-addr, no metrics port).
func TestChartMetricsOnTheMainPort(t *testing.T) {
	rel := mustRender(t, setValues(t, "secret.secretKey="+testKey, "metrics.port=0"))
	c := container(t, one[appsv1.StatefulSet](t, rel))
	if _, ok := envVar(c, "FLUXIONDB_METRICS_ADDR"); ok || len(c.Ports) != 1 {
		t.Errorf("metrics.port=0: env FLUXIONDB_METRICS_ADDR set or ports %+v", c.Ports)
	}
	if svc := serviceNamed(t, rel, fullname); len(svc.Spec.Ports) != 1 {
		t.Errorf("metrics.port=0: Service ports %+v", svc.Spec.Ports)
	}
}

// TestChartExistingClaim mounts an operator's claim instead of a template, with or without
// persistence.enabled (naming a claim asks for it: an emptyDir there would lose the data).
func TestChartExistingClaim(t *testing.T) {
	for _, enabled := range []string{"true", "false"} {
		t.Run("enabled="+enabled, func(t *testing.T) { checkExistingClaim(t, enabled) })
	}
}

func checkExistingClaim(t *testing.T, enabled string) {
	rel := mustRender(t, setValues(t, "secret.secretKey="+testKey, "persistence.enabled="+enabled, "persistence.existingClaim=fluxiondb-data"))
	sts := one[appsv1.StatefulSet](t, rel)
	if len(sts.Spec.VolumeClaimTemplates) != 0 {
		t.Errorf("existingClaim set but %d claim templates rendered", len(sts.Spec.VolumeClaimTemplates))
	}
	v, ok := podVolume(sts, "data")
	if !ok || v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != "fluxiondb-data" {
		t.Errorf("data volume = %+v, want claim fluxiondb-data", v.VolumeSource)
	}
	if !strings.Contains(rel.notes, "existing claim fluxiondb-data") {
		t.Errorf("NOTES.txt does not name the claim:\n%s", rel.notes)
	}
}

// TestChartLongNames: the longest fullname (63 characters) still gives valid Service names;
// the headless one is cut to make room for its suffix, and the StatefulSet points at it.
func TestChartLongNames(t *testing.T) {
	long := strings.Repeat("a", 63)
	rel := mustRender(t, setValues(t, "secret.secretKey="+testKey, "fullnameOverride="+long))
	names := map[string]bool{}
	for _, s := range all[corev1.Service](rel) {
		if len(s.Name) > 63 {
			t.Errorf("Service name %q is %d characters, over 63", s.Name, len(s.Name))
		}
		names[s.Name] = true
	}
	if sts := one[appsv1.StatefulSet](t, rel); !names[sts.Spec.ServiceName] {
		t.Errorf("StatefulSet serviceName %q is none of the Services %v", sts.Spec.ServiceName, names)
	}
}

// TestChartOptions covers the smaller switches.
func TestChartOptions(t *testing.T) {
	t.Run("digest", func(t *testing.T) {
		digest := "sha256:" + strings.Repeat("ab", 32)
		rel := mustRender(t, setValues(t, "secret.secretKey="+testKey, "image.tag="+digest))
		if c := container(t, one[appsv1.StatefulSet](t, rel)); c.Image != "volandoo/fluxiondb@"+digest {
			t.Errorf("image = %q, want a digest reference", c.Image)
		}
	})
	t.Run("no storage class", func(t *testing.T) {
		rel := mustRender(t, setValues(t, "secret.secretKey="+testKey, "persistence.enabled=true", "persistence.storageClass=-"))
		pvc := one[appsv1.StatefulSet](t, rel).Spec.VolumeClaimTemplates[0]
		if pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "" {
			t.Errorf(`storageClass "-" must render storageClassName: "", got %v`, pvc.Spec.StorageClassName)
		}
	})
	t.Run("no service account", func(t *testing.T) {
		rel := mustRender(t, setValues(t, "secret.secretKey="+testKey, "serviceAccount.create=false"))
		none[corev1.ServiceAccount](t, rel)
		if n := one[appsv1.StatefulSet](t, rel).Spec.Template.Spec.ServiceAccountName; n != "default" {
			t.Errorf("serviceAccountName = %q, want default", n)
		}
	})
	t.Run("other release name", func(t *testing.T) {
		ch := loadChart(t)
		opts := chartutil.ReleaseOptions{Name: "prod", Namespace: releaseNS, Revision: 1, IsInstall: true}
		rv, err := chartutil.ToRenderValues(ch, setValues(t, "secret.secretKey="+testKey), opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		files, err := engine.Render(ch, rv)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(files["fluxiondb/templates/statefulset.yaml"], "name: prod-fluxiondb\n") {
			t.Errorf("release prod: StatefulSet not named prod-fluxiondb:\n%s", files["fluxiondb/templates/statefulset.yaml"])
		}
	})
	t.Run("load balancer", func(t *testing.T) {
		rel := mustRender(t, setValues(t, "secret.secretKey="+testKey, "service.type=LoadBalancer"))
		if !strings.Contains(rel.notes, "loadBalancer.ingress") {
			t.Errorf("NOTES.txt lacks the LoadBalancer hint:\n%s", rel.notes)
		}
	})
}

// TestChartRequiresMasterKey: without secret.secretKey or
// secret.existingSecret nothing renders, and the message names both.
func TestChartRequiresMasterKey(t *testing.T) {
	for name, vals := range map[string]map[string]any{
		"nothing":      {},
		"empty key":    setValues(t, "secret.secretKey="),
		"empty secret": setValues(t, "secret.existingSecret="),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := render(t, vals)
			if err == nil {
				t.Fatal("chart rendered without a master key")
			}
			for _, want := range []string{"secretKey", "existingSecret"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not mention %s:\n%v", want, err)
				}
			}
		})
	}
	// A renderer that skips the schema still stops, with the template's
	// own message.
	ch := loadChart(t)
	opts := chartutil.ReleaseOptions{Name: releaseName, Namespace: releaseNS, Revision: 1, IsInstall: true}
	rv, err := chartutil.ToRenderValuesWithSchemaValidation(ch, map[string]any{}, opts, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	_, err = engine.Render(ch, rv)
	if err == nil || !strings.Contains(err.Error(), "set secret.secretKey") {
		t.Errorf("render without schema: err = %v, want the chart's fail message", err)
	}
}

// TestChartSchemaRejectsTypos: values.schema.json closes the value tree,
// so a misspelt value fails instead of being silently ignored.
func TestChartSchemaRejectsTypos(t *testing.T) {
	for _, set := range []string{
		"persistence.sise=10Gi",
		"persistence.size=ten",
		"ingress.host=db.example.com",
		"image.pullPolicy=Sometimes",
		"service.port=0",
		"replicaCount=3",
		"extraVolumes[0].name=data",        // the chart's own volume names
		"extraVolumeMounts[0].name=backup", // a mount needs its mountPath
	} {
		t.Run(set, func(t *testing.T) {
			if _, err := render(t, setValues(t, "secret.secretKey="+testKey, set)); err == nil {
				t.Errorf("--set %s accepted", set)
			}
		})
	}
}

// TestChartLint runs `helm lint`'s rules; anything above INFO fails.
func TestChartLint(t *testing.T) {
	for name, vals := range map[string]map[string]any{
		"defaults":    setValues(t, "secret.secretKey="+testKey),
		"persistence": setValues(t, "secret.secretKey="+testKey, "persistence.enabled=true", "ingress.enabled=true"),
	} {
		t.Run(name, func(t *testing.T) {
			l := lint.All(chartDir, vals, releaseNS, false)
			for _, m := range l.Messages {
				if m.Severity > support.InfoSev {
					t.Errorf("helm lint: %v", m)
				} else {
					t.Logf("helm lint: %v", m)
				}
			}
		})
	}
	// Without a key the linter must report the schema error.
	l := lint.All(chartDir, map[string]any{}, releaseNS, false)
	if l.HighestSeverity != support.ErrorSev {
		t.Errorf("helm lint without a master key: highest severity %d, want ERROR; messages %v", l.HighestSeverity, l.Messages)
	}
}

func mustEnv(t *testing.T, c corev1.Container, name string) corev1.EnvVar {
	t.Helper()
	e, ok := envVar(c, name)
	if !ok {
		t.Fatalf("container has no env %s", name)
	}
	return e
}
