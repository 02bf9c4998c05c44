"""Tests for k8s_manifests: schema validation offline, kubectl's own skeletons, selectors that connect."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

K8S_VERSION = "1.30"
IMAGE = "katas/web:1"
KUBECTL_HINT = "kubectl is not installed: apt-get install kubernetes-client | brew install kubectl"

Manifests = dict[str, dict[str, Any]]


@pytest.fixture
def manifests(kata_file: Callable[[str], Path]) -> Manifests:
    """The learner's documents by kind; exactly one Deployment and one Service."""
    docs = [d for d in yaml.safe_load_all(kata_file("manifests.yaml").read_text()) if d]
    kinds = sorted(str(d.get("kind")) for d in docs)
    assert kinds == ["Deployment", "Service"], f"manifests.yaml holds {kinds}: one Deployment, one Service"
    return {d["kind"]: d for d in docs}


def kubectl(*args: str) -> dict[str, Any]:
    """Run kubectl offline (client-side dry run) and parse its JSON output."""
    if shutil.which("kubectl") is None:
        pytest.skip(KUBECTL_HINT)
    done = subprocess.run(["kubectl", *args, "--dry-run=client", "-o", "json"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"kubectl {' '.join(args)} failed: {done.stderr.strip()}"
    return dict(json.loads(done.stdout))


def template_of(deployment: dict[str, Any]) -> dict[str, Any]:
    return dict(deployment.get("spec", {}).get("template") or {})


def container(deployment: dict[str, Any], name: str = "web") -> dict[str, Any]:
    containers = template_of(deployment).get("spec", {}).get("containers") or []
    found = [c for c in containers if c.get("name") == name]
    assert found, f"the pod template has no container named {name!r}: {[c.get('name') for c in containers]}"
    return dict(found[0])


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector's meaning (matchLabels AND every matchExpression); empty selects nothing here."""
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return False  # the API server refuses an empty selector on a Deployment
    if not match_labels.items() <= labels.items():
        return False
    for expr in expressions:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        ok = {"In": key in labels and labels[key] in values,
              "NotIn": key not in labels or labels[key] not in values,
              "Exists": key in labels, "DoesNotExist": key not in labels}.get(str(op), False)
        if not ok:
            return False
    return True


# the API server's rule for a port's name (IANA_SVC_NAME), which the schema does not carry
PORT_NAME = re.compile(r"^(?=.*[a-z])(?!.*--)[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")


# a resource quantity as the API server parses it: 128Mi, 0.5Gi, 100M, 1e9, 500m
QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
                      r"(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$")
SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60, "n": Decimal("1e-9"),
            "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": 1, "k": 10**3, "M": 10**6, "G": 10**9,
            "T": 10**12, "P": 10**15, "E": 10**18}


def quantity(value: object, where: str) -> Decimal:
    found = QUANTITY.match(str(value))
    assert found, (f"{where} is {value!r}, which the API server refuses: a quantity is a number with "
                   "an optional suffix, Mi/Gi (powers of 2) or M/G (powers of 10); `MB` is not one")
    number, suffix = found.group(1), found.group(2) or ""
    if suffix[:1] in ("e", "E") and suffix not in SUFFIXES:
        return Decimal(number + suffix)
    return Decimal(number) * Decimal(SUFFIXES[suffix])


def short(exc: Exception) -> str:
    """jsonschema's message and where it points, without the schema dump."""
    text = str(exc)
    where = re.search(r"On instance(\[.*?\])*", text)
    return f"{text.split(chr(10) + chr(10))[0]} (at {where.group(0)[3:] if where else '?'})"


@pytest.mark.stage(1, "valid objects")
def test_manifests_are_valid_kubernetes_objects(manifests: Manifests) -> None:
    for kind, doc in manifests.items():
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{kind} is not valid for Kubernetes {K8S_VERSION}: {short(exc)}", pytrace=False)
    assert manifests["Deployment"].get("spec", {}).get("template"), "the Deployment has no pod template"
    if os.environ.get("KUBECONFIG") and shutil.which("kubectl"):
        # a cluster is configured: let its API server judge too (admission, defaults), changing nothing
        for kind, doc in manifests.items():
            done = subprocess.run(["kubectl", "apply", "--dry-run=server", "-f", "-"], input=json.dumps(doc),
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, f"the cluster's API server rejects the {kind}: {done.stderr.strip()}"


@pytest.mark.stage(1, "valid objects")
def test_they_agree_with_what_kubectl_generates(manifests: Manifests) -> None:
    deployment, service = manifests["Deployment"], manifests["Service"]
    ref = kubectl("create", "deployment", "web", f"--image={IMAGE}", "--replicas=3", "--port=8000")
    for key in ("apiVersion", "kind"):
        assert deployment.get(key) == ref[key], (
            f"Deployment {key} is {deployment.get(key)!r}, kubectl says {ref[key]!r}")
    assert deployment["metadata"].get("name") == "web", "the Deployment is named web"
    assert deployment["spec"].get("replicas") == ref["spec"]["replicas"], (
        f"replicas is {deployment['spec'].get('replicas')!r}, expected 3")
    web = container(deployment)
    assert web.get("image") == IMAGE, f"container web runs {web.get('image')!r}, expected {IMAGE}"
    ports = [p.get("containerPort") for p in web.get("ports") or []]
    assert ports == [8000], f"container web declares ports {ports}, expected [8000] as kubectl does"
    ref_svc = kubectl("create", "service", "clusterip", "web", "--tcp=80:8000")
    assert (service.get("apiVersion"), service["metadata"].get("name")) == (ref_svc["apiVersion"], "web"), (
        f"the Service is {service.get('apiVersion')} {service['metadata'].get('name')!r}, expected v1 'web'")
    assert service.get("spec", {}).get("type", "ClusterIP") == "ClusterIP", "a ClusterIP Service (the default)"
    svc_ports = [p.get("port") for p in service.get("spec", {}).get("ports") or []]
    assert svc_ports == [80], f"the Service listens on {svc_ports}, expected [80]"


@pytest.mark.stage(2, "selectors and ports")
def test_selectors_connect_service_deployment_and_pods(manifests: Manifests) -> None:
    deployment, service = manifests["Deployment"], manifests["Service"]
    pod_labels = template_of(deployment).get("metadata", {}).get("labels") or {}
    selector = deployment.get("spec", {}).get("selector") or {}
    assert selector.get("matchLabels") or selector.get("matchExpressions"), (
        f"the Deployment's selector {selector} has neither matchLabels nor matchExpressions: a "
        "Deployment's selector is a LabelSelector (selector: {matchLabels: {app: web}}), unlike "
        "a Service's plain map")
    assert selects(selector, pod_labels), (
        f"the Deployment's selector {selector} does not match its pod template's labels {pod_labels}: "
        "the API server rejects it (`selector` does not match template `labels`)")
    svc_selector = service.get("spec", {}).get("selector") or {}
    assert svc_selector and svc_selector.items() <= pod_labels.items(), (
        f"the Service's selector {svc_selector} does not select the pods (labels {pod_labels}): "
        "it would have no endpoints")
    ports = container(deployment).get("ports") or []
    by_name = {p.get("name"): p.get("containerPort") for p in ports if p.get("name")}
    numbers = {p.get("containerPort") for p in ports}
    for name in by_name:
        assert PORT_NAME.match(str(name)), (
            f"the container's port name {name!r} is refused by the API server: at most 15 lower-case "
            "letters, digits and '-' (IANA_SVC_NAME), at least one letter, no '-' at either end")
    for port in service["spec"].get("ports") or []:
        assert port.get("protocol", "TCP") == "TCP", f"the Service's port {port} is not TCP: HTTP is"
        target = port.get("targetPort", port.get("port"))
        resolved = by_name.get(target) if isinstance(target, str) else target
        assert resolved in numbers, (
            f"the Service sends port {port.get('port')} to targetPort {target!r}, but the container "
            f"listens on {sorted(numbers)} (named {sorted(by_name)}): targetPort is the pod's port")


@pytest.mark.stage(3, "rollout and resources")
def test_rollout_probe_and_user(manifests: Manifests) -> None:
    deployment = manifests["Deployment"]
    strategy = deployment.get("spec", {}).get("strategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    assert strategy.get("type", "RollingUpdate") == "RollingUpdate" and rolling.get("maxUnavailable") in (0, "0%"), (
        f"strategy {strategy}: a rolling update with maxUnavailable 0 (and maxSurge 1) never has a "
        "replica unavailable, like the reconcile loop")
    assert rolling.get("maxSurge", "25%") not in (0, "0%"), (
        f"strategy {strategy}: maxSurge 0 with maxUnavailable 0 is refused by the API server: no "
        "rollout could make progress. maxSurge: 1 starts one new pod before an old one goes")
    web = container(deployment)
    probe = (web.get("readinessProbe") or {}).get("httpGet") or {}
    ports = {p.get("name") for p in web.get("ports") or []} | {p.get("containerPort") for p in web.get("ports") or []}
    assert probe.get("path") == "/health" and probe.get("port") in ports - {None}, (
        f"readinessProbe.httpGet is {probe}: GET /health on the container's port, so a pod gets "
        "traffic only once it answers (Kubernetes ignores the image's HEALTHCHECK)")
    security = {**(template_of(deployment).get("spec", {}).get("securityContext") or {}),
                **(web.get("securityContext") or {})}
    assert security.get("runAsNonRoot") is True, (
        f"securityContext {security}: runAsNonRoot: true makes the kubelet refuse to run it as root")
    assert security.get("runAsUser") != 0, (
        f"securityContext {security}: runAsUser 0 is root, and with runAsNonRoot the kubelet refuses "
        "to start the container (CreateContainerConfigError): leave it out, the image's USER is "
        "10001, or give that uid")


@pytest.mark.stage(3, "rollout and resources")
def test_memory_is_requested_and_limited(manifests: Manifests) -> None:
    resources = container(manifests["Deployment"]).get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    assert "memory" in requests and "memory" in limits, (
        f"container web's resources are {resources}: a memory request (what the scheduler reserves "
        "on a node) and a memory limit (past it the container is OOM-killed, not the node)")
    request = quantity(requests["memory"], "resources.requests.memory")
    limit = quantity(limits["memory"], "resources.limits.memory")
    assert 0 < request <= limit, (
        f"memory request {requests['memory']} and limit {limits['memory']}: the API server refuses a "
        "request above its limit (and a zero request reserves nothing)")
