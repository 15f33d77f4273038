"""Distributed training on CPU: 2 processes, gloo backend, torchrun-style environment.

The workers run in a separate Python (a script written to tmp_path, started with torch.multiprocessing.spawn),
so the test does not depend on how pytest imports this module."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from ptsnn.train import distributed as D

WORKER = textwrap.dedent(r'''
    import io, json, os, sys
    from pathlib import Path
    import numpy as np
    import torch
    import torch.multiprocessing as mp

    def toy():
        from ptsnn.data.corpus import Corpus, Utterance
        rng = np.random.default_rng(0)
        classes = ("a", "b", "c")
        pats = rng.normal(size=(3, 12))
        utts, feats = [], {}
        for s in range(4):
            split = "test" if s == 3 else "valid" if s == 2 else "train"
            for c, lab in enumerate(classes):
                for i in range(3):
                    uid = f"s{s}{lab}{i}"
                    utts.append(Utterance(Path(f"/x/{uid}.wav"), lab, f"spk{s}", uid, s + 1, split))
                    feats[uid] = (pats[c] + rng.normal(size=(int(rng.integers(15, 40)), 12))).astype(np.float32)
        return Corpus("toy", Path("/x"), tuple(utts), classes), feats

    TINY = ["model.hidden=16", "model.blocks=1", "model.key_dim=8", "model.value_dim=8", "model.prompts=2",
            "model.input_dim=12", "train.batch_size=4", "train.max_frames=30", "train.lr=0.01"]

    def step_worker(rank, out):
        from ptsnn.train import distributed as D
        from ptsnn.train.config import load_config
        from ptsnn.train.model import PTSSNN
        from ptsnn.train.dataset import FeatureDataset
        from ptsnn.train.trainer import evaluate
        os.environ["RANK"] = os.environ["LOCAL_RANK"] = str(rank)
        ctx = D.init_distributed("cpu")
        assert ctx.enabled and ctx.world_size == 2 and ctx.rank == rank
        assert torch.distributed.get_backend() == "gloo"
        cfg = load_config("small", TINY + ["model.num_classes=3"])
        torch.manual_seed(100 + rank)  # deliberately different initialisations and data per rank
        model = PTSSNN(cfg.model)
        x = torch.randn(4, 25, 12)
        lengths = torch.tensor([25, 20, 12, 25])
        model.data_init(x, lengths)
        torch.save({k: v.clone() for k, v in model.state_dict().items()}, out / f"init{rank}.pt")
        net = D.wrap_model(model, ctx)
        opt = torch.optim.AdamW(model.parameters(), lr=0.01)
        y = torch.randint(0, 3, (4,))
        loss = torch.nn.functional.cross_entropy(net(x, lengths).logits, y)
        loss.backward()
        opt.step()
        torch.save({k: v.clone() for k, v in model.state_dict().items()}, out / f"after{rank}.pt")
        # sharded evaluation gathers every example exactly once
        corpus, feats = toy()
        ds = FeatureDataset.from_split(corpus, corpus.utterances, feats)
        m, rates = evaluate(model, ds, corpus.classes, 5, ctx)
        json.dump({"metrics": m.to_dict(), "rates": rates}, open(out / f"eval{rank}.json", "w"))
        D.cleanup(ctx)

    def train_worker(rank, out):
        from ptsnn.train.config import load_config
        from ptsnn.train.trainer import train
        os.environ["RANK"] = os.environ["LOCAL_RANK"] = str(rank)
        corpus, feats = toy()
        cfg = load_config("small", TINY + ["train.epochs=2", "train.qat_epochs=1"])
        from rich.console import Console
        buf = io.StringIO()
        r = train(cfg, corpus, out / "run", qat=True, features=feats, progress=False, device="cpu",
                  console=Console(file=buf, width=200))
        import torch.distributed as dist
        assert not dist.is_initialized()  # train() cleaned up the group it started
        (out / f"log{rank}.txt").write_text(buf.getvalue())
        json.dump({"summary": r.summary(), "loss": [h.train_loss for h in r.history]},
                  open(out / f"result{rank}.json", "w"))
        from ptsnn.train.checkpoint import load_model  # rank's final (QAT) weights vs the written checkpoint
        torch.save({k: v for k, v in load_model(out / "run" / "qat.pt")[0].state_dict().items()},
                   out / f"ckpt_seen_by{rank}.pt")

    if __name__ == "__main__":
        which, out = sys.argv[1], Path(sys.argv[2])
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=sys.argv[3], WORLD_SIZE="2")
        mp.spawn(step_worker if which == "step" else train_worker, args=(out,), nprocs=2, join=True)
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_workers(tmp_path: Path, which: str) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run([sys.executable, str(script), which, str(tmp_path), str(free_port())], env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_single_process_context_without_torchrun_env(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    ctx = D.init_distributed("cpu")
    assert not ctx.enabled and ctx.is_main and ctx.world_size == 1
    model = torch.nn.Linear(2, 2)
    assert D.wrap_model(model, ctx) is model
    assert D.train_sampler(list(range(5)), ctx, 0) is None
    assert D.shard(range(5), ctx) == [0, 1, 2, 3, 4]
    assert D.gather_objects("x", ctx) == ["x"]


def test_shard_covers_every_index_once():
    a = D.shard(range(7), D.DistContext(rank=0, world_size=2, enabled=True))
    b = D.shard(range(7), D.DistContext(rank=1, world_size=2, enabled=True))
    assert sorted(a + b) == list(range(7)) and not set(a) & set(b)


def test_missing_master_addr_is_an_input_error(monkeypatch):
    from ptsnn.errors import InputError

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(InputError, match="MASTER_ADDR"):
        D.init_distributed("cpu")


def test_two_ranks_identical_parameters_after_a_step(tmp_path):
    run_workers(tmp_path, "step")
    init = [torch.load(tmp_path / f"init{r}.pt", weights_only=True) for r in (0, 1)]
    after = [torch.load(tmp_path / f"after{r}.pt", weights_only=True) for r in (0, 1)]
    # the ranks started from different weights (different seeds, different data_init batches) ...
    assert any(not torch.equal(init[0][k], init[1][k]) for k in init[0])
    # ... DDP made rank 0's the common start, and the averaged gradient step kept them identical
    for k in after[0]:
        assert torch.equal(after[0][k], after[1][k]), k
    assert any(not torch.equal(after[0][k], init[0][k]) for k in after[0] if after[0][k].is_floating_point())
    e0, e1 = (json.loads((tmp_path / f"eval{r}.json").read_text()) for r in (0, 1))
    assert e0 == e1
    assert e0["metrics"]["count"] == 36  # every utterance once, although 36 / 5 batches per 2 ranks is uneven


def test_distributed_trainer_rank0_writes_and_ranks_agree(tmp_path):
    run_workers(tmp_path, "train")
    r0, r1 = (json.loads((tmp_path / f"result{r}.json").read_text()) for r in (0, 1))
    assert r0["summary"]["float"] == r1["summary"]["float"] and r0["summary"]["qat"] == r1["summary"]["qat"]
    assert r0["loss"] == r1["loss"]  # the reported loss is the all-reduced mean
    assert r0["summary"]["float"]["valid"]["count"] == 9 and r0["summary"]["float"]["test"]["count"] == 9
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == ["float.pt", "metrics.json", "qat.pt"]
    seen0, seen1 = (torch.load(tmp_path / f"ckpt_seen_by{r}.pt", weights_only=True) for r in (0, 1))
    assert all(torch.equal(seen0[k], seen1[k]) for k in seen0)
    log0, log1 = ((tmp_path / f"log{r}.txt").read_text() for r in (0, 1))
    assert "world size 2" in log0 and "summary" in log0
    assert log1 == ""  # only rank 0 prints
