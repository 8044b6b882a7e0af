{{/* Names and labels. */}}
{{- define "azvm.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "azvm.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "azvm.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "azvm.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "azvm.selectorLabels" -}}
app.kubernetes.io/name: {{ include "azvm.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "azvm.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "azvm.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: azure-vm-operator
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "azvm.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "azvm.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "azvm.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The namespace the operator watches: "" = every namespace (cluster-wide mode). */}}
{{- define "azvm.watchNamespace" -}}
{{- if .Values.watchNamespaces -}}{{- first .Values.watchNamespaces -}}{{- end -}}
{{- end -}}

{{/* The shards: a list of indices, one Deployment each ([0] without sharding). */}}
{{- define "azvm.shardName" -}}
{{- $root := index . 0 -}}{{- $index := index . 1 -}}
{{- if gt (int $root.Values.sharding.count) 1 -}}
{{- printf "%s-shard-%d" (include "azvm.fullname" $root | trunc 55 | trimSuffix "-") (int $index) -}}
{{- else -}}
{{- include "azvm.fullname" $root -}}
{{- end -}}
{{- end -}}

{{/*
Azure clouds: the ARM endpoint, the token audience (scope "<audience>/.default") and the Entra ID authority.
Custom takes azure.endpoint / azure.audience / azure.authorityHost.
*/}}
{{- define "azvm.cloud" -}}
{{- $clouds := dict
  "AzurePublicCloud" (dict "endpoint" "https://management.azure.com" "audience" "https://management.azure.com" "authorityHost" "https://login.microsoftonline.com")
  "AzureUSGovernment" (dict "endpoint" "https://management.usgovcloudapi.net" "audience" "https://management.core.usgovcloudapi.net" "authorityHost" "https://login.microsoftonline.us")
  "AzureChinaCloud" (dict "endpoint" "https://management.chinacloudapi.cn" "audience" "https://management.core.chinacloudapi.cn" "authorityHost" "https://login.chinacloudapi.cn")
  "Custom" (dict "endpoint" "" "audience" "" "authorityHost" "")
-}}
{{- $cloud := get $clouds .Values.azure.cloud -}}
{{- $endpoint := .Values.azure.endpoint | default $cloud.endpoint -}}
{{- $audience := .Values.azure.audience | default $cloud.audience | default $endpoint -}}
{{- $authority := .Values.azure.authorityHost | default $cloud.authorityHost -}}
{{- toYaml (dict "endpoint" $endpoint "audience" $audience "authorityHost" $authority) -}}
{{- end -}}

{{/*
The RBAC rules on the operator's own kinds, generated from the CRDs the chart ships (crds/, the repository's
single source): for each kind list/watch/patch (Kopf watches and keeps its finalizer and annotations; the
autoscaler's first spec.replicas write), patch on /status where the CRD declares it (status writes) and patch on
/scale where the CRD declares it (the autoscaler's /scale writes). A kind added to crds/ is covered without an edit.
*/}}
{{- define "azvm.crdRules" -}}
{{- range $path, $_ := .Files.Glob "crds/*.yaml" }}
{{- $crd := fromYaml ($.Files.Get $path) }}
{{- if eq ($crd.kind | default "") "CustomResourceDefinition" }}
{{- $status := false }}{{- $scale := false }}
{{- range $crd.spec.versions }}
{{- if and .subresources (hasKey .subresources "status") }}{{- $status = true }}{{- end }}
{{- if and .subresources (hasKey .subresources "scale") }}{{- $scale = true }}{{- end }}
{{- end }}
- apiGroups: [{{ $crd.spec.group | quote }}]
  resources: [{{ $crd.spec.names.plural | quote }}]
  verbs: ["get", "list", "watch", "patch", "delete"]
{{- if $status }}
- apiGroups: [{{ $crd.spec.group | quote }}]
  resources: [{{ printf "%s/status" $crd.spec.names.plural | quote }}]
  verbs: ["patch"]
{{- end }}
{{- if $scale }}
- apiGroups: [{{ $crd.spec.group | quote }}]
  resources: [{{ printf "%s/scale" $crd.spec.names.plural | quote }}]
  verbs: ["patch"]
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* What the operator reads and writes besides its kinds, in the namespaces it serves. */}}
{{- define "azvm.namespacedRules" -}}
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["secrets", "configmaps"]
  verbs: ["get"]
{{- end -}}

{{/*
The leader Lease of each shard, as the operator names it (sharding.Shard.lease_name): "azure-vm-operator", then
"-<first 10 hex digits of sha256(selector)>" with a selector, then "-shard-<i>-of-<n>" when sharded.
*/}}
{{- define "azvm.leaseNames" -}}
{{- $base := "azure-vm-operator" -}}
{{- with .Values.operator.selector }}{{- $base = printf "%s-%s" $base (sha256sum . | trunc 10) -}}{{- end -}}
{{- $count := int .Values.sharding.count -}}
{{- range $index := until $count }}
{{- if gt $count 1 }}
- {{ printf "%s-shard-%d-of-%d" $base $index $count | quote }}
{{- else }}
- {{ $base | quote }}
{{- end }}
{{- end }}
{{- end -}}
