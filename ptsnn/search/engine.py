"""The search engine: an Optuna study with the NSGA-II sampler, one trial per candidate, any Optuna storage.

A trial samples the space's parameters (per-layer ones once per layer up to the sampled depth), builds the
family's config, checks it against the profile's design rules and, when it passes, trains, converts and
costs it (``Family.evaluate``). Returned values are the objectives in the space's order.

* **Infeasible** candidates (the family's ``check`` before training, a rule on trained weights after it, or
  a point that is not a network) raise ``optuna.TrialPruned`` with ``user_attrs["infeasible"]`` = rule,
  layer, message, stage. NSGA-II selects parents from COMPLETE trials only, so a pruned trial is never a
  parent nor on the front, and unlike FAIL it is not retried; no fake "worst" values distort the front.
* **Resumption**: the study lives in the storage (default ``sqlite:///OUT/study.db``); rerunning continues
  the same study name until ``--trials`` trials count (complete, infeasible, running). A trial left RUNNING
  by a process that died is failed and re-queued with the same parameters: on this host by checking the
  recorded worker pid; on RDB storages from any host by Optuna's heartbeat (``RetryHeartbeatStaleTrialCallback``).
  A trial stopped by Ctrl-C (Optuna fails it) is re-queued with the same parameters on the next run.
* **Repeated points**: a trial whose parameters equal a COMPLETE trial's reuses that evaluation
  (``duplicate_of``; counted in the budget, listed once on the front) instead of training it again.
* **Workers**: ``--workers N`` starts N processes (training is CPU-bound) that each open the storage and
  loop over ``study.optimize(n_trials=1)``; Optuna's storage gives every trial a unique number. Other
  machines join by running the same command with the same ``--storage``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any, Callable

from ptsnn.errors import InputError, PtsnnError
from ptsnn.fileio import sha256_file
from ptsnn.search import trial_attrs
from ptsnn.search.family import CandidateInfeasible, Infeasible
from ptsnn.search.space import SearchSpace

JOURNAL_PREFIX = "journal:"
DEFAULT_HEARTBEAT_S = 60


def _quiet_optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


# --------------------------------------------------------------------------------------------- storage
def default_storage(out: Path) -> str:
    return f"sqlite:///{Path(out).resolve() / 'study.db'}"


def describe_storage(url: str) -> str:
    """The URL with any password hidden (front.json, logs)."""
    if url.startswith(JOURNAL_PREFIX):
        return url
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is reported when it is opened
        return url.split("@")[-1]


def open_storage(url: str, heartbeat_s: int = DEFAULT_HEARTBEAT_S):
    """``journal:PATH`` -> JournalStorage(JournalFileBackend(PATH)) (a shared file system, no server); any
    other string is an SQLAlchemy URL for RDBStorage (sqlite, postgresql, mysql) with heartbeat."""
    import optuna
    from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
    from optuna.storages.journal import JournalFileBackend

    _quiet_optuna()
    if url.startswith(JOURNAL_PREFIX):
        path = Path(url[len(JOURNAL_PREFIX):])
        if not path.parent.is_dir():
            raise InputError(f"--storage {url}: folder {path.parent} does not exist")
        return JournalStorage(JournalFileBackend(str(path)))
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 120}}  # several workers write one file
    if heartbeat_s:
        kwargs.update(heartbeat_interval=int(heartbeat_s), grace_period=3 * int(heartbeat_s),
                      heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2))
    try:
        return RDBStorage(url, **kwargs)
    except (ImportError, ModuleNotFoundError) as exc:
        raise InputError(f"--storage {describe_storage(url)}: database driver missing ({exc}); "
                         "e.g. pip install psycopg2-binary for postgresql://") from None
    except Exception as exc:  # sqlalchemy's ArgumentError / OperationalError: a bad URL or an unreachable server
        if isinstance(exc, optuna.exceptions.StorageInternalError) or type(exc).__module__.startswith("sqlalchemy"):
            raise InputError(f"--storage {describe_storage(url)}: {str(exc).splitlines()[0]}") from None
        raise


# --------------------------------------------------------------------------------------------- study
def make_sampler(space: SearchSpace):
    import optuna
    from optuna.samplers import nsgaii

    _quiet_optuna()
    o = space.options.nsga2
    crossover = {"uniform": lambda: nsgaii.UniformCrossover(o.swapping_prob), "blxalpha": nsgaii.BLXAlphaCrossover,
                 "sbx": nsgaii.SBXCrossover, "spx": nsgaii.SPXCrossover, "undx": nsgaii.UNDXCrossover,
                 "vsbx": nsgaii.VSBXCrossover}[o.crossover]()
    return optuna.samplers.NSGAIISampler(population_size=o.population_size, crossover=crossover,
                                         crossover_prob=o.crossover_prob, swapping_prob=o.swapping_prob,
                                         mutation_prob=o.mutation_prob, seed=space.options.seed)


def open_study(space: SearchSpace, storage, create: bool):
    """Create (or load) the study; a study made with another space, family or objectives is refused."""
    import optuna

    name = space.options.study
    identity = dict(family=space.options.family, objectives=list(space.options.objectives), space_sha256=space.sha256)
    if create:
        study = optuna.create_study(study_name=name, storage=storage, sampler=make_sampler(space),
                                    directions=[d for _, d in space.objectives], load_if_exists=True)
    else:
        study = optuna.load_study(study_name=name, storage=storage, sampler=make_sampler(space))
    stored = {k: study.user_attrs.get(k) for k in identity}
    if all(v is None for v in stored.values()):
        for k, v in identity.items():
            study.set_user_attr(k, v)
    elif stored != identity:
        diff = next(k for k in identity if stored[k] != identity[k])
        raise InputError(f"study {name!r} in this storage was made with a different {diff} "
                         f"({stored[diff]!r}); use another --study name or output folder")
    return study


# -------------------------------------------------------------------------------------------- sampling
def _suggest(trial, name: str, p):
    from ptsnn.search.space import Choices, IntRange

    if isinstance(p, Choices):
        return trial.suggest_categorical(name, list(p.choices))
    if isinstance(p, IntRange):
        return trial.suggest_int(name, p.low, p.high, step=p.step, log=p.log)
    return trial.suggest_float(name, p.low, p.high, step=p.step, log=p.log)


def layered_name(name: str, i: int) -> str:
    head, rest = name.split("_", 1)
    return f"{head}{i}_{rest}"


def sample(trial, space: SearchSpace, family) -> dict[str, Any]:
    """The point: plain parameters first, then each per-layer parameter once per layer of its depth."""
    params: dict[str, Any] = {}
    per_layer: dict[str, list[str]] = getattr(family, "per_layer", {})
    layered = {n for names in per_layer.values() for n in names}
    space_params = space.parameters
    for name, p in space_params.items():
        if name not in layered:
            params[name] = _suggest(trial, name, p)
    defaults = getattr(family, "defaults", {})
    for depth_name, names in per_layer.items():
        depth = params.get(depth_name, space.fixed.get(depth_name, defaults.get(depth_name, 0)))
        for i in range(int(depth)):
            for name in names:
                if name in space_params:
                    params[layered_name(name, i)] = _suggest(trial, layered_name(name, i), space_params[name])
    return params


# --------------------------------------------------------------------------------------- process ids
def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), so a reused pid is not taken for it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def worker_identity() -> dict:
    return dict(host=socket.gethostname(), pid=os.getpid(), started=_start_time(os.getpid()))


def _alive(worker: dict) -> bool:
    pid = int(worker.get("pid", -1))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return worker.get("started") is None or _start_time(pid) == worker.get("started")


def fail_dead_local_trials(study) -> list[int]:
    """RUNNING trials whose worker process on this host is gone: FAIL, re-queued with the same parameters
    (user_attr ``retry_of``). Returns their numbers."""
    import optuna
    from optuna.trial import TrialState

    host, failed = socket.gethostname(), []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        w = t.user_attrs.get("worker")
        if not isinstance(w, dict) or w.get("host") != host or _alive(w):
            continue
        storage = study._storage  # Optuna has no public "fail this trial" besides the heartbeat
        try:
            storage.set_trial_user_attr(t._trial_id, "stale", f"worker pid {w.get('pid')} on {host} died")
            if not storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                continue
        except (optuna.exceptions.UpdateFinishedTrialError, RuntimeError):
            continue  # another worker got there first
        _requeue(study, t)
        failed.append(t.number)
    return failed


def _requeue(study, t) -> None:
    """Queue ``t``'s parameters again; the new trial says which one it retries (``retry_of``)."""
    study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})


def requeue_interrupted_trials(study) -> list[int]:
    """Trials failed by Ctrl-C (user_attr ``interrupted``) that were not retried yet: re-queued once with
    the same parameters (user_attr ``retry_of``). Returns their numbers."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    requeued = []
    for t in trials:
        if t.state == TrialState.FAIL and t.user_attrs.get("interrupted") and t.number not in retried:
            _requeue(study, t)
            requeued.append(t.number)
    return requeued


def counted_trials(study) -> list:
    """The trials the budget counts: complete, infeasible (pruned), running; not failed ones (they are
    retried) nor surplus ones (made by a race past the budget, closed untouched)."""
    from optuna.trial import TrialState

    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    return [t for t in study.get_trials(deepcopy=False, states=states) if not t.user_attrs.get("surplus")]


# ---------------------------------------------------------------------------------------------- trial
class Objective:
    def __init__(self, space: SearchSpace, out: Path, total: int, profile, family):
        self.space, self.out, self.total, self.profile, self.family = space, Path(out), total, profile, family

    def _surplus(self, trial) -> bool:
        before = [t for t in counted_trials(trial.study) if t.number < trial.number]
        return len(before) >= self.total

    def __call__(self, trial):
        import optuna

        if self._surplus(trial):
            trial.set_user_attr("surplus", True)
            raise optuna.TrialPruned("trial budget already reached")
        trial.set_user_attr("worker", worker_identity())
        params = sample(trial, self.space, self.family)
        trial_dir = self.out / "trials" / str(trial.number)
        trial_dir.mkdir(parents=True, exist_ok=True)
        with open(trial_dir / "log.txt", "a", encoding="utf-8") as log_file:
            def log(msg: str) -> None:
                log_file.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {msg}\n")
                log_file.flush()

            log(f"trial {trial.number} on {socket.gethostname()} pid {os.getpid()}: {json.dumps(params, sort_keys=True)}")
            original = self._same_point(trial)
            if original is not None:
                return self._reuse(trial, original, log)
            try:
                return self._run(trial, params, trial_dir, log)
            except KeyboardInterrupt:  # Optuna fails the trial; the next run of the search re-queues it
                trial.set_user_attr("interrupted", "KeyboardInterrupt")
                log("interrupted (Ctrl-C): re-queued with the same parameters when the search resumes")
                raise

    @staticmethod
    def _same_point(trial):
        """A COMPLETE trial with exactly these parameters (NSGA-II proposes points again, more so in small
        discrete spaces): its evaluation is reused instead of training the same candidate again."""
        from optuna.trial import TrialState

        mine = trial.params
        for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if t.number != trial.number and t.params == mine and "duplicate_of" not in t.user_attrs:
                return t
        return None

    def _reuse(self, trial, original, log) -> list[float]:
        for key in trial_attrs.EVALUATION:  # a repeated point gets its original's evaluation
            if key in original.user_attrs:
                trial.set_user_attr(key, original.user_attrs[key])
        trial.set_user_attr("duplicate_of", original.number)
        log(f"same parameters as trial {original.number}: its evaluation is reused (not trained again)")
        return list(original.values)

    def _infeasible(self, trial, found: list[Infeasible], stage: str, log):
        import optuna

        first = found[0]
        trial.set_user_attr("infeasible", dict(rule=first.rule, layer=first.layer, message=first.message, stage=stage))
        trial.set_user_attr("violations", [dict(rule=v.rule, layer=v.layer, message=v.message) for v in found[:20]])
        log(f"infeasible ({stage}): {first.rule} at {first.layer}: {first.message}")
        raise optuna.TrialPruned(f"infeasible: {first.rule}")

    def _run(self, trial, params: dict, trial_dir: Path, log) -> list[float]:
        try:
            config = self.family.build(params, self.space.fixed)
        except InputError as exc:
            self._infeasible(trial, [Infeasible("config", "-", str(exc))], "build", log)
        trial.set_user_attr("config", _plain_config(config))
        found = self.family.check(config, self.profile)
        if found:
            self._infeasible(trial, found, "before training", log)
        seed = self.space.options.seed + trial.number
        try:
            ev = self.family.evaluate(config, self.profile, self.space.budget, trial_dir, seed=seed, log=log)
        except CandidateInfeasible as exc:
            for p in trial_dir.glob("*.pt"):  # a checkpoint the profile rejects must not be exported
                p.unlink()
            self._infeasible(trial, exc.violations, "after training", log)
        ckpt = Path(ev.checkpoint)
        values = {"war": ev.war, "uar": ev.uar, **ev.costs}
        objectives = []
        for name, _ in self.space.objectives:
            v = values.get(name)
            if v is None:
                raise PtsnnError(f"objective {name}: profile {self.profile.name} gives no value for it "
                                 "(an energy-less profile?); drop it from search.objectives")
            objectives.append(float(v))
        trial.set_user_attr("war", float(ev.war))
        trial.set_user_attr("uar", float(ev.uar))
        trial.set_user_attr("costs", {k: (float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v)
                                      for k, v in ev.costs.items()})
        trial.set_user_attr("checkpoint", os.path.relpath(ckpt, self.out))
        trial.set_user_attr("checkpoint_sha256", sha256_file(ckpt))
        trial.set_user_attr("train_seconds", round(float(ev.train_seconds), 3))
        trial.set_user_attr("convert_seconds", round(float(ev.convert_seconds), 3))
        trial.set_user_attr("details", ev.details)
        log("objectives: " + ", ".join(f"{n} {v:.6g}" for (n, _), v in zip(self.space.objectives, objectives))
            + f"; train {ev.train_seconds:.1f} s, convert {ev.convert_seconds:.1f} s")
        return objectives


def _plain_config(config) -> Any:
    """The config as JSON values for the study (``to_dict()``, a dataclass, or already plain)."""
    import dataclasses

    if hasattr(config, "to_dict"):
        config = config.to_dict()
    elif dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    return json.loads(json.dumps(config, default=str))


# --------------------------------------------------------------------------------------------- workers
def run_worker(space: SearchSpace, out: Path, storage_url: str, total: int, heartbeat_s: int = DEFAULT_HEARTBEAT_S,
               on_trial: Callable[[Any], None] | None = None) -> None:
    """One worker: join the study and run trials until ``total`` count."""
    from ptsnn.hw_profiles.loader import load_profile
    from ptsnn.search.families import get_family

    family = get_family(space.options.family, space.origin)
    profile = load_profile(space.options.profile)
    storage = open_storage(storage_url, heartbeat_s)
    study = open_study(space, storage, create=False)
    objective = Objective(space, out, total, profile, family)
    callbacks = [lambda s, t: on_trial(s)] if on_trial else []
    while True:
        fail_dead_local_trials(study)
        if len(counted_trials(study)) >= total:
            return
        study.optimize(objective, n_trials=1, catch=(), callbacks=callbacks, gc_after_trial=False)


def _worker_process(space, out, storage_url, total, heartbeat_s, errors) -> None:
    import torch

    torch.set_num_threads(1)  # N workers on N cores: one thread each
    try:
        run_worker(space, out, storage_url, total, heartbeat_s)
    except PtsnnError as exc:
        errors.put(str(exc))
        raise SystemExit(2) from None


def run_search(space: SearchSpace, out: Path, *, trials: int | None = None, workers: int = 1,
               storage_url: str | None = None, heartbeat_s: int = DEFAULT_HEARTBEAT_S,
               on_progress: Callable[[Any], None] | None = None) -> Any:
    """Run (or continue) the search; returns the study. ``on_progress(study)`` is called after each trial
    (one worker) or about every second (several)."""
    import multiprocessing as mp

    if workers < 1:
        raise InputError(f"--workers must be >= 1, not {workers}")
    total = trials or space.options.trials
    if total < 1:
        raise InputError(f"--trials must be >= 1, not {total}")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    url = storage_url or default_storage(out)
    storage = open_storage(url, heartbeat_s)
    study = open_study(space, storage, create=True)  # made here once: workers only load it
    fail_dead_local_trials(study)
    requeue_interrupted_trials(study)  # here only: workers start together, one re-queue per interrupted trial
    if workers == 1:
        run_worker(space, out, url, total, heartbeat_s, on_trial=on_progress)
        return study
    ctx = mp.get_context("spawn")
    errors = ctx.Queue()
    procs = [ctx.Process(target=_worker_process, args=(space, out, url, total, heartbeat_s, errors), daemon=False)
             for _ in range(workers)]
    try:
        for p in procs:
            p.start()
        while any(p.is_alive() for p in procs):
            if on_progress:
                on_progress(study)
            for p in procs:
                p.join(timeout=1.0 / len(procs))
        if on_progress:
            on_progress(study)
        bad = [p for p in procs if p.exitcode != 0]
        if bad:
            message = ""
            with contextlib.suppress(Exception):
                message = errors.get(timeout=1)
            raise PtsnnError(f"{len(bad)} of {workers} search workers stopped (exit code {bad[0].exitcode})"
                             + (f": {message}" if message else "; see the trial logs under " + str(out / "trials")))
    finally:
        for p in procs:  # ours only, by their handles
            if p.is_alive():
                p.terminate()
                p.join(5)
    return study
