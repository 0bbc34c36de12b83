"""The shape of the code (docs/architecture.md): which app may import which, and what the web process loads.

The import graph is built from the source, imports inside functions included, so that a circle or
an upward import cannot hide behind a function-level import.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Every first-party package, lowest layer first. An app may import the ones before it, never after.
LAYERS = ["inference", "siteconfig", "accounts", "audit", "cameras", "events", "arming", "alerts", "recordings", "runtime",
          "surveillance"]
#: The web side: these never import the runtime (they reach it through task names and Redis).
WEB_APPS = {"siteconfig", "accounts", "audit", "cameras", "events", "arming", "alerts", "recordings", "surveillance"}
#: What the inference library may import beyond the standard library and numeric/model packages.
FORBIDDEN_IN_LIBRARY = {"django", "channels", "celery", "rest_framework", "guardian", "redis", *LAYERS[1:]}


def _modules() -> dict[str, Path]:
    out = {}
    for app in LAYERS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def _imports(module: str, path: Path) -> list[tuple[str, int]]:
    """(imported module or name, line) for every import statement, at any depth of the file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.append((base, node.lineno))
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return found


def import_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module -> first-party modules it imports, module -> every top-level package it imports)."""
    modules = _modules()
    edges: dict[str, set[str]] = defaultdict(set)
    tops: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        for name, _line in _imports(module, path):
            tops[module].add(name.split(".")[0])
            target = name
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != module:
                edges[module].add(target)
    return edges, tops


def app_of(module: str) -> str:
    return module.split(".")[0]


def strongly_connected(edges: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iteratively: the groups of modules that import each other, directly or not."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []
    counter = 0
    nodes = set(edges) | {t for targets in edges.values() for t in targets}
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(group)
    return groups


def test_the_graph_sees_function_level_imports():
    edges, _tops = import_graph()
    # runtime/signals.py imports runtime.process inside its Celery hook only.
    assert "runtime.process" in edges["runtime.signals"]


def test_apps_import_only_the_layers_below_them():
    edges, _tops = import_graph()
    upward = sorted(
        f"{module} -> {target}" for module, targets in edges.items() for target in targets
        if app_of(module) != app_of(target) and LAYERS.index(app_of(target)) > LAYERS.index(app_of(module))
    )
    assert upward == [], "imports against the layers (docs/architecture.md):\n" + "\n".join(upward)


def test_no_two_apps_import_each_other():
    edges, _tops = import_graph()
    pairs = {(app_of(m), app_of(t)) for m, targets in edges.items() for t in targets if app_of(m) != app_of(t)}
    assert sorted((a, b) for a, b in pairs if (b, a) in pairs) == []


def test_no_circle_of_imports_spans_two_apps():
    edges, _tops = import_graph()
    spanning = [sorted(group) for group in strongly_connected(edges) if len({app_of(m) for m in group}) > 1]
    assert spanning == []


def test_the_inference_library_imports_no_django_app_or_framework():
    _edges, tops = import_graph()
    found = sorted(f"{module} imports {top}" for module, names in tops.items() if app_of(module) == "inference"
                   for top in names & FORBIDDEN_IN_LIBRARY)
    assert found == []


def test_web_apps_never_import_the_runtime():
    edges, _tops = import_graph()
    found = sorted(f"{m} -> {t}" for m, targets in edges.items() for t in targets
                   if app_of(m) in WEB_APPS and app_of(t) == "runtime")
    assert found == []


def test_the_cycle_finder_finds_cycles():
    groups = strongly_connected({"a.x": {"b.y"}, "b.y": {"c.z"}, "c.z": {"a.x"}, "d.w": {"a.x"}})
    assert groups == [{"a.x", "b.y", "c.z"}]


WEB_START = """
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "surveillance.settings_test"
import django
django.setup()
from surveillance.asgi import application  # the ASGI app daphne serves: HTTP and WebSocket routing
from django.urls import get_resolver
get_resolver().reverse_dict  # imports every view, API view and serializer of every URL
from django.contrib import admin
admin.site.get_urls()
from celery import current_app
current_app.tasks.keys()  # the Celery app as the web process queues tasks with it
loaded = sorted(m for m in ("cv2", "torch", "transformers") if m in sys.modules)
runtime = sorted(m for m in sys.modules if m == "runtime" or m.startswith("runtime."))
print("HEAVY", ",".join(loaded))
print("RUNTIME", ",".join(r for r in runtime if r not in ("runtime", "runtime.apps", "runtime.signals")))
"""


def test_the_web_process_starts_without_opencv_torch_or_the_runtime():
    result = subprocess.run([sys.executable, "-c", WEB_START], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" ", 1) if " " in line else (line, "") for line in result.stdout.splitlines())
    assert lines["HEAVY"] == "", f"the web process imported {lines['HEAVY']}"
    assert lines["RUNTIME"] == "", f"the web process imported {lines['RUNTIME']}"


def test_the_runtime_task_names_are_the_ones_the_web_side_sends():
    from celery import current_app

    from cameras import dispatch
    from runtime import tasks

    assert tasks.camera_run.name == dispatch.CAMERA_RUN
    assert tasks.detector_learn.name == dispatch.DETECTOR_LEARN
    router = current_app.amqp.router
    for name in (dispatch.CAMERA_RUN, dispatch.DETECTOR_LEARN):
        assert router.route({}, name)["queue"].name == "inference"


def test_cross_app_side_effects_run_on_the_default_queue():
    from celery import current_app

    from alerts.tasks import alerts_route
    from events.tasks import events_false_alarm_learn

    for task in (alerts_route, events_false_alarm_learn):
        assert current_app.amqp.router.route({}, task.name)["queue"].name == "default"


def test_event_severities_are_the_agents_threat_levels():
    from events.models import AnomalyEvent
    from events.severity import SEVERITIES
    from inference.base import THREAT_LEVELS

    assert SEVERITIES == THREAT_LEVELS == tuple(AnomalyEvent.Severity.values)
