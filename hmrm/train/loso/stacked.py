"""Folds stacked: several LOSO folds trained at once in one process, as one batched network.

A small network leaves a GPU mostly idle: each of its many small kernels launches, runs for
microseconds, and waits for the next. Stacking K folds' weights and running them through
``torch.func.vmap`` turns every kernel into one K times larger, so K folds cost about what one did
(until the device is full). Everything that makes a fold a fold stays per fold and is computed
exactly as :class:`~hmrm.train.loso.fold.Fold` computes it, by that very class:

* its weights start from its own seed (:meth:`Fold.begin`, which also resumes its checkpoint);
* its batches come from its own training subjects in its own shuffled order, MotionMix partners
  from its own training fold, its class weights and input scale from its own training labels and
  inputs; the batches of the K folds are padded to one size, the padding labelled -100, which the
  cross-entropy ignores;
* its dropout masks are drawn, in the same order and shapes, from a generator seeded as the fold's
  own epoch seed, so on the CPU they are the very masks a fold trained alone draws;
* the gradient of each fold's loss goes back into that fold's own network, and its own AdamW (and
  weight average) takes the step, with its own learning-rate schedule; a fold with fewer steps
  in an epoch sits the extra steps out;
* its test-curve predictions, checkpoints, final prediction and ``result.json`` are written by
  the same methods, so a run folder cannot tell which engine trained it, and either engine resumes
  the other's checkpoints.

What differs is rounding: batched matrix products, a padded last batch and the pure-PyTorch
selective scan (the compiled CPU loops cannot be batched by vmap) add and multiply in another
order than a fold alone does, so the trained weights agree to rounding, not bit for bit, and the
difference can grow over many epochs (``tests/test_stacked.py`` states the tolerance). On a CPU
stacking brings no speed: one thread is busy either way, and the compiled CPU scan gives way to
the pure-PyTorch one, several times slower and hungrier for memory (use ``workers`` there); it is
for GPUs.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
from torch.func import functional_call, grad_and_value, vmap
from tqdm.auto import tqdm

from .fold import Fold
from .fold_parts import EpochDraws, Stopped

#: The selective-scan backend of the stacked network: plain tensor code that vmap can batch.
STACKED_SCAN = "parallel"
#: Share of the free device memory that stacked folds may fill when the group size is chosen.
MEMORY_SHARE = 0.7
#: Folds stacked on a CPU unless told otherwise: stacking brings a CPU no speed, and the
#: pure-PyTorch scan's states take memory in proportion (8 folds of the demo's HMRM: about 10 GB).
CPU_STACK = 2


class MaskQueue:
    """The dropout masks of one stacked call, consumed in call order by the :class:`GivenDropout`
    modules of one stacked network (each network has its own queue)."""

    def __init__(self) -> None:
        self.masks: list = []


class GivenDropout(nn.Module):
    """Stands in for ``nn.Dropout`` in the stacked network: multiplies by the next mask of its
    network's queue (already divided by 1 - p, as dropout does)."""

    def __init__(self, p: float, queue: MaskQueue) -> None:
        super().__init__()
        self.p, self.queue = p, queue

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        return x * self.queue.masks.pop(0)


@dataclass
class _Plan:
    """One fold's part of a stacked epoch: its draws (None when it sits the epoch out), the generator
    of its dropout masks, and its running loss and correct count over its ``n`` training clips."""

    n: int
    draws: EpochDraws | None = None
    gen: torch.Generator | None = None
    loss: float = 0.0
    correct: int = 0

    @property
    def steps(self) -> int:
        return self.draws.steps if self.draws is not None else 0


def dropout_calls(model, x, boxes) -> list[tuple[float, tuple[int, ...]]]:
    """(p, shape after the batch axis) of every dropout that draws a mask in one training forward
    of ``model``, in call order (found by running it once on ``x``, ``boxes``)."""
    calls = []
    hooks = [m.register_forward_pre_hook(lambda mod, inp: calls.append((mod.p, tuple(inp[0].shape[1:]))))
             for m in model.modules() if isinstance(m, nn.Dropout)]
    was = model.training
    model.train()
    try:
        with torch.no_grad():
            model(x, boxes)
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    return [(p, shape) for p, shape in calls if p > 0]


def _stacked_network(model, queue: MaskQueue):
    """A copy of ``model`` whose dropouts take their masks from ``queue`` and whose selective scans run
    the vmap-able backend: the module ``functional_call`` runs with the stacked weights."""
    base = copy.deepcopy(model)
    for module in list(base.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Dropout):
                setattr(module, child_name, GivenDropout(child.p, queue))
        if hasattr(module, "backend") and isinstance(module.backend, str):
            module.backend = STACKED_SCAN
    return base.train()


class StackedFolds:
    """K folds (same configuration and data) trained in lockstep; see the module docstring."""

    def __init__(self, folds: list[Fold]):
        if not folds:
            raise ValueError("no folds to stack")
        self.folds = folds
        self.config, self.device = folds[0].config, folds[0].device
        if folds[0].amp_dtype is not None:
            raise ValueError("stacked folds train in float32: run without amp, or with the local engine")
        self.runs = [f.begin() for f in folds]
        first = folds[0].train
        self.calls = dropout_calls(self.runs[0].model, first.x[:1] / first.scale_t, first.boxes[:1])
        self.queue = MaskQueue()
        self.base = _stacked_network(self.runs[0].model, self.queue)
        self.buffers = {k: torch.stack([dict(r.model.named_buffers())[k] for r in self.runs])
                        for k, _ in self.runs[0].model.named_buffers()}
        self._step = None

    def _grad_fn(self):
        base, smoothing, queue = self.base, self.config.label_smoothing, self.queue

        def loss(params, buffers, x, boxes, y, cw, masks):
            queue.masks = list(masks)
            out = functional_call(base, (params, buffers), (x, boxes))
            return base.loss(out, y, cw, label_smoothing=smoothing), out["logits"]

        return vmap(grad_and_value(loss, has_aux=True), randomness="error")

    def _params(self):
        names = [n for n, _ in self.runs[0].model.named_parameters()]
        per_fold = [dict(r.model.named_parameters()) for r in self.runs]
        return {n: torch.stack([p[n].detach() for p in per_fold]) for n in names}

    def epoch(self, epoch: int, active: list[bool]) -> list[dict | None]:
        """Train epoch ``epoch`` (1-based) of every active fold; each one's loss and training
        accuracy (None for a fold that sits the epoch out)."""
        dev, bs = self.device, self.config.batch_size
        if self._step is None:
            self._step = self._grad_fn()
        plans = []
        for f, on in zip(self.folds, active):
            plan = _Plan(len(f.train_idx))
            if on:  # the fold's own draws, as it makes them alone
                plan.draws = f.epoch_draws(epoch)
                plan.gen = torch.Generator(dev).manual_seed(plan.draws.torch_seed)
            plans.append(plan)
        spare = torch.Generator(dev).manual_seed(0)  # masks of folds sitting a step out: never used
        for i in range(max(p.steps for p in plans)):
            xs, bxs, ys, masks, live = [], [], [], [[] for _ in self.calls], []
            for f, plan, run in zip(self.folds, plans, self.runs):
                on = i < plan.steps
                live.append(on)
                if on:
                    xb, bb, yb = f.batch(plan.draws, epoch, i, run.opt)
                else:  # any samples: the fold's result is thrown away
                    it = torch.arange(min(bs, plan.n), device=dev)
                    xb, bb, yb = f.train.x[it], f.train.boxes[it], f.train.labels[it]
                gen, b = (plan.gen if on else spare), len(yb)
                for j, (p, shape) in enumerate(self.calls):  # the fold's masks, in its own draw order
                    m = torch.empty((b, *shape), device=dev).bernoulli_(1 - p, generator=gen).div_(1 - p)
                    masks[j].append(torch.cat([m, m.new_ones((bs - b, *shape))]) if b < bs else m)
                pad = bs - b
                x = xb / f.train.scale_t
                xs.append(torch.cat([x, x.new_zeros((pad, *x.shape[1:]))]) if pad else x)
                bxs.append(torch.cat([bb, bb[:1].expand(pad, *bb.shape[1:])]) if pad else bb)
                ys.append(torch.cat([yb, yb.new_full((pad,), -100)]) if pad else yb)
            cw = torch.stack([f.train.class_weights.to(dev) for f in self.folds])
            grads, (loss, logits) = self._step(self._params(), self.buffers, torch.stack(xs), torch.stack(bxs),
                                               torch.stack(ys), cw, [torch.stack(m) for m in masks])
            for k, (plan, run) in enumerate(zip(plans, self.runs)):
                if not live[k]:
                    continue
                for name, param in run.model.named_parameters():
                    param.grad = grads[name][k]
                run.opt.step()
                if run.ema is not None:
                    run.ema.update_parameters(run.model)
                b = min(bs, plan.n - i * bs)
                plan.loss += float(loss[k].detach()) * b
                plan.correct += int((logits[k, :b].detach().argmax(1) == ys[k][:b]).sum())
        return [{"epoch": epoch, "loss": p.loss / p.n, "train_accuracy": p.correct / p.n} if on else None
                for p, on in zip(plans, active)]

    def run(self, progress: bool = False, stop: Callable[[str, int], bool] | None = None,
            on_result: Callable[[dict], None] | None = None) -> list[dict] | None:
        """Train every fold to the last epoch and return their results (``on_result`` is called
        with each as it is written); None when ``stop`` paused them (after checkpoints)."""
        cfg = self.config
        t0 = [time.perf_counter() - r.seconds for r in self.runs]
        start = min(r.start for r in self.runs)
        for r in self.runs:
            r.model.train()
        done = [False] * len(self.folds)
        results: list[dict | None] = [None] * len(self.folds)
        bar = tqdm(range(start, cfg.epochs), initial=start, total=cfg.epochs, unit="epoch", leave=False,
                   desc=f"  {len(self.folds)} folds stacked", disable=not progress)
        stopped = False
        try:
            for e in bar:
                epoch = e + 1
                active = [not d and r.start < epoch for d, r in zip(done, self.runs)]
                recs = self.epoch(epoch, active)
                for k, (f, run, rec) in enumerate(zip(self.folds, self.runs, recs)):
                    if rec is None:
                        continue
                    try:
                        last = f.end_epoch(run, rec, t0[k], stop)
                    except Stopped:
                        stopped = done[k] = True
                        continue
                    if last:
                        done[k] = True
                        results[k] = f.finish(run, t0[k])
                        if on_result is not None:
                            on_result(results[k])
                if stopped or all(done):
                    break
        finally:
            bar.close()
        return None if stopped else results


def fold_bytes(fold: Fold) -> float:
    """Device memory one more stacked fold needs, on CUDA: its weights four times over (weights,
    gradients, AdamW's two moments; five with a weight average) plus what one training step of one
    batch holds, measured on a copy of a fresh network (nothing of the fold changes)."""
    model, t = fold.begin().model, fold.train
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    torch.cuda.synchronize(fold.device)
    torch.cuda.reset_peak_memory_stats(fold.device)
    before = torch.cuda.memory_allocated(fold.device)
    it = torch.arange(min(fold.config.batch_size, len(fold.train_idx)), device=fold.device)
    out = model(t.x[it] / t.scale_t, t.boxes[it])
    model.loss(out, t.labels[it], t.class_weights.to(fold.device)).backward()
    step = torch.cuda.max_memory_allocated(fold.device) - before
    return float(step + (5 if fold.config.ema else 4) * params)


def group_size(requested: int | None, n_folds: int, first: Fold) -> int:
    """How many folds to stack: ``requested`` when given; on the CPU :data:`CPU_STACK`; on CUDA as
    many as :data:`MEMORY_SHARE` of the free memory holds at :func:`fold_bytes` of ``first`` each,
    at least one."""
    if requested:
        return max(1, min(requested, n_folds))
    if first.device.type != "cuda":
        return min(CPU_STACK, n_folds)
    free, _ = torch.cuda.mem_get_info(first.device)
    return int(max(1, min(n_folds, MEMORY_SHARE * free // fold_bytes(first))))
