"""The study config of the workflow: reading, validation, seed packs and the `rlmu` arguments of each job.

Imported by ``workflow/rules/common.smk`` when Snakemake builds the DAG, so that a study the jobs would
reject stops the dry run instead (``snakemake -n``), with one line naming the study file and the key:

- the shape of the study (``workflow/schemas/config.schema.yaml``; its variant and task lists are filled
  in from ``rlmu.train.variants.VARIANTS`` and ``rlmu.tasks.TASKS``);
- every run config a training job will pass, resolved and validated by the trainer's own config model
  (``rlmu.train.config.load_config``): budgets, overrides, device, image size;
- the data blocks, with the data generator's own checks (observation domain, Acrobot quality).

Defaults are not restated here: a budget or data option the study leaves out is not passed, and the
trainer's config model or the ``rlmu data`` command line supplies it. The one value the workflow must
know is the image size, which observation data and training must share: the study's ``image_size``,
else the trainer's default (``TrainConfig.model_fields["image_size"]``).

Seed packs: one training job trains a pack of seeds of one (task, variant) (``rlmu train seeds=[...]``).
Seeds whose run directory already has a ``run.json`` keep the pack recorded in it (``"pack"``; a record
without one is a pack of one); the other seeds of the task's list are chunked in order into packs of
``pack_size``. Adding seeds to a finished study therefore forms packs of the new seeds only.

Command line, to check a study file without Snakemake (it also names the line of a YAML error, which
Snakemake's own reading of ``--configfile`` does not)::

    python workflow/scripts/study.py check config/quick.yaml
"""

from __future__ import annotations

import copy
import json
import math
import shlex
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from rlmu.data.generate import make_demonstrator, resolve_domain
from rlmu.errors import UserError
from rlmu.schema import FINISHED_STATUSES
from rlmu.tasks import TASKS, get_task
from rlmu.train.config import TrainConfig, load_config
from rlmu.train.variants import VARIANTS
from rlmu.train.virl import OTHER_VIDEO_DOMAIN, other_tasks
from rlmu.utils.io import atomic_write_text

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"
BUDGET_KEYS = ("epochs", "steps_per_epoch", "eval_episodes")  # a task's `train:` keys passed as key=value
STUDY_KEYS = ("device", "image_size")  # top-level study keys passed to every run as key=value


class PlanError(Exception):
    """The study cannot be planned: one line naming the file and the key (or the run record)."""


# ----------------------------------------------------------------------------------------------------
# Reading and validating


def read_study_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a study YAML file; every problem is a PlanError naming the file (and line)."""
    path = Path(path)
    if path.is_dir():
        raise PlanError(f"{path}: is a directory, not a study config file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PlanError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlanError(
            f"{path}: not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start})"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise PlanError(f"{where}: not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise PlanError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:
        raise PlanError(f"{path}: nested too deeply to be a study config") from None
    if data is None:
        raise PlanError(f"{path}: is empty; a study config is a mapping (study, seeds, tasks, ...)")
    if not isinstance(data, dict):
        raise PlanError(
            f"{path}: holds a {type(data).__name__} at the top level; a study config is a mapping"
        )
    return data


def schema() -> dict[str, Any]:
    """The study schema, with the variant and task names of the trainer filled in."""
    s = yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))
    s["$defs"]["variant"]["enum"] = list(VARIANTS)
    s["$defs"]["task_name"]["enum"] = list(TASKS)
    return s


def check_study(config: dict[str, Any], source: str) -> dict[str, Any]:
    """Validate a study mapping in place and fill in the schema's defaults; ``source`` names the file.

    Raises PlanError with one line (``source: key: problem``) for the first problem found.
    """
    if not isinstance(config, dict):
        raise PlanError(f"{source}: a study config is a mapping, not a {type(config).__name__}")
    s = schema()
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(s).iter_errors(config))
    if error is not None:
        raise PlanError(f"{source}: {_schema_message(error)}")
    _fill_defaults(config, s, s)
    _check_finite(config, source)
    for task in config["tasks"]:
        _check_data(config, task, source)
        for variant in config["tasks"][task]["variants"]:
            for seed in task_seeds(config, task):
                run_config(config, task, variant, seed, source)
    return config


def _schema_message(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        extra = sorted(str(k) for k in error.instance if k not in known)
        if extra:
            key = f"{path}.{extra[0]}" if path else extra[0]
            allowed = ", ".join(sorted(known))
            return f"{key}: unknown key" + (f" (allowed here: {allowed})" if allowed else "")
    message = error.message if len(error.message) <= 300 else error.message[:297] + "..."
    return f"{path or '(top level)'}: {message}"


def _resolve_ref(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _fill_defaults(value: Any, node: dict[str, Any], root: dict[str, Any]) -> None:
    """Set the schema's ``default`` of every absent property, recursively (objects only)."""
    node = _resolve_ref(node, root)
    if not isinstance(value, dict):
        return
    props = node.get("properties", {})
    for key, sub in props.items():
        default = sub.get("default", _resolve_ref(sub, root).get("default"))  # a default beside a $ref wins
        if key not in value and default is not None:
            value[key] = copy.deepcopy(default)
        if key in value:
            _fill_defaults(value[key], sub, root)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        for key, item in value.items():
            if key not in props:
                _fill_defaults(item, extra, root)


def _check_finite(value: Any, source: str, path: str = "") -> None:
    # JSON Schema has no "finite" keyword: NaN passes `minimum`, and an infinite threshold or noise is
    # never meant. Overrides are left to the trainer's config model (run_config).
    if isinstance(value, float) and not math.isfinite(value):
        raise PlanError(f"{source}: {path}: must be a finite number (got {value})")
    if isinstance(value, dict):
        for key, item in value.items():
            if key != "overrides":
                _check_finite(item, source, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_finite(item, source, f"{path}.{i}")


def _check_data(config: dict[str, Any], task: str, source: str) -> None:
    """The data block of ``task``, checked by the data generator's own rules (domain, quality)."""
    spec, data = get_task(task), config["tasks"][task]["data"]
    try:
        resolve_domain(spec, data.get("domain"))
    except ValueError as exc:
        raise PlanError(f"{source}: tasks.{task}.data.domain: {exc}") from None
    if "quality" in data:
        try:
            make_demonstrator(spec, noise=0.0, seed=0, quality=data["quality"])
        except ValueError as exc:
            raise PlanError(f"{source}: tasks.{task}.data.quality: {exc}") from None


# ----------------------------------------------------------------------------------------------------
# Paths and run configs


def study_dir(config: Mapping[str, Any]) -> str:
    """The study's folder: ``results_dir`` if the study sets one, else results/{study}."""
    return config.get("results_dir") or f"results/{config['study']}"


def task_seeds(config: Mapping[str, Any], task: str) -> list[int]:
    return list(config["tasks"][task].get("seeds", config["seeds"]))


def image_size(config: Mapping[str, Any]) -> int:
    """The study's image size, else the trainer's default: observation data and runs must agree."""
    return config.get("image_size", TrainConfig.model_fields["image_size"].default)


def observations_path(config: Mapping[str, Any], task: str) -> str:
    return f"{study_dir(config)}/data/{task}_observations.npz"


def paired_path(config: Mapping[str, Any], task: str) -> str:
    return f"{study_dir(config)}/data/{task}_paired.npz"


def robot_videos_path(config: Mapping[str, Any], task: str) -> str:
    """Videos of ``task`` in the agent's own domain: the other-task negatives of VIRL runs."""
    return f"{study_dir(config)}/data/{task}_{OTHER_VIDEO_DOMAIN}_videos.npz"


def run_record(config: Mapping[str, Any], task: str, variant: str, seed: int) -> str:
    return f"{runs_dir(config, task, variant)}/seed_{seed}/run.json"


def runs_dir(config: Mapping[str, Any], task: str, variant: str) -> str:
    return f"{study_dir(config)}/runs/{task}/{variant}"


def study_runs(config: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """The study's runs as (task, variant, seed), in study order."""
    return [
        (task, variant, seed)
        for task, spec in config["tasks"].items()
        for variant in spec["variants"]
        for seed in task_seeds(config, task)
    ]


def write_run_list(config: Mapping[str, Any]) -> str:
    """``{study}/runs.txt``: the study's runs, one per line, rewritten (atomically) only when they change.

    It is an input of the aggregation. Without Snakemake's own records (a fresh clone of committed
    results) a changed seed list or variant list would otherwise not rerun an aggregation whose output
    exists: Snakemake makes a missing input only for a job it already has to run. Returns the path."""
    path = Path(study_dir(config)) / "runs.txt"
    text = "".join(f"{task}/{variant}/seed_{seed}\n" for task, variant, seed in study_runs(config))
    try:
        if path.read_text(encoding="utf-8") == text:
            return str(path)
    except (OSError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    return str(path)


def _run_items(config: Mapping[str, Any], task: str, variant: str, data: Mapping[str, str]) -> dict[str, Any]:
    """The key=value items of a training job, before the seeds: identity, budget, data, overrides."""
    train = config["tasks"][task]["train"]
    return {
        "study": config["study"],
        "task": task,
        "variant": variant,
        **{k: train[k] for k in BUDGET_KEYS if k in train},
        **{k: config[k] for k in STUDY_KEYS if k in config},
        "image_size": image_size(config),
        **data,
        **_env_workers(config, task),
        **train.get("overrides", {}),
    }


def _env_workers(config: Mapping[str, Any], task: str) -> dict[str, int]:
    """Image tasks: a pack job's cores beyond the first step and render its environments in parallel."""
    threads = int(config.get("resources", {}).get("train", {}).get("threads", 1))
    return {"env_workers": threads - 1} if get_task(task).pixels and threads > 1 else {}


def run_config(config: Mapping[str, Any], task: str, variant: str, seed: int, source: str) -> TrainConfig:
    """The resolved run config of one member, as the job's `rlmu train` will build it from its items."""
    items = {**_run_items(config, task, variant, run_data(config, task, variant)), "seed": seed}
    try:
        return load_config(None, [f"{k}={yaml_value(v)}" for k, v in items.items()])
    except UserError as exc:
        raise PlanError(f"{source}: {_study_keys(str(exc), config, task, variant)}") from None


def run_data(config: Mapping[str, Any], task: str, variant: str) -> dict[str, Any]:
    """``data.observations`` / ``data.paired`` / ``virl.other_videos`` of a (task, variant): only the
    datasets its config uses.

    Decided by the trainer's config model: the run config is resolved with every dataset the study
    makes for the task, and keeps those its variant enables (SAC none). A VIRL run gets the videos of
    every other task with its kind of observations in the agent's domain (``rlmu.train.virl.other_tasks``:
    push <-> drawer, Acrobot none), unless the study's overrides set ``virl.other_videos``.
    """
    offered = {"data.observations": observations_path(config, task)}
    if get_task(task).pixels:  # paired robot/human images exist for image tasks only
        offered["data.paired"] = paired_path(config, task)
    items = _run_items(config, task, variant, offered)
    seed = task_seeds(config, task)[0]
    try:
        cfg = load_config(None, [f"{k}={yaml_value(v)}" for k, v in {**items, "seed": seed}.items()])
    except UserError:
        return offered  # run_config reports the problem with these datasets offered
    used = {}
    if cfg.agent.rlv.enabled and cfg.data.observations == offered["data.observations"]:
        used["data.observations"] = offered["data.observations"]
    if cfg.agent.rlv.enabled and cfg.agent.rlv.paired and cfg.data.paired == offered.get("data.paired"):
        used["data.paired"] = offered["data.paired"]
    others = [robot_videos_path(config, t) for t in other_tasks(task)]
    own = "virl.other_videos" in config["tasks"][task]["train"].get("overrides", {})
    if cfg.virl.enabled and others and not own:
        used["virl.other_videos"] = others
    return used


def _study_keys(message: str, config: Mapping[str, Any], task: str, variant: str) -> str:
    """Rewrite the trainer's ``config: field: problem; ...`` so each field names its study key."""
    parts = message.removeprefix("config: ").split("; config: ")
    if not message.startswith("config: ") or any(": " not in p for p in parts):
        return f"tasks.{task} (variant {variant}): {message}"
    train = config["tasks"][task]["train"]
    overrides = train.get("overrides", {})
    out = []
    for part in parts:
        field, problem = part.split(": ", 1)
        if any(field == k or field.startswith(k + ".") for k in overrides):
            key = f"tasks.{task}.train.overrides.{field}"
        elif field in BUDGET_KEYS and field in train:
            key = f"tasks.{task}.train.{field}"
        elif field in (*STUDY_KEYS, "study"):
            key = field
        elif field == "seed":
            key = f"tasks.{task}.seeds" if "seeds" in config["tasks"][task] else "seeds"
        elif field == "(top level)":
            key = f"tasks.{task}.variants: {variant}"
        else:
            key = f"tasks.{task}.variants: {variant}: {field}"
        out.append(f"{key}: {problem}")
    return "; ".join(out)


def yaml_value(v: Any) -> str:
    """A value as `rlmu train` parses it back from ``key=value`` (a YAML scalar or flow list)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | tuple):  # e.g. agent.sac.hidden: [256, 256] -> "[256,256]"
        return "[" + ",".join(yaml_value(x) for x in v) + "]"
    if isinstance(v, str):
        # A string YAML would read as something else ("true", "1: 2", "") is written as a JSON string.
        try:
            plain = yaml.safe_load(v) == v
        except yaml.YAMLError:
            plain = False
        return v if plain and "," not in v and v.strip() == v else json.dumps(v)
    return repr(v) if isinstance(v, float) else str(v)


# ----------------------------------------------------------------------------------------------------
# Seed packs


@dataclass(frozen=True)
class Pack:
    """One training job: the seeds of one (task, variant) that `rlmu train` trains together."""

    task: str
    variant: str
    seeds: tuple[int, ...]

    @property
    def label(self) -> str:
        return "seeds_" + "-".join(str(s) for s in self.seeds)

    @property
    def rule(self) -> str:
        """The name of its rule (Snakemake rule names are identifiers)."""
        return f"train_{self.task}_{self.variant}_seeds_{'_'.join(str(s) for s in self.seeds)}"


def form_packs(
    seeds: Iterable[int], pack_size: int, recorded: Mapping[int, tuple[int, ...]]
) -> list[tuple[int, ...]]:
    """Packs of ``seeds``: recorded packs first (in seed-list order), then the rest in chunks.

    ``recorded`` maps a seed with a run record to the pack recorded in it. Seeds not in any recorded
    pack are chunked in list order into packs of ``pack_size`` (the last may be smaller). A pack's seeds
    are sorted, as `rlmu train` sorts them (its run records and its default pack directory).
    """
    seeds = list(seeds)
    packs: list[tuple[int, ...]] = []
    for s in seeds:
        if s in recorded and tuple(sorted(recorded[s])) not in packs:
            packs.append(tuple(sorted(recorded[s])))
    taken = {s for p in packs for s in p}
    rest = [s for s in seeds if s not in taken]
    packs += [tuple(sorted(rest[i : i + pack_size])) for i in range(0, len(rest), pack_size)]
    return packs


def recorded_pack(path: Path, seed: int) -> tuple[int, ...] | None:
    """The pack recorded in a run's ``run.json`` (None without the file; a pack of one without the key)."""
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanError(
            f"{path}: not a readable run record ({exc}); delete the run directory to retrain it"
        ) from None
    pack = record.get("pack", [seed]) if isinstance(record, dict) else None
    if (
        not isinstance(pack, list)
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in pack)
        or seed not in pack
        or len(set(pack)) != len(pack)
    ):
        raise PlanError(f'{path}: "pack" must be a list of distinct seeds including {seed}, got {pack!r}')
    return tuple(sorted(pack))


def packs(config: Mapping[str, Any]) -> list[Pack]:
    """Every training job of the study, from its seed lists, pack sizes and the run records on disk."""
    out = []
    for task, spec in config["tasks"].items():
        size = spec.get("pack_size", config["pack_size"])
        for variant in spec["variants"]:
            recorded: dict[int, tuple[int, ...]] = {}
            origin: dict[int, Path] = {}
            for seed in task_seeds(config, task):
                path = Path(run_record(config, task, variant, seed))
                pack = recorded_pack(path, seed)
                for member in pack or ():
                    if member in recorded and recorded[member] != pack:
                        raise PlanError(
                            f"seed {member} of {task}/{variant} is recorded in two packs: {list(recorded[member])} "
                            f"({origin[member]}) and {list(pack)} ({path})"
                        )
                    recorded[member], origin[member] = pack, path
            for seeds in form_packs(task_seeds(config, task), size, recorded):
                out.append(Pack(task, variant, seeds))
    return out


def pack_outputs(config: Mapping[str, Any], pack: Pack) -> list[str]:
    return [run_record(config, pack.task, pack.variant, s) for s in pack.seeds]


def pack_finished(config: Mapping[str, Any], pack: Pack) -> bool:
    """Whether every member's run record says the run finished (completed or diverged).

    A finished pack has no training job (workflow/rules/train.smk): its results stand whatever happens to
    the datasets afterwards, so a fresh clone of committed results (whose datasets are regenerated, hence
    newer than the runs) resumes the study without retraining them."""
    for path in map(Path, pack_outputs(config, pack)):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return False
        if not isinstance(record, dict) or record.get("status") not in FINISHED_STATUSES:
            return False
    return True


def pack_dir(config: Mapping[str, Any], pack: Pack) -> str:
    return f"{study_dir(config)}/packs/{pack.task}/{pack.variant}/{pack.label}"


def pack_args(config: Mapping[str, Any], pack: Pack) -> str:
    """The `rlmu train` key=value items of a pack job, shell-quoted."""
    items = {
        **_run_items(config, pack.task, pack.variant, run_data(config, pack.task, pack.variant)),
        "seeds": list(pack.seeds),
    }
    return " ".join(shlex.quote(f"{k}={yaml_value(v)}") for k, v in items.items())


# ----------------------------------------------------------------------------------------------------
# Data and statistics arguments (only the options the study gives; the command line has the defaults)


def generate_args(config: Mapping[str, Any], task: str) -> str:
    data = config["tasks"][task]["data"]
    args = [
        f"--{k} {shlex.quote(str(data[k]))}" for k in ("transitions", "noise", "seed", "quality") if k in data
    ]
    if get_task(task).pixels:
        args += [f"--image-size {image_size(config)}"]
    args += [f"--domain {shlex.quote(data['domain'])}"] if "domain" in data else []
    return " ".join(args)


def robot_video_args(config: Mapping[str, Any], task: str) -> str:
    """Other-task videos of an image task: its data block's size, noise and seed (if the study has the
    task), in the agent's domain."""
    data = config["tasks"].get(task, {}).get("data", {})
    args = [f"--{k} {shlex.quote(str(data[k]))}" for k in ("transitions", "noise", "seed") if k in data]
    return " ".join([*args, f"--image-size {image_size(config)}", f"--domain {OTHER_VIDEO_DOMAIN}"])


def paired_args(config: Mapping[str, Any], task: str) -> str:
    data = config["tasks"][task]["data"]
    args = [f"--image-size {image_size(config)}"]
    args += [f"--n {data['paired']}"] if "paired" in data else []
    args += [f"--{k} {shlex.quote(str(data[k]))}" for k in ("seed", "domain") if k in data]
    return " ".join(args)


def stats_args(config: Mapping[str, Any]) -> str:
    names = {"seed": "--seed", "reps": "--reps", "curve_reps": "--curve-reps"}
    return " ".join(f"{names[k]} {v}" for k, v in config["stats"].items())


# ----------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "check":
        print("usage: python workflow/scripts/study.py check STUDY.yaml", file=sys.stderr)
        return 2
    try:
        config = check_study(read_study_file(argv[1]), argv[1])
    except PlanError as exc:
        print(f"study config error: {exc}", file=sys.stderr)
        return 2
    jobs = sum(len(task_seeds(config, t)) * len(spec["variants"]) for t, spec in config["tasks"].items())
    print(f"{argv[1]}: valid study {config['study']!r}: {jobs} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
