"""The pinned stack: pyproject, the locks and the conda environments in step, and the light
environment shown to hold what the light rules import (they run with torch & co. absent)."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from test_workflow import job_counts  # tests/ is on sys.path (rootdir-less)

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

#: the rules of the light environment (envs/tracekd.yaml) and their scripts
LIGHT_RULES = (
    "raw_data", "decompose", "traces", "score", "score_reference", "confusion",
    "confusion_grid", "tables", "release_raw", "release_summary", "probe_scores", "probe_tables",
    "probe_figure",
)  # fmt: skip
#: what the light environment must do without (the model stack and what only it needs)
HEAVY = (
    "torch", "transformers", "trl", "peft", "accelerate", "tokenizers", "datasets",
    "safetensors", "vllm", "bitsandbytes", "liger_kernel", "flash_attn", "triton",
)  # fmt: skip


def _write_envs_module():
    spec = importlib.util.spec_from_file_location("write_envs", REQUIREMENTS / "write_envs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lock(name: str) -> dict[str, str]:
    """{canonical name: version} of a lock in requirements/."""
    pins = {}
    for line in _write_envs_module().lock_pins(REQUIREMENTS / name):
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", line
        pins[canonicalize_name(req.name)] = spec.version
    return pins


def requirements(*extras: str) -> list[Requirement]:
    reqs = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in extras:
        reqs += [Requirement(r) for r in PROJECT["optional-dependencies"][extra]]
    return reqs


def light_in() -> list[Requirement]:
    lines = (REQUIREMENTS / "light.in").read_text().splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


# ---------------------------------------------------------------- pyproject, locks, envs


@pytest.mark.parametrize(
    ("lock_name", "extras"),
    [("cpu.txt", ("test",)), ("gpu.txt", ("gpu", "tracking"))],
)
def test_each_lock_pins_every_requirement_within_pyprojects_range(
    lock_name: str, extras: tuple[str, ...]
) -> None:
    pins = lock(lock_name)
    for req in requirements(*extras):
        name = canonicalize_name(req.name)
        assert name in pins, f"{req} is not in requirements/{lock_name}: run make lock"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"requirements/{lock_name} pins {name}=={pins[name]}, outside {req}: run make lock"
        )


def test_the_cpu_lock_is_the_cpu_torch_without_cuda() -> None:
    pins = lock("cpu.txt")
    assert pins["torch"] == "2.13.0"  # the CPU build CI machines provide as a local wheel
    cuda = sorted(n for n in pins if n.startswith(("nvidia-", "cuda-")) or n == "triton")
    assert not cuda, f"CUDA runtime packages in the CPU lock: {cuda}"


def test_the_gpu_lock_has_the_torch_vllm_pins() -> None:
    text = (REQUIREMENTS / "gpu.txt").read_text()
    pins = lock("gpu.txt")
    assert {"torch", "vllm", "bitsandbytes", "liger-kernel", "tensorboard"} <= set(pins)
    # the resolver's annotation: vLLM's own requirement on torch chose this version
    via = re.search(r"^torch==[^\n]*\n((?:    #.*\n)+)", text, re.M)
    assert via and re.search(r"#\s+vllm$", via.group(1), re.M), "torch is not pinned via vllm"
    assert "--python-platform x86_64-manylinux_2_28" in text.splitlines()[1]


def test_the_light_lock_is_the_cpu_lock_without_the_model_stack() -> None:
    light, cpu = lock("light.txt"), lock("cpu.txt")
    assert {n: cpu.get(n) for n in light} == light, "light.txt and cpu.txt disagree"
    heavy = sorted(set(light) & {canonicalize_name(n) for n in HEAVY})
    assert not heavy, f"the light lock holds {heavy}"
    assert "snakemake" not in light  # jobs reach Snakemake's own package through its preamble


def test_light_in_is_a_subset_of_pyprojects_dependencies() -> None:
    project = {canonicalize_name(r.name): r for r in requirements()}
    for req in light_in():
        name = canonicalize_name(req.name)
        assert name in project and str(project[name].specifier) == str(req.specifier), req


def test_the_conda_envs_are_the_locks() -> None:
    for path, text in _write_envs_module().rendered_envs(ROOT).items():
        assert path.read_text() == text, f"{path.name} is out of date: run make lock"
    for env, lock_name in (("tracekd.yaml", "light.txt"), ("gpu.yaml", "gpu.txt")):
        spec = yaml.safe_load((ROOT / "envs" / env).read_text())
        assert "python=3.11" in spec["dependencies"]
        (pip,) = [d["pip"] for d in spec["dependencies"] if isinstance(d, dict)]
        assert {canonicalize_name(Requirement(p).name): Requirement(p).specifier for p in pip} == {
            name: Requirement(f"x=={version}").specifier for name, version in lock(lock_name).items()
        }


def _make_recipe(target: str) -> str:
    """The recipe of a Makefile target, continuation lines joined, variables as written."""
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    match = re.search(rf"^{re.escape(target)}:[^\n]*\n((?:\t[^\n]*\n)+)", text, re.M)
    assert match, f"no target {target}"
    return re.sub(r"\s+", " ", match.group(1))


def test_each_lock_records_the_command_make_lock_runs() -> None:
    recipe = _make_recipe("lock").replace("$(UV)", "uv").replace(" $(UPGRADE)", "")
    for name in ("cpu.txt", "light.txt", "gpu.txt"):
        header = (REQUIREMENTS / name).read_text().splitlines()[1].removeprefix("#").strip()
        header = re.sub(r" (--upgrade-package|-P) \S+| (--upgrade|-U)\b", "", header)  # UPGRADE=
        assert header.startswith("uv pip compile") and header in recipe, (name, header)
    assert "requirements/write_envs.py" in recipe


def test_make_installs_the_lock_and_the_project_without_resolving() -> None:
    recipe = _make_recipe("$(VENV)/.installed")
    assert "pip install --quiet -r $(LOCK)" in recipe and "--no-deps -e ." in recipe
    assert re.search(r"^LOCK\s+\?= requirements/cpu\.txt$", (ROOT / "Makefile").read_text(), re.M)


# ---------------------------------------------------------------- the light rules without torch


#: lazy imports of functions the Snakefile calls in Snakemake's own environment, never a job:
#: validate_config (jsonschema, and Snakemake's validator that fills the defaults)
SNAKEFILE_ONLY = {"tracekd.config": {"jsonschema", "snakemake"}}


def _script_imports(path: Path, *, imported_names: bool = False) -> list[str]:
    """Every module an import statement of ``path`` names, at any depth (lazy ones too); with
    ``imported_names``, also ``package.name`` of each ``from package import name``."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
            if imported_names:  # the name may be a module of its own
                names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


#: run in a fresh interpreter: refuse every import outside the standard library, the light
#: lock's distributions and tracekd, then import what each light script imports
_STRICT_IMPORTS = r"""
import importlib, importlib.machinery, importlib.metadata, json, site, sys, sysconfig
from pathlib import Path
from packaging.utils import canonicalize_name

light = {canonicalize_name(line.split("==")[0]) for line in sys.argv[1].split(",")}
allowed = {"tracekd"} | {
    module for module, dists in importlib.metadata.packages_distributions().items()
    if any(canonicalize_name(d) in light for d in dists)
}
# the interpreter's own library (a venv's platstdlib is the venv, site-packages included)
stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
site_dirs = [Path(p).resolve() for p in site.getsitepackages()]
refused = []

def _importer():
    # the file whose import statement asked: the first frame outside the import system
    frame = sys._getframe(2)
    while frame and (frame.f_code.co_filename.startswith("<frozen")
                     or "/importlib/" in frame.f_code.co_filename):
        frame = frame.f_back
    return frame.f_code.co_filename if frame else "?"

class LightOnly:
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in allowed or top in sys.stdlib_module_names or top in sys.modules:
            return None
        spec = importlib.machinery.PathFinder.find_spec(top)
        if spec is None or spec.origin is None:
            return None
        origin = Path(spec.origin).resolve()
        if origin.is_relative_to(stdlib) and not any(origin.is_relative_to(p) for p in site_dirs):
            return None
        refused.append([name, _importer()])
        raise ModuleNotFoundError(f"{name} is not in the light environment", name=name)

sys.meta_path.insert(0, LightOnly())
for module in json.loads(sys.argv[2]):
    importlib.import_module(module)
loaded = sorted({m.partition(".")[0] for m in sys.modules} & set(json.loads(sys.argv[3])))
print(json.dumps({"refused": refused, "heavy_loaded": loaded, "tracekd": sorted(
    m for m in sys.modules if m.startswith("tracekd")
)}))
"""


def test_light_scripts_import_nothing_beyond_the_light_lock() -> None:
    """Every module the light rules' scripts import, imported where only the standard library,
    the light lock's packages and tracekd can be found; then every import statement of the
    tracekd modules they reach, lazy ones inside functions included, names a light module."""
    light = sorted(lock("light.txt"))
    modules = sorted({m for r in LIGHT_RULES for m in _script_imports(
        ROOT / "workflow" / "scripts" / f"{r}.py")})  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", _STRICT_IMPORTS, ",".join(light), json.dumps(modules),
         json.dumps(HEAVY)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["heavy_loaded"] == []
    # third-party code may probe for optional packages and do without them; tracekd may not
    ours = [(m, f) for m, f in result["refused"] if Path(f).is_relative_to(ROOT / "src")]
    assert not ours, f"tracekd imports what the light environment lacks: {ours}"

    # the lazy imports: follow tracekd's own imports (static, at any depth) from what was loaded
    import importlib.metadata

    allowed = {"tracekd"} | {
        module for module, dists in importlib.metadata.packages_distributions().items()
        if any(canonicalize_name(d) in light for d in dists)
    }  # fmt: skip
    seen, todo, outside = set(), list(result["tracekd"]), []
    while todo:
        name = todo.pop()
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:  # a function or class imported from a module, not a module
            spec = None
        if name in seen or spec is None or not spec.origin or not spec.origin.endswith(".py"):
            seen.add(name)
            continue
        seen.add(name)
        for imported in _script_imports(Path(spec.origin), imported_names=True):
            top = imported.partition(".")[0]
            if top == "tracekd":
                todo.append(imported)
            elif top not in allowed | sys.stdlib_module_names | SNAKEFILE_ONLY.get(name, set()):
                outside.append(f"{name}: {top}")
    assert not outside, f"light modules import what the light lock lacks: {sorted(set(outside))}"


#: installed as sitecustomize in every Python process of a Snakemake run: in a light rule's
#: job (Snakemake runs ``.snakemake/scripts/tmpXXXX.<script>``) the model stack cannot be found
_BLOCKER = """
import os, sys
RULES = {rules!r}
HEAVY = {heavy!r}
script = os.path.basename(sys.argv[0]) if sys.argv else ""
rule = script.split(".", 1)[1][: -len(".py")] if script.count(".") >= 2 else ""
if rule in RULES and "/.snakemake/scripts/" in sys.argv[0]:
    class _Absent:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in HEAVY:
                raise ModuleNotFoundError(f"No module named {{name!r}} (light environment)", name=name)
            return None
    sys.meta_path.insert(0, _Absent())
    with open(os.environ["TRACEKD_LIGHT_LOG"], "a") as log:
        log.write(rule + "\\n")
"""


def released_outputs(path: Path) -> Path:
    """One line of a predictions file in the paper's released format (trace_check_qa)."""
    facts = ["Ann Lee is a member of the Labour Party in 1990.", "Ann Lee is a member of X in 1990."]
    record = {
        "input": {"text": "<|im_start|>user\nAnswer the question ...<|im_end|>\n"},
        "prediction": "<think>\nThe temporal relation ... is: overlap.\n</think> <answer>['Labour Party']</answer>",
        "gold": ["Labour Party"],
        "triple_element": "S1_R1_O2",
        "question": "While Ann Lee was a member of X, which party did Ann Lee belong to?",
        "facts": facts,
    }
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return path


def light_rules_blocked(site: Path, *, log: Path) -> dict[str, str]:
    """The environment of a Snakemake run whose light rules' jobs cannot import the model stack:
    :data:`_BLOCKER` as ``site/sitecustomize.py``; each such job appends its rule to ``log``."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(_BLOCKER.format(rules=set(LIGHT_RULES), heavy=HEAVY))
    return {"PYTHONPATH": f"{site}:{ROOT / 'src'}", "TRACEKD_LIGHT_LOG": str(log)}


@pytest.mark.slow
def test_the_light_rules_run_with_the_model_stack_absent(demo_run: Path) -> None:
    """The first end-to-end run (tests/test_workflow.py) ran every job of a light rule with
    torch, transformers, trl, peft (and the rest of the model stack) unimportable, and each
    still wrote its outputs; the model rules (build_model, train, predict, probe) ran as usual."""
    results = demo_run
    work = results.parent
    ran = (work / "light-jobs.txt").read_text().split()
    planned = job_counts((work / "snakemake.log").read_text())
    # each light job ran blocked, once; every light rule but the release ones (test_release) ran
    assert {rule: ran.count(rule) for rule in sorted(set(ran))} == {
        rule: n for rule, n in planned.items() if rule in LIGHT_RULES
    }
    assert set(ran) == set(LIGHT_RULES) - {"release_raw", "release_summary"}
    assert planned["train"] and planned["predict"] and planned["probe"]
    assert (results / "tables" / "summary.csv").read_text().count("\n") == 1 + 3 * 4
    assert json.loads((results / "reference" / "elsewhere.json").read_text())
