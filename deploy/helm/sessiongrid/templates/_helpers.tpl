{{/* Names. */}}
{{- define "sessiongrid.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sessiongrid.fullname" -}}
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

{{- define "sessiongrid.server.fullname" -}}
{{- printf "%s-server" (include "sessiongrid.fullname" .) | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{/* The headless Service behind the pods' stable DNS names and --peer-dns. */}}
{{- define "sessiongrid.server.peersName" -}}
{{- printf "%s-peers" (include "sessiongrid.server.fullname" .) -}}
{{- end -}}
{{- define "sessiongrid.edge.fullname" -}}
{{- printf "%s-edge" (include "sessiongrid.fullname" .) | trunc 55 | trimSuffix "-" -}}
{{- end -}}
{{- define "sessiongrid.edge.rulesName" -}}
{{- default (printf "%s-rules" (include "sessiongrid.edge.fullname" .)) .Values.edge.rules.existingConfigMap -}}
{{- end -}}
{{- define "sessiongrid.edge.cookieSecretName" -}}
{{- default (printf "%s-cookie" (include "sessiongrid.edge.fullname" .)) .Values.edge.cookie.existingSecret -}}
{{- end -}}
{{- define "sessiongrid.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sessiongrid.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Labels. Helm's own (helm.sh/chart, managed-by) are the only ones the
plain manifests in deploy/k8s do not carry. */}}
{{- define "sessiongrid.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/name: {{ include "sessiongrid.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: sessiongrid
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "sessiongrid.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sessiongrid.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Call with (dict "ctx" $ "component" "server"). */}}
{{- define "sessiongrid.componentLabels" -}}
{{ include "sessiongrid.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}
{{- define "sessiongrid.componentSelector" -}}
{{ include "sessiongrid.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "sessiongrid.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Soft or hard anti-affinity on the hostname, merged with extra terms.
Call with (dict "ctx" $ "component" "server" "mode" "soft" "extra" {}). */}}
{{- define "sessiongrid.affinity" -}}
{{- $term := dict "labelSelector" (dict "matchLabels" (include "sessiongrid.componentSelector" (dict "ctx" .ctx "component" .component) | fromYaml)) "topologyKey" "kubernetes.io/hostname" -}}
{{- $affinity := deepCopy (default (dict) .extra) -}}
{{- if eq .mode "soft" -}}
{{- $_ := set $affinity "podAntiAffinity" (dict "preferredDuringSchedulingIgnoredDuringExecution" (list (dict "weight" 100 "podAffinityTerm" $term))) -}}
{{- else if eq .mode "hard" -}}
{{- $_ := set $affinity "podAntiAffinity" (dict "requiredDuringSchedulingIgnoredDuringExecution" (list $term)) -}}
{{- end -}}
{{- if $affinity -}}
{{ toYaml $affinity }}
{{- end -}}
{{- end -}}

{{/* Grace periods: computed from the drain, or checked against it. */}}
{{- define "sessiongrid.server.grace" -}}
{{- $floor := add .Values.server.preStopSleepSeconds .Values.server.drainTimeoutSeconds -}}
{{- if kindIs "invalid" .Values.server.terminationGracePeriodSeconds -}}
{{- add $floor 10 -}}
{{- else if le (int .Values.server.terminationGracePeriodSeconds) (int $floor) -}}
{{- fail (printf "server.terminationGracePeriodSeconds (%v) must exceed server.preStopSleepSeconds + server.drainTimeoutSeconds (%v)" .Values.server.terminationGracePeriodSeconds $floor) -}}
{{- else -}}
{{- .Values.server.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{- define "sessiongrid.edge.grace" -}}
{{- $floor := add .Values.edge.preStopSleepSeconds .Values.edge.drainDelaySeconds .Values.edge.drainTimeoutSeconds -}}
{{- if kindIs "invalid" .Values.edge.terminationGracePeriodSeconds -}}
{{- add $floor 5 -}}
{{- else if le (int .Values.edge.terminationGracePeriodSeconds) (int $floor) -}}
{{- fail (printf "edge.terminationGracePeriodSeconds (%v) must exceed edge.preStopSleepSeconds + edge.drainDelaySeconds + edge.drainTimeoutSeconds (%v)" .Values.edge.terminationGracePeriodSeconds $floor) -}}
{{- else -}}
{{- .Values.edge.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{/* Cross-value checks the schema cannot express. */}}
{{- define "sessiongrid.validate" -}}
{{- $r := .Values.server.replication -}}
{{- if gt (int $r.writeQuorum) (int $r.factor) -}}
{{- fail (printf "server.replication.writeQuorum (%v) must not exceed server.replication.factor (%v)" $r.writeQuorum $r.factor) -}}
{{- end -}}
{{- if gt (int $r.readQuorum) (int $r.factor) -}}
{{- fail (printf "server.replication.readQuorum (%v) must not exceed server.replication.factor (%v)" $r.readQuorum $r.factor) -}}
{{- end -}}
{{- if lt (int .Values.server.replicas) (int $r.factor) -}}
{{- fail (printf "server.replicas (%v) must be at least server.replication.factor (%v)" .Values.server.replicas $r.factor) -}}
{{- end -}}
{{- if and .Values.edge.autoscaling.enabled (gt (int .Values.edge.autoscaling.minReplicas) (int .Values.edge.autoscaling.maxReplicas)) -}}
{{- fail "edge.autoscaling.minReplicas must not exceed edge.autoscaling.maxReplicas" -}}
{{- end -}}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) -}}
{{- fail "tls.enabled needs tls.existingSecret: a Secret with tls.crt, tls.key and ca.crt" -}}
{{- end -}}
{{- if and .Values.tls.clientAuth (not .Values.tls.enabled) -}}
{{- fail "tls.clientAuth needs tls.enabled=true" -}}
{{- end -}}
{{- if and .Values.tls.enabled (not .Values.server.metrics.enabled) -}}
{{- fail "tls.enabled needs server.metrics.enabled=true: the server probes use /readyz and /healthz on the metrics port" -}}
{{- end -}}
{{- if and .Values.peerTls.enabled (not .Values.peerTls.existingSecret) -}}
{{- fail "peerTls.enabled needs peerTls.existingSecret: a Secret with tls.crt, tls.key and ca.crt" -}}
{{- end -}}
{{- $secure := eq (include "sessiongrid.edge.cookieSecure" .) "true" -}}
{{- if and (eq .Values.edge.cookie.sameSite "none") (not $secure) -}}
{{- fail "edge.cookie.sameSite=none needs a Secure cookie: edge.cookie.secure=true, or edge.production=true with edge.cookie.secure unset" -}}
{{- end -}}
{{- if and .Values.edge.cookie.hostPrefix (not $secure) -}}
{{- fail "edge.cookie.hostPrefix needs a Secure cookie: edge.cookie.secure=true, or edge.production=true with edge.cookie.secure unset" -}}
{{- end -}}
{{- end -}}

{{/* "true" when the edge's cookie is Secure: edge.cookie.secure when set,
else edge.production (the edge's own rule). */}}
{{- define "sessiongrid.edge.cookieSecure" -}}
{{- if kindIs "invalid" .Values.edge.cookie.secure -}}
{{- ternary "true" "false" (eq (toString .Values.edge.production) "true") -}}
{{- else -}}
{{- ternary "true" "false" (eq (toString .Values.edge.cookie.secure) "true") -}}
{{- end -}}
{{- end -}}

{{/* Server PDB: the servers that must stay up so that every ring range
keeps writeQuorum live owners: replicas - factor + writeQuorum. */}}
{{- define "sessiongrid.server.minAvailable" -}}
{{- if kindIs "invalid" .Values.server.pdb.minAvailable -}}
{{- $r := .Values.server.replication -}}
{{- add (sub (int .Values.server.replicas) (int $r.factor)) (int $r.writeQuorum) -}}
{{- else -}}
{{- .Values.server.pdb.minAvailable -}}
{{- end -}}
{{- end -}}

{{/* The edge's rules file content and the cookie keys. */}}
{{- define "sessiongrid.edge.rulesContent" -}}
{{- if .Values.edge.rules.content -}}
{{- .Values.edge.rules.content -}}
{{- else -}}
{{- .Files.Get "files/rules/default.yaml" -}}
{{- end -}}
{{- end -}}

{{/* The cookie keys, one per line: edge.cookie.secrets, else the key the
Secret already holds (kept across upgrades), else a random one generated once
per render and shared by the Secret and the Deployment's checksum. */}}
{{- define "sessiongrid.edge.cookieKeys" -}}
{{- $c := .Values.edge.cookie -}}
{{- if $c.secrets -}}
{{- join "\n" $c.secrets -}}
{{- else -}}
{{- if not (hasKey $c "_resolvedKeys") -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "sessiongrid.edge.cookieSecretName" .) -}}
{{- if and $existing (hasKey (default (dict) $existing.data) "keys") -}}
{{- $_ := set $c "_resolvedKeys" (index $existing.data "keys" | b64dec) -}}
{{- else -}}
{{- $_ := set $c "_resolvedKeys" (randAlphaNum 48) -}}
{{- end -}}
{{- end -}}
{{- $c._resolvedKeys -}}
{{- end -}}
{{- end -}}

{{/* The Secrets a server pod mounts (TLS, peer TLS, tokens), read-only
and whole (no subPath), so a renewed certificate reaches the running
process, which re-reads it. */}}
{{- define "sessiongrid.server.secretMounts" -}}
{{- if .Values.tls.enabled }}
- name: tls
  mountPath: /etc/sessiongrid/tls
  readOnly: true
{{- end }}
{{- if .Values.peerTls.enabled }}
- name: peer-tls
  mountPath: /etc/sessiongrid/peer-tls
  readOnly: true
{{- end }}
{{- if .Values.auth.adminTokenSecret }}
- name: admin-token
  mountPath: /etc/sessiongrid/admin-token
  readOnly: true
{{- end }}
{{- if .Values.auth.peerTokenSecret }}
- name: peer-token
  mountPath: /etc/sessiongrid/peer-token
  readOnly: true
{{- end }}
{{- end -}}

{{- define "sessiongrid.server.secretVolumes" -}}
{{- if .Values.tls.enabled }}
- name: tls
  secret:
    secretName: {{ .Values.tls.existingSecret }}
    defaultMode: 288 # 0440: the owner and the fsGroup
{{- end }}
{{- if .Values.peerTls.enabled }}
- name: peer-tls
  secret:
    secretName: {{ .Values.peerTls.existingSecret }}
    defaultMode: 288 # 0440: the owner and the fsGroup
{{- end }}
{{- if .Values.auth.adminTokenSecret }}
- name: admin-token
  secret:
    secretName: {{ .Values.auth.adminTokenSecret }}
    defaultMode: 288 # 0440: the owner and the fsGroup
{{- end }}
{{- if .Values.auth.peerTokenSecret }}
- name: peer-token
  secret:
    secretName: {{ .Values.auth.peerTokenSecret }}
    defaultMode: 288 # 0440: the owner and the fsGroup
{{- end }}
{{- end -}}

{{/* The flags a client of the session service (edge, helm test) needs to
reach it over TLS; PREFIX is the flags' prefix ("session-service-tls-" for
the edge, "tls-" for sessiongridctl). */}}
{{- define "sessiongrid.clientTlsArgs" -}}
{{- $v := .ctx.Values -}}
{{- if $v.tls.enabled }}
- --{{ .prefix }}ca=/etc/sessiongrid/tls/ca.crt
{{- if $v.tls.clientAuth }}
- --{{ .prefix }}cert=/etc/sessiongrid/tls/tls.crt
- --{{ .prefix }}key=/etc/sessiongrid/tls/tls.key
{{- end }}
{{- end }}
{{- end -}}
