{{/*
The controller's Deployment, for the main controller and for each shard
(controller.shards). Called with a dict:
  root:     the chart's context
  name:     the Deployment's name
  selector: the pod labels its selector (and spread constraint) matches;
            a shard's never overlap the main controller's
  replicas, resources, extraArgs: the effective values
  shardArgs: the sharding flags, before extraArgs
*/}}
{{- define "herald.controllerDeployment" -}}
{{- $root := .root -}}
{{- $c := $root.Values.controller -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "herald.labels" $root | nindent 4 }}
    {{- toYaml (omit .selector "app.kubernetes.io/name") | nindent 4 }}
spec:
  replicas: {{ .replicas }}
  selector:
    matchLabels:
      {{- toYaml .selector | nindent 6 }}
  strategy:
    rollingUpdate:
      maxUnavailable: 1
      maxSurge: 1
  template:
    metadata:
      labels:
        {{- include "herald.labels" $root | nindent 8 }}
        {{- toYaml (omit .selector "app.kubernetes.io/name") | nindent 8 }}
      annotations:
        kubectl.kubernetes.io/default-container: controller
    spec:
      serviceAccountName: herald-controller
      securityContext:
        {{- include "herald.podSecurityContext" $root | nindent 8 }}
      terminationGracePeriodSeconds: 30
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: ScheduleAnyway
        labelSelector:
          matchLabels:
            {{- toYaml .selector | nindent 12 }}
      {{- with $c.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
      - name: controller
        image: {{ include "herald.image" $root }}
        imagePullPolicy: {{ $root.Values.image.pullPolicy }}
        args:
        - controller
        {{- if $c.leaderElect }}
        - --leader-elect
        {{- end }}
        - --metrics-bind-address=:8080
        - --health-probe-bind-address=:8081
        - --zap-encoder=json
        {{- with $c.egressAllow }}
        - --egress-allow={{ join "," . }}
        {{- end }}
        {{- with $c.egressServiceCIDRs }}
        - --egress-service-cidr={{ join "," . }}
        {{- end }}
        {{- range .shardArgs }}
        - {{ . | quote }}
        {{- end }}
        {{- range .extraArgs }}
        - {{ . | quote }}
        {{- end }}
        ports:
        - name: http-metrics
          containerPort: 8080
        - name: health
          containerPort: 8081
        livenessProbe:
          httpGet:
            path: /healthz
            port: health
          initialDelaySeconds: 5
          periodSeconds: 10
        readinessProbe:
          httpGet:
            path: /readyz
            port: health
          periodSeconds: 5
        resources:
          {{- toYaml .resources | nindent 10 }}
        securityContext:
          {{- include "herald.containerSecurityContext" $root | nindent 10 }}
{{- end -}}

{{/*
The metrics Service of one controller Deployment. Its own labels are the
main controller's, whatever pods it selects, so that the ServiceMonitor
(which selects Services by app.kubernetes.io/component=controller) scrapes
every shard too.
*/}}
{{- define "herald.controllerMetricsService" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ .name }}-metrics
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "herald.labels" .root | nindent 4 }}
    app.kubernetes.io/component: controller
spec:
  selector:
    {{- toYaml .selector | nindent 4 }}
  ports:
  - name: http-metrics
    port: 8080
    targetPort: http-metrics
{{- end -}}

{{- define "herald.controllerPDB" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "herald.labels" .root | nindent 4 }}
    {{- toYaml (omit .selector "app.kubernetes.io/name") | nindent 4 }}
spec:
  minAvailable: 1
  selector:
    matchLabels:
      {{- toYaml .selector | nindent 6 }}
{{- end -}}

{{/*
controller.shards, checked: a list of {name, replicas, resources,
extraArgs} objects with distinct names that can name objects (a lower-case
DNS label short enough for herald-controller-<name>-metrics) and so are
also valid values of sharding.herald.dev/key. Renders nothing; fails with
the reason.
*/}}
{{- define "herald.checkShards" -}}
{{- $seen := dict -}}
{{- range $i, $s := .Values.controller.shards -}}
{{- if not (kindIs "map" $s) -}}
{{- fail (printf "controller.shards[%d]: want an object such as {name: shard1}, got %v" $i $s) -}}
{{- end -}}
{{- $name := toString (default "" $s.name) -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $name) -}}
{{- fail (printf "controller.shards[%d].name %q: a shard name must be lower-case letters, digits and '-', starting and ending with a letter or digit (it names the shard's Deployment and is its sharding.herald.dev/key value)" $i $name) -}}
{{- end -}}
{{- if gt (len $name) 37 -}}
{{- fail (printf "controller.shards[%d].name %q: at most 37 characters (herald-controller-<name>-metrics must fit in 63)" $i $name) -}}
{{- end -}}
{{- if hasKey $seen $name -}}
{{- fail (printf "controller.shards[%d].name %q: named twice in controller.shards" $i $name) -}}
{{- end -}}
{{- $_ := set $seen $name true -}}
{{- end -}}
{{- end -}}
