{{- define "dwnsync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "dwnsync.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "dwnsync.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The image by digest when one is given (immutable), else by tag (default: appVersion). */}}
{{- define "dwnsync.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "dwnsync.labels" -}}
app.kubernetes.io/name: {{ include "dwnsync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "dwnsync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dwnsync.name" . }}
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
