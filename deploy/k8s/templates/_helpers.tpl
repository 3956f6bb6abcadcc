{{/* Labels of every object of one service. */}}
{{- define "warren.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/part-of: warren
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{/* The selector of one service's Pods. */}}
{{- define "warren.selector" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* A service's settings: its own over the defaults. */}}
{{- define "warren.service" -}}
{{- $svc := mergeOverwrite (deepCopy .root.Values.defaults) (deepCopy (default dict .svc)) -}}
{{- toYaml $svc -}}
{{- end -}}

{{/* Name of the ServiceAccount the services run as. */}}
{{- define "warren.serviceAccount" -}}
{{ .Release.Name }}-warren
{{- end -}}
