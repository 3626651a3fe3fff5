// Command k8s-validate checks rendered Kubernetes manifests offline: every YAML
// document of the input (files, or stdin when none is given; `helm template`
// output) is decoded STRICTLY into the Kubernetes API Go type of its
// apiVersion/kind (k8s.io/api through client-go's scheme): an unknown field, a
// duplicate key or a value of the wrong type fails, and so does an
// apiVersion/kind this Kubernetes version does not know. A few checks the API
// server makes on every object follow (metadata.name, labels, container names,
// ports, env names, volume references).
//
// Exit 0: every document is valid (one line per document on stdout).
// Exit 1: one line per problem on stderr, naming the document (its index, its
// `# Source:` comment and Kind/name) and the field.
// Exit 2: usage or unreadable input.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes/scheme"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

type document struct {
	index  int
	source string
	body   []byte
}

var sourceComment = regexp.MustCompile(`(?m)^# Source: (.+)$`)

// splitDocuments cuts a YAML stream at lines that are exactly `---`.
func splitDocuments(in []byte) []document {
	var docs []document
	var cur bytes.Buffer
	flush := func() {
		body := bytes.TrimSpace(cur.Bytes())
		cur.Reset()
		if len(body) == 0 {
			return
		}
		d := document{index: len(docs) + 1, body: append([]byte(nil), body...)}
		if m := sourceComment.FindSubmatch(body); m != nil {
			d.source = string(m[1])
		}
		docs = append(docs, d)
	}
	sc := bufio.NewScanner(bytes.NewReader(in))
	sc.Buffer(make([]byte, 1024*1024), 64*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimRight(line, " \t") == "---" {
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return docs
}

// onlyComments: a document with nothing but comments (helm renders these for
// templates whose condition is false).
func onlyComments(body []byte) bool {
	for _, l := range strings.Split(string(body), "\n") {
		t := strings.TrimSpace(l)
		if t != "" && !strings.HasPrefix(t, "#") {
			return false
		}
	}
	return true
}

type problems struct {
	doc  document
	what string
	list []string
}

func (p *problems) add(format string, a ...any) {
	p.list = append(p.list, fmt.Sprintf(format, a...))
}

func (p *problems) label() string {
	s := fmt.Sprintf("document %d", p.doc.index)
	if p.doc.source != "" {
		s += " (" + p.doc.source + ")"
	}
	if p.what != "" {
		s += " " + p.what
	}
	return s
}

func validate(d document) (string, []string) {
	p := &problems{doc: d}
	jsonBody, err := yaml.YAMLToJSONStrict(d.body)
	if err != nil {
		p.add("not valid YAML: %v", err)
		return p.label(), p.list
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(jsonBody, &head); err != nil {
		p.add("not a Kubernetes object: %v", err)
		return p.label(), p.list
	}
	p.what = fmt.Sprintf("%s/%s", head.Kind, head.Metadata.Name)
	if head.APIVersion == "" {
		p.add("apiVersion: missing")
	}
	if head.Kind == "" {
		p.add("kind: missing")
	}
	if len(p.list) > 0 {
		return p.label(), p.list
	}
	gv, err := schema.ParseGroupVersion(head.APIVersion)
	if err != nil {
		p.add("apiVersion %q: %v", head.APIVersion, err)
		return p.label(), p.list
	}
	gvk := gv.WithKind(head.Kind)
	obj, err := scheme.Scheme.New(gvk)
	if err != nil {
		p.add("apiVersion %q, kind %q: not a Kubernetes API type known to k8s.io/api (%v)", head.APIVersion, head.Kind, err)
		return p.label(), p.list
	}
	strict, err := kjson.UnmarshalStrict(jsonBody, obj)
	if err != nil {
		p.add("%s: %v", gvk.Kind, err)
	}
	for _, e := range strict {
		p.add("%v", e)
	}
	if err == nil {
		checkObject(p, obj)
	}
	return p.label(), p.list
}

func checkName(p *problems, field, name string, dns1123Label bool) {
	if name == "" {
		p.add("%s: required", field)
		return
	}
	var errs []string
	if dns1123Label {
		errs = validation.IsDNS1123Label(name)
	} else {
		errs = validation.IsDNS1123Subdomain(name)
	}
	for _, e := range errs {
		p.add("%s %q: %s", field, name, e)
	}
}

func checkMeta(p *problems, obj runtime.Object) {
	acc, ok := obj.(interface {
		GetName() string
		GetLabels() map[string]string
		GetAnnotations() map[string]string
	})
	if !ok {
		return
	}
	checkName(p, "metadata.name", acc.GetName(), false)
	checkLabels(p, "metadata.labels", acc.GetLabels())
	for k := range acc.GetAnnotations() {
		for _, e := range validation.IsQualifiedName(strings.ToLower(k)) {
			p.add("metadata.annotations key %q: %s", k, e)
		}
	}
}

func checkLabels(p *problems, field string, labels map[string]string) {
	for k, v := range labels {
		for _, e := range validation.IsQualifiedName(k) {
			p.add("%s key %q: %s", field, k, e)
		}
		for _, e := range validation.IsValidLabelValue(v) {
			p.add("%s[%s] %q: %s", field, k, v, e)
		}
	}
}

func checkPodSpec(p *problems, field string, spec *corev1.PodSpec) {
	if len(spec.Containers) == 0 {
		p.add("%s.containers: at least one container is required", field)
	}
	volumes := map[string]bool{}
	for i, v := range spec.Volumes {
		checkName(p, fmt.Sprintf("%s.volumes[%d].name", field, i), v.Name, true)
		volumes[v.Name] = true
	}
	all := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	for i, c := range all {
		cf := fmt.Sprintf("%s.containers[%d]", field, i-len(spec.InitContainers))
		if i < len(spec.InitContainers) {
			cf = fmt.Sprintf("%s.initContainers[%d]", field, i)
		}
		checkName(p, cf+".name", c.Name, true)
		if strings.TrimSpace(c.Image) == "" {
			p.add("%s.image: required", cf)
		}
		for j, port := range c.Ports {
			if port.ContainerPort < 1 || port.ContainerPort > 65535 {
				p.add("%s.ports[%d].containerPort %d: must be between 1 and 65535", cf, j, port.ContainerPort)
			}
			if port.Name != "" {
				for _, e := range validation.IsValidPortName(port.Name) {
					p.add("%s.ports[%d].name %q: %s", cf, j, port.Name, e)
				}
			}
		}
		for j, e := range c.Env {
			for _, msg := range validation.IsEnvVarName(e.Name) {
				p.add("%s.env[%d].name %q: %s", cf, j, e.Name, msg)
			}
			if e.Value != "" && e.ValueFrom != nil {
				p.add("%s.env[%d] (%s): value and valueFrom are exclusive", cf, j, e.Name)
			}
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				if e.ValueFrom.SecretKeyRef.Name == "" || e.ValueFrom.SecretKeyRef.Key == "" {
					p.add("%s.env[%d].valueFrom.secretKeyRef (%s): name and key are required", cf, j, e.Name)
				}
			}
		}
		for j, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				p.add("%s.volumeMounts[%d].name %q: no volume of that name in %s.volumes", cf, j, m.Name, field)
			}
			if !strings.HasPrefix(m.MountPath, "/") {
				p.add("%s.volumeMounts[%d].mountPath %q: must be an absolute path", cf, j, m.MountPath)
			}
		}
	}
	switch spec.RestartPolicy {
	case "", corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever:
	default:
		p.add("%s.restartPolicy %q: must be Always, OnFailure or Never", field, spec.RestartPolicy)
	}
}

func checkSelector(p *problems, field string, selector map[string]string, podLabels map[string]string) {
	if len(selector) == 0 {
		p.add("%s: required", field)
	}
	for k, v := range selector {
		if podLabels[k] != v {
			p.add("%s[%s]=%q: the pod template's labels do not match it", field, k, v)
		}
	}
}

func checkObject(p *problems, obj runtime.Object) {
	checkMeta(p, obj)
	switch o := obj.(type) {
	case *batchv1.CronJob:
		// The controller names each Job <cronjob>-<11 characters>, within the 63 of a label value.
		if n := len(o.Name); n > 52 {
			p.add("metadata.name %q: a CronJob's name must be at most 52 characters, not %d", o.Name, n)
		}
		if strings.TrimSpace(o.Spec.Schedule) == "" {
			p.add("spec.schedule: required")
		} else if n := len(strings.Fields(o.Spec.Schedule)); n != 5 && !strings.HasPrefix(o.Spec.Schedule, "@") {
			p.add("spec.schedule %q: a cron schedule has 5 fields, not %d", o.Spec.Schedule, n)
		}
		switch o.Spec.ConcurrencyPolicy {
		case "", batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent:
		default:
			p.add("spec.concurrencyPolicy %q: must be Allow, Forbid or Replace", o.Spec.ConcurrencyPolicy)
		}
		ps := o.Spec.JobTemplate.Spec.Template.Spec
		if ps.RestartPolicy != corev1.RestartPolicyNever && ps.RestartPolicy != corev1.RestartPolicyOnFailure {
			p.add("spec.jobTemplate.spec.template.spec.restartPolicy %q: a Job's pods need Never or OnFailure", ps.RestartPolicy)
		}
		checkLabels(p, "spec.jobTemplate.spec.template.metadata.labels", o.Spec.JobTemplate.Spec.Template.Labels)
		checkPodSpec(p, "spec.jobTemplate.spec.template.spec", &o.Spec.JobTemplate.Spec.Template.Spec)
	case *appsv1.Deployment:
		if o.Spec.Selector == nil {
			p.add("spec.selector: required")
		} else {
			checkSelector(p, "spec.selector.matchLabels", o.Spec.Selector.MatchLabels, o.Spec.Template.Labels)
		}
		if o.Spec.Replicas != nil && *o.Spec.Replicas < 0 {
			p.add("spec.replicas %d: must be >= 0", *o.Spec.Replicas)
		}
		if rp := o.Spec.Template.Spec.RestartPolicy; rp != "" && rp != corev1.RestartPolicyAlways {
			p.add("spec.template.spec.restartPolicy %q: a Deployment's pods need Always", rp)
		}
		checkLabels(p, "spec.template.metadata.labels", o.Spec.Template.Labels)
		checkPodSpec(p, "spec.template.spec", &o.Spec.Template.Spec)
	case *corev1.Service:
		for i, port := range o.Spec.Ports {
			if port.Port < 1 || port.Port > 65535 {
				p.add("spec.ports[%d].port %d: must be between 1 and 65535", i, port.Port)
			}
		}
	}
}

func main() {
	var input []byte
	args := os.Args[1:]
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Println("usage: k8s-validate [FILE…]   (stdin when no file is given)")
		return
	}
	if len(args) == 0 {
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			fmt.Fprintf(os.Stderr, "k8s-validate: reading stdin: %v\n", err)
			os.Exit(2)
		}
		input = b
	}
	for _, f := range args {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(os.Stderr, "k8s-validate: %v\n", err)
			os.Exit(2)
		}
		input = append(append(input, []byte("\n---\n")...), b...)
	}
	docs := splitDocuments(input)
	failed, checked := 0, 0
	for _, d := range docs {
		if onlyComments(d.body) {
			continue
		}
		checked++
		label, errs := validate(d)
		if len(errs) == 0 {
			fmt.Printf("ok %s\n", label)
			continue
		}
		failed++
		for _, e := range errs {
			fmt.Fprintf(os.Stderr, "%s: %s\n", label, e)
		}
	}
	if checked == 0 {
		fmt.Fprintln(os.Stderr, "k8s-validate: no Kubernetes object in the input")
		os.Exit(1)
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "k8s-validate: %d of %d documents invalid\n", failed, checked)
		os.Exit(1)
	}
}
