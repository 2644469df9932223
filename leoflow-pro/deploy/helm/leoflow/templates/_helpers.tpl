{{/* The chart's name, truncated to a DNS label. */}}
{{- define "leoflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: <release>-leoflow unless the release name contains it. */}}
{{- define "leoflow.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "leoflow.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Every object of the release. */}}
{{- define "leoflow.instanceLabels" -}}
app.kubernetes.io/name: {{ include "leoflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
The server pods (Deployment, Service, PDB, anti-affinity, NetworkPolicy). The component
keeps the migration Job's pod out of the Service and the PDB.
*/}}
{{- define "leoflow.selectorLabels" -}}
{{ include "leoflow.instanceLabels" . }}
app.kubernetes.io/component: server
{{- end -}}

{{- define "leoflow.labels" -}}
helm.sh/chart: {{ include "leoflow.chart" . }}
{{ include "leoflow.instanceLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: leoflow
{{- end -}}

{{- define "leoflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "leoflow.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false (the server needs an account allowed to manage pods in executor.namespace)" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository:tag or repository@digest; the tag defaults to the chart's appVersion. */}}
{{- define "leoflow.imageRef" -}}
{{- $img := index . 0 -}}
{{- $root := index . 1 -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default $root.Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}

{{- define "leoflow.generatedSecretName" -}}
{{- printf "%s-generated" (include "leoflow.fullname" .) -}}
{{- end -}}

{{/*
The Secret a reference points at: its existingSecret, else the chart-generated Secret when
`secrets.generate` is on and the value can be generated, else a template failure naming
the value to set. Arguments: (list $root $ref "values.path" generatable).
*/}}
{{- define "leoflow.secretName" -}}
{{- $root := index . 0 -}}
{{- $ref := index . 1 -}}
{{- $path := index . 2 -}}
{{- $generatable := index . 3 -}}
{{- if $ref.existingSecret -}}
{{- $ref.existingSecret -}}
{{- else if and $generatable $root.Values.secrets.generate -}}
{{- include "leoflow.generatedSecretName" $root -}}
{{- else if $generatable -}}
{{- fail (printf "%s.existingSecret is required: name a Secret holding key %q (or set secrets.generate=true to let the chart create a random one)" $path $ref.key) -}}
{{- else -}}
{{- fail (printf "%s.existingSecret is required: name a Secret holding key %q; Leoflow Pro needs an external PostgreSQL and Redis" $path $ref.key) -}}
{{- end -}}
{{- end -}}

{{/* The URL agents in task pods call back. */}}
{{- define "leoflow.agentUrl" -}}
{{- if .Values.executor.agentUrl -}}
{{- .Values.executor.agentUrl -}}
{{- else -}}
{{- printf "http://%s.%s.svc.%s:%v" (include "leoflow.fullname" .) .Release.Namespace .Values.clusterDomain .Values.service.port -}}
{{- end -}}
{{- end -}}

{{/* The server's secret environment: every value from a Secret reference. */}}
{{- define "leoflow.secretEnv" -}}
- name: LEOFLOW_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "leoflow.secretName" (list . .Values.secrets.database "secrets.database" false) }}
      key: {{ .Values.secrets.database.key }}
- name: LEOFLOW_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "leoflow.secretName" (list . .Values.secrets.redis "secrets.redis" false) }}
      key: {{ .Values.secrets.redis.key }}
- name: LEOFLOW_AUTH_JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "leoflow.secretName" (list . .Values.secrets.jwt "secrets.jwt" true) }}
      key: {{ .Values.secrets.jwt.key }}
- name: LEOFLOW_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "leoflow.secretName" (list . .Values.secrets.encryptionKey "secrets.encryptionKey" true) }}
      key: {{ .Values.secrets.encryptionKey.key }}
{{- if .Values.secrets.bootstrapPassword.existingSecret }}
- name: LEOFLOW_BOOTSTRAP_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.bootstrapPassword.existingSecret }}
      key: {{ .Values.secrets.bootstrapPassword.key }}
{{- end }}
{{- end -}}
