// values.schema.json (checked by Helm itself) and the chart's own cross-value
// checks reject bad values with a message naming the value; good ones pass.
import { helmTemplate, tally } from "./lib.mjs";

const t = tally("deploy.schema");

// [--set arguments, text Helm's error must contain]
const bad = [
  [["--set", "server.replicas=two"], "server.replicas: Invalid type. Expected: integer"],
  [["--set", "server.replicas=0"], "server.replicas: Must be greater than or equal to 1"],
  [["--set", "server.port=70000"], "server.port: Must be less than or equal to 65535"],
  [["--set", "edge.adminPort=0"], "edge.adminPort: Must be greater than or equal to 1"],
  [["--set", "edge.failMode=maybe"], "edge.failMode must be one of the following"],
  [["--set", "edge.classifierMode=off"], "edge.classifierMode must be one of the following"],
  [["--set", "edge.cookie.sameSite=lenient"], "edge.cookie.sameSite must be one of the following"],
  [["--set", "server.podAntiAffinity=always"], "server.podAntiAffinity must be one of the following"],
  [["--set-string", "server.replication.hintWindow=3 hours"], "server.replication.hintWindow: Does not match pattern"],
  [["--set", "edge.sessionTimeout=fast"], "edge.sessionTimeout: Does not match pattern"],
  [["--set", "server.memoryLimit=lots"], "server.memoryLimit: Does not match pattern"],
  [["--set", "edge.upstream=ftp://app:21"], "edge.upstream: Does not match pattern"],
  [["--set", "edge.trustedProxies[0]=everyone"], "edge.trustedProxies.0: Does not match pattern"],
  [["--set", "edge.cookie.secrets[0]=short"], "edge.cookie.secrets.0: String length must be greater than or equal to 16"],
  [["--set", "server.persistence.size=ten-gigs"], "server.persistence.size: Does not match pattern"],
  [["--set", "server.drainTimeoutSeconds=20s"], "server.drainTimeoutSeconds: Invalid type. Expected: integer"],
  [["--set", "networkPolicy.enabled=yes please"], "networkPolicy.enabled: Invalid type. Expected: boolean"],
  [["--set", "server.typo=1"], "Additional property typo is not allowed"],
  [["--set", "edge.resources.limit.memory=1Gi"], "Additional property limit is not allowed"],
  [["--set", "server.resources.limits=null"], "limits"],
  [["--set", "metrics.prometheusRule.skipRatioWarning=90"], "metrics.prometheusRule.skipRatioWarning: Must be less than or equal to 1"],
  [["--set", "edge.cookie.existingSecret=Not_A_Name"], "edge.cookie.existingSecret: Does not match pattern"],
  // Cross-value checks in templates/_helpers.tpl.
  [["--set", "server.replication.writeQuorum=4"], "server.replication.writeQuorum (4) must not exceed server.replication.factor (3)"],
  [["--set", "server.replication.readQuorum=4"], "server.replication.readQuorum (4) must not exceed server.replication.factor (3)"],
  [["--set", "server.replicas=2"], "server.replicas (2) must be at least server.replication.factor (3)"],
  [["--set", "server.terminationGracePeriodSeconds=25"], "must exceed server.preStopSleepSeconds + server.drainTimeoutSeconds (25)"],
  [["--set", "edge.terminationGracePeriodSeconds=37"], "must exceed edge.preStopSleepSeconds + edge.drainDelaySeconds + edge.drainTimeoutSeconds (37)"],
  [["--set", "edge.cookie.sameSite=none"], "edge.cookie.sameSite=none needs a Secure cookie"],
  [["--set", "edge.cookie.sameSite=none", "--set", "edge.production=true", "--set", "edge.cookie.secure=false"], "edge.cookie.sameSite=none needs a Secure cookie"],
  [["--set", "edge.cookie.hostPrefix=true"], "edge.cookie.hostPrefix needs a Secure cookie"],
  [["--set", "edge.anonSessions.overLimit=drop"], "edge.anonSessions.overLimit must be one of the following"],
  [["--set", "edge.maxConnections=0"], "edge.maxConnections: Must be greater than or equal to 1"],
  [["--set", "edge.autoscaling.enabled=true", "--set", "edge.autoscaling.minReplicas=5", "--set", "edge.autoscaling.maxReplicas=3"], "minReplicas must not exceed"],
];
for (const [args, want] of bad) {
  const r = helmTemplate(args);
  t.check(!r.ok, `${args.join(" ")}: must be rejected, was accepted`);
  t.check(r.stderr.includes(want), `${args.join(" ")}: error should contain "${want}", got: ${r.stderr.trim().slice(0, 400)}`);
}

const good = [
  [],
  ["--set", "server.replicas=5"],
  ["--set", "server.terminationGracePeriodSeconds=26"],
  ["--set", "edge.cookie.sameSite=none", "--set", "edge.cookie.secure=true"],
  ["--set", "edge.cookie.sameSite=none", "--set", "edge.production=true"],
  ["--set", "edge.cookie.hostPrefix=true", "--set", "edge.production=true"],
  ["--set", "server.memoryLimit=1GiB"],
  ["--set", "server.replication.hintWindow=1h30m"],
  ["--set", "edge.trustedProxies[0]=10.0.0.0/8", "--set", "edge.trustedProxies[1]=fd00::/8"],
  ["--set", "server.pdb.minAvailable=3"],
];
for (const args of good) {
  const r = helmTemplate(args);
  t.check(r.ok, `${args.join(" ") || "(defaults)"}: must render, got: ${r.stderr.trim().slice(0, 400)}`);
}
t.done();
