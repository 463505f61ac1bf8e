{{- define "dwnsync.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "dwnsync.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "dwnsync.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "dwnsync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "dwnsync.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The rules the operator needs on the namespaces it watches (least privilege). */}}
{{- define "dwnsync.watchRules" -}}
- apiGroups: ["dwnsync.io"]
  resources: ["replicationlinks"]
  verbs: ["get", "list", "watch", "update", "patch"]
- apiGroups: ["dwnsync.io"]
  resources: ["replicationlinks/status"]
  verbs: ["get", "update", "patch"]
- apiGroups: ["dwnsync.io"]
  resources: ["replicationlinks/finalizers"]
  verbs: ["update"]
# Secrets: list and watch only, and the operator selects the label dwnsync.io/signer=true, so
# unlabelled Secrets never enter its memory (Kubernetes RBAC cannot restrict by label).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch", "update"]
{{- end -}}
