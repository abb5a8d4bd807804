{{- define "homelab-operator.labels" -}}
app.kubernetes.io/name: homelab-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "homelab-operator.selector" -}}
app.kubernetes.io/name: homelab-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "homelab-operator.username" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ .Values.serviceAccount.name }}
{{- end -}}
