"""Checks of the Helm chart leoflow-pro/deploy/helm/leoflow: `helm lint --strict` and
`helm template` with every values file in the chart's ci/ directory, then assertions on the
rendered manifests (secrets only by reference, probes/resources/security on every
container, least-privilege RBAC, replicas honoured) and on the schema rejecting bad values.

Needs a helm binary: $LEOFLOW_HELM, else `helm` on PATH (.ci/run fetches a checksum-pinned
one into target/tools).
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "leoflow-pro" / "deploy" / "helm" / "leoflow"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
BAD_VALUES = sorted((Path(__file__).parent / "bad-values").glob("*.yaml"))

# The server variables that carry secrets: they must only ever come from a secretKeyRef.
SECRET_VARS = {
    "LEOFLOW_DATABASE_URL",
    "LEOFLOW_REDIS_URL",
    "LEOFLOW_AUTH_JWT_SECRET",
    "LEOFLOW_SECRET_KEY",
    "LEOFLOW_BOOTSTRAP_PASSWORD",
    "LEOFLOW_BOOTSTRAP_PASSWORD_HASH",
}
# The Kubernetes executor's needs (leoflow-pro/CONFIG.md "Kubernetes permissions"), nothing
# more: no list/watch on Secrets, nothing outside the task namespace.
ALLOWED_RULES = {
    "pods": {"create", "get", "list", "watch", "delete"},
    "pods/log": {"get"},
    "secrets": {"create", "get", "delete"},
}


def helm():
    path = os.environ.get("LEOFLOW_HELM") or shutil.which("helm")
    if not path:
        pytest.fail("no helm binary: set LEOFLOW_HELM or run .ci/run, which fetches a pinned one")
    return path


def run_helm(*args):
    return subprocess.run([helm(), *args], capture_output=True, text=True, check=False)


def render(values_file=None, *sets):
    args = ["template", "rel", str(CHART), "--namespace", "platform"]
    if values_file:
        args += ["-f", str(values_file)]
    for s in sets:
        args += ["--set", s]
    out = run_helm(*args)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def one(docs, kind):
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def values(path):
    return yaml.safe_load(Path(path).read_text())


def pod_specs(docs):
    """(name, pod spec) of every workload the chart renders."""
    for d in docs:
        if d["kind"] in ("Deployment", "Job"):
            yield d["metadata"]["name"], d["spec"]["template"]["spec"]


def containers(spec):
    return spec.get("initContainers", []) + spec["containers"]


@pytest.fixture(scope="module", params=CI_VALUES, ids=lambda p: p.name)
def ci_values(request):
    return request.param


def test_there_are_ci_values_and_bad_values():
    assert len(CI_VALUES) >= 3, CI_VALUES
    assert len(BAD_VALUES) >= 5, BAD_VALUES


def test_lint_is_clean_and_strict(ci_values):
    for extra in ([], ["--strict"]):
        out = run_helm("lint", str(CHART), "-f", str(ci_values), *extra)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "0 chart(s) failed" in out.stdout


def test_replicas_are_honoured(ci_values):
    docs = render(ci_values)
    expected = values(ci_values).get("replicaCount", values(CHART / "values.yaml")["replicaCount"])
    assert one(docs, "Deployment")["spec"]["replicas"] == expected
    docs = render(ci_values, "replicaCount=5")
    assert one(docs, "Deployment")["spec"]["replicas"] == 5


def test_secrets_only_by_reference(ci_values):
    docs = render(ci_values)
    for name, spec in pod_specs(docs):
        for c in containers(spec):
            for env in c.get("env", []):
                if env["name"] in SECRET_VARS:
                    assert "value" not in env, f"{name}/{c['name']}: {env['name']} in plain text"
                    assert env["valueFrom"]["secretKeyRef"]["name"], env
    config = one(docs, "ConfigMap")["data"]
    leaked = [k for k in config if k in SECRET_VARS or re.search("(PASSWORD|PASSWORD_HASH|_TOKEN|_SECRET|_KEY)$", k)]
    assert not leaked, leaked
    # The only Secret the chart may create is the opt-in generated one.
    for secret in by_kind(docs, "Secret"):
        assert values(ci_values)["secrets"].get("generate") is True
        assert secret["metadata"]["name"] == "rel-leoflow-generated"
        assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert set(secret["data"]) <= {"jwt-secret", "encryption-key"}


def test_default_values_hold_no_secret_values():
    text = (CHART / "values.yaml").read_text()
    data = yaml.safe_load(text)

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{path}.{k}")
        elif isinstance(node, str) and re.search(r"(password|secret|token|dsn)$", path, re.I):
            assert node == "", f"{path} has a value in values.yaml"

    walk(data, "")
    assert not re.search(r"postgres(ql)?://\w+:(?!\.\.\.@)[^@\s]+@", text)
    assert not re.search(r"redis://:(?!\.\.\.@)[^@\s]+@", text)


def test_every_container_is_probed_bounded_and_locked_down(ci_values):
    docs = render(ci_values)
    workloads = list(pod_specs(docs))
    assert {n for n, _ in workloads} >= {"rel-leoflow"}
    for name, spec in workloads:
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True, name
        assert psc["runAsUser"] != 0, name
        assert psc["seccompProfile"]["type"] == "RuntimeDefault", name
        for c in containers(spec):
            where = f"{name}/{c['name']}"
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert not sc["capabilities"].get("add"), where
            for bound in ("requests", "limits"):
                assert c["resources"][bound]["cpu"], where
                assert c["resources"][bound]["memory"], where
            assert ":" in c["image"] or "@" in c["image"], where
    server = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert server["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert server["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert server["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert server["livenessProbe"]["httpGet"]["port"] == "http"


def test_rolling_update_never_drops_below_the_desired_count(ci_values):
    deploy = one(render(ci_values), "Deployment")
    strategy = deploy["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    annotations = deploy["spec"]["template"]["metadata"]["annotations"]
    assert re.fullmatch(r"[0-9a-f]{64}", annotations["checksum/config"])


def test_rbac_is_limited_to_the_task_namespace(ci_values):
    docs = render(ci_values)
    assert not by_kind(docs, "ClusterRole") and not by_kind(docs, "ClusterRoleBinding")
    namespace = (values(ci_values).get("executor") or {}).get("namespace", "leoflow")
    role = one(docs, "Role")
    assert role["metadata"]["namespace"] == namespace
    for rule in role["rules"]:
        assert rule["apiGroups"] == [""], rule
        for resource in rule["resources"]:
            assert resource in ALLOWED_RULES, rule
            assert set(rule["verbs"]) <= ALLOWED_RULES[resource], rule
    binding = one(docs, "RoleBinding")
    assert binding["metadata"]["namespace"] == namespace
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    sa = one(docs, "ServiceAccount")["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": "platform"}]
    deploy = one(docs, "Deployment")
    assert deploy["spec"]["template"]["spec"]["serviceAccountName"] == sa


def test_the_migration_job_runs_before_install_and_upgrade(ci_values):
    job = one(render(ci_values), "Job")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False
    (c,) = spec["containers"]
    assert c["args"] == ["migrate"]
    docs = render(ci_values)
    deploy = one(docs, "Deployment")
    assert c["image"] == deploy["spec"]["template"]["spec"]["containers"][0]["image"]
    # The Service and the PDB select the server pods only, never the migration pod.
    job_labels = job["spec"]["template"]["metadata"]["labels"].items()
    server_labels = deploy["spec"]["template"]["metadata"]["labels"].items()
    for selector in (one(docs, "Service")["spec"]["selector"], one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"]):
        assert selector.items() <= server_labels
        assert not selector.items() <= job_labels
    assert [e["name"] for e in c["env"]][-1] == "LEOFLOW_DATABASE_URL"


def test_minimal_install():
    docs = render(CHART / "ci" / "minimal-values.yaml")
    assert not by_kind(docs, "Ingress")
    assert not by_kind(docs, "NetworkPolicy")
    assert not by_kind(docs, "ServiceMonitor")
    assert not by_kind(docs, "Namespace")
    secret = one(docs, "Secret")
    assert secret["metadata"]["annotations"]["helm.sh/hook-weight"] == "-5"
    env = {e["name"]: e for e in one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["LEOFLOW_AUTH_JWT_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == "rel-leoflow-generated"
    assert env["LEOFLOW_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "leoflow-db", "key": "database-url"}
    assert "LEOFLOW_BOOTSTRAP_PASSWORD" not in env
    config = one(docs, "ConfigMap")["data"]
    assert config["LEOFLOW_EXECUTOR_AGENT_CONTROL_PLANE_ADDR"] == "http://rel-leoflow.platform.svc.cluster.local:8080"
    assert config["LEOFLOW_DATABASE_MIGRATE_ON_START"] == "false"
    assert config["LEOFLOW_EXECUTOR_AGENT_IMAGE"] == "ghcr.io/leoflow/leoflow-agent:0.1.0"
    affinity = one(docs, "Deployment")["spec"]["template"]["spec"]["affinity"]
    assert affinity["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]


def test_ha_with_ingress():
    docs = render(CHART / "ci" / "ha-ingress-values.yaml")
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert pod["containers"][0]["image"].startswith("registry.example.com/leoflow/leoflow-server@sha256:")
    ingress = one(docs, "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"][0]["secretName"] == "leoflow-tls"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "rel-leoflow", "port": {"name": "http"}}
    assert one(docs, "PodDisruptionBudget")["spec"] == {
        "minAvailable": 2,
        "selector": one(docs, "Deployment")["spec"]["selector"],
    }
    monitor = one(docs, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0] == {
        "port": "metrics",
        "path": "/metrics",
        "interval": "30s",
        "scrapeTimeout": "10s",
    }
    service_ports = {p["name"]: p["port"] for p in one(docs, "Service")["spec"]["ports"]}
    assert service_ports == {"http": 8080, "metrics": 9090}
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    service_labels = one(docs, "Service")["metadata"]["labels"].items()
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service_labels
    assert one(docs, "Namespace")["metadata"]["name"] == "leoflow-tasks"
    assert not by_kind(docs, "Secret")
    env = {e["name"] for e in pod["containers"][0]["env"]}
    assert "LEOFLOW_BOOTSTRAP_PASSWORD" in env
    config = one(docs, "ConfigMap")["data"]
    assert config["LEOFLOW_EXECUTOR_KEEP_FAILED_PODS"] == "true"
    assert config["LEOFLOW_EXECUTOR_SERVICE_ACCOUNT"] == "dag-runner"
    assert config["LEOFLOW_EXECUTOR_KUBERNETES_NAMESPACE"] == "leoflow-tasks"
    assert config["LEOFLOW_SCHEDULER_MAX_ACTIVE_TASKS_PER_RUN"] == "32"


def test_network_policy():
    docs = render(CHART / "ci" / "networkpolicy-values.yaml")
    policy = one(docs, "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    agents, users = policy["ingress"]
    assert agents["ports"] == [{"port": "http", "protocol": "TCP"}]
    (tasks,) = agents["from"]
    assert tasks["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "leoflow"}
    assert tasks["podSelector"]["matchLabels"] == {"app.kubernetes.io/managed-by": "leoflow"}
    assert [p["port"] for p in users["ports"]] == ["http", "metrics"]
    assert users["from"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "ingress-nginx"}
    ports = [p["port"] for e in policy["egress"] for p in e.get("ports", [])]
    assert ports == [53, 53, 443, 5432, 6379]


@pytest.mark.parametrize("bad", BAD_VALUES, ids=lambda p: p.name)
def test_the_schema_rejects_bad_values(bad):
    good = CHART / "ci" / "minimal-values.yaml"
    out = run_helm("lint", str(CHART), "-f", str(good), "-f", str(bad))
    assert out.returncode != 0, f"helm lint accepted {bad.name}:\n{out.stdout}"
    assert "schema" in (out.stdout + out.stderr).lower(), out.stdout + out.stderr
    out = run_helm("template", "rel", str(CHART), "-f", str(good), "-f", str(bad))
    assert out.returncode != 0, f"helm template accepted {bad.name}"


@pytest.mark.parametrize(
    "sets, message",
    [
        ([], "secrets.database.existingSecret is required"),
        (["secrets.database.existingSecret=db"], "secrets.redis.existingSecret is required"),
        (
            ["secrets.database.existingSecret=db", "secrets.redis.existingSecret=r"],
            "secrets.jwt.existingSecret is required",
        ),
        (
            ["secrets.database.existingSecret=db", "serviceAccount.create=false", "secrets.redis.existingSecret=r",
             "secrets.generate=true"],
            "serviceAccount.name is required",
        ),
    ],
)
def test_missing_references_fail_with_the_value_to_set(sets, message):
    args = ["template", "rel", str(CHART)]
    for s in sets:
        args += ["--set", s]
    out = run_helm(*args)
    assert out.returncode != 0
    assert message in out.stderr, out.stderr


def test_generated_secret_keeps_existing_references():
    docs = render(
        None,
        "secrets.database.existingSecret=db",
        "secrets.redis.existingSecret=r",
        "secrets.jwt.existingSecret=mine",
        "secrets.generate=true",
    )
    secret = one(docs, "Secret")
    assert set(secret["data"]) == {"encryption-key"}
    env = {e["name"]: e for e in one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["LEOFLOW_AUTH_JWT_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == "mine"
    assert env["LEOFLOW_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "rel-leoflow-generated"


def test_agent_settings_match_the_kubernetes_executor():
    """The chart's agent path is the executor's default, and the image's agent stage puts
    the binary there."""
    config_rs = (ROOT / "leoflow-adapters" / "kubernetes" / "src" / "config.rs").read_text()
    default = re.search(r'agent_path_in_image: "([^"]+)"\.into\(\)', config_rs).group(1)
    chart = values(CHART / "values.yaml")["executor"]["agentImage"]["path"]
    assert chart == default
    dockerfile = (ROOT / "leoflow-pro" / "Dockerfile").read_text()
    agent_stage = dockerfile.split("AS agent", 1)[1].split("\nFROM ", 1)[0]
    assert re.search(rf"COPY .*leoflow-agent {re.escape(default)}\n", agent_stage), agent_stage


def test_every_variable_the_chart_sets_is_one_the_server_reads(ci_values):
    """leoflow-pro/CONFIG.md is the server's configuration contract (its VARS table); a
    variable the chart sets that the server does not know would be silently ignored."""
    contract = ROOT / "leoflow-pro" / "CONFIG.md"
    if not contract.is_file():
        pytest.skip("leoflow-pro/CONFIG.md (written with the server) is not in this tree yet")
    known = set(re.findall(r"`(LEOFLOW_[A-Z0-9_]+)`", contract.read_text()))
    docs = render(ci_values)
    chart_set = set(one(docs, "ConfigMap")["data"])
    for _, spec in pod_specs(docs):
        for c in containers(spec):
            chart_set |= {e["name"] for e in c.get("env", [])}
    extra = set((values(ci_values).get("server") or {}).get("extraEnv") or {})
    unknown = sorted(chart_set - known - extra)
    assert not unknown, f"not in leoflow-pro/CONFIG.md: {unknown}"
    dockerfile_env = set(re.findall(r"\b(LEOFLOW_[A-Z0-9_]+)=", (ROOT / "leoflow-pro" / "Dockerfile").read_text()))
    assert dockerfile_env <= known, sorted(dockerfile_env - known)
