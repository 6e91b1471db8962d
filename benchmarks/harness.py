"""Measure one model under several contenders (eager, Inductor, kevolve...) the same way, in one process.

Each contender gets a fresh copy of the model and a fresh Dynamo state; its first calls are its compile times,
cold: in-memory compile caches cleared, on-disk ones (Inductor's code and Triton's binaries) in a new empty
directory, graph caches off (as kevolve's decision collector has them). The training step's compile is also
timed with warm caches: a fresh Dynamo compiles it again from the on-disk caches a priming compile filled
(graph caches on), as a user's second process would;
then the forward step (under no_grad) and the training step (forward + backward, gradients set to None first)
are timed by `median_us` and, on CUDA, by the profiler's kernel time; peak memory is measured over one step.
Losses and gradients are checked against a `Reference`: a float64 copy of the model's, or eager's.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import gc
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, ContextManager

import torch
import torch._functorch.config as functorch_config
import torch._inductor.config as inductor_config
from torch._inductor.utils import clear_caches, fresh_cache

from torch_kevolve.evolve.timing import median_us

from .device_time import kernel_profile


@dataclass(frozen=True)
class Tolerance:
    """Largest relative errors against the reference: of the loss, and of the gradients (see `max_grad_error`)."""

    loss: float
    grad: float

    def at_least_twice(self, *baselines: "Result") -> "Tolerance":
        """This tolerance, widened to twice the largest errors of the baselines' own results (eager's, Inductor's)
        against the reference: a reassociation Inductor itself makes (wide fp32 GEMM chains, as in DCN-v2's cross
        layers), or a ReLU that eager's rounding flips against float64's, is not a kernel error."""
        return Tolerance(max(self.loss, *(2 * (b.loss_rel_err or 0.0) for b in baselines)),
                         max(self.grad, *(2 * (b.grad_rel_err or 0.0) for b in baselines)))


@dataclass(frozen=True)
class Contender:
    """A way to run a model: `wrap(model)` gives the callable; `watch()` is entered around its whole measurement
    and what it yields is kept (kevolve's node decisions)."""

    name: str
    wrap: Callable[[torch.nn.Module], Callable]
    watch: Callable[[], ContextManager] = contextlib.nullcontext


@dataclass(frozen=True)
class Phase:
    """One kind of step of one contender: times in us, peak memory of one step in MiB, first call in s (cold
    caches; `warm_call_s`: warm on-disk caches, measured for the training step, with `warm_call_caches`: how
    Inductor's FX graph cache and AOTAutograd's cache answered that compile, hits/misses/bypasses by name;
    `top_kernels`: the TOP_KERNELS longest GPU kernels of one step by name, us, where the kernel time goes;
    `top_kernel_launches`: how many times one step launches each of them)."""

    wall_us: float
    kernel_us: float | None
    peak_mib: float | None
    first_call_s: float
    warm_call_s: float | None = None
    warm_call_caches: dict | None = None
    top_kernels: dict[str, float] | None = None
    top_kernel_launches: dict[str, float] | None = None


@dataclass
class Result:
    """A contender's phases ("forward", "train"), its errors against the reference and, where counted, the graphs
    Dynamo compiled for it."""

    name: str
    phases: dict[str, Phase] = field(default_factory=dict)
    loss_rel_err: float | None = None
    grad_rel_err: float | None = None
    grad_where: str | None = None
    watched: object = None
    graphs_compiled: int | None = None

    def within(self, tol: Tolerance) -> bool:
        return (self.loss_rel_err is not None and self.loss_rel_err <= tol.loss
                and (self.grad_rel_err is None or self.grad_rel_err <= tol.grad))


@dataclass(frozen=True)
class Reference:
    """The loss and gradients every contender is checked against: eager's on the inputs, or (`float64`) those of
    a float64 copy of the model on float64 inputs."""

    loss: float
    grads: dict[str, torch.Tensor]

    @staticmethod
    def of(model: torch.nn.Module, inputs: tuple) -> "Reference":
        loss = train_step(model, inputs).item()
        grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
        model.zero_grad(set_to_none=True)
        return Reference(loss, grads)

    @staticmethod
    def float64(model: torch.nn.Module, inputs: tuple) -> "Reference":
        """The reference of a float64 copy of `model` on `inputs` with floating tensors made float64 (gradients
        keyed by the model's own parameter names)."""
        exact = copy.deepcopy(model).double()
        wide = tuple(x.double() if isinstance(x, torch.Tensor) and x.is_floating_point() else x for x in inputs)
        return Reference.of(exact, wide)


def train_step(model: Callable, inputs: tuple) -> torch.Tensor:
    """Forward + backward; gradients are replaced, not accumulated."""
    model.zero_grad(set_to_none=True)
    loss = model(*inputs)
    loss.backward()
    return loss


def forward_step(model: Callable, inputs: tuple) -> torch.Tensor:
    with torch.no_grad():
        return model(*inputs)


def rel_err(got: float, want: float) -> float:
    return abs(got - want) / max(abs(want), 1e-12)


def max_grad_error(model: torch.nn.Module, ref: Reference) -> tuple[float, str]:
    """Largest gradient difference against the reference relative to the parameter's largest eager gradient
    (at least 1e-3 of the model's largest: a gradient that is zero in exact arithmetic, such as a bias before
    a softmax, holds only rounding noise), and the parameter where it is; inf where only one side has a gradient."""
    floor = 1e-3 * max(g.abs().max().item() for g in ref.grads.values())
    worst, where = 0.0, ""
    for name, p in model.named_parameters():
        if (p.grad is None) != (name not in ref.grads):
            return float("inf"), name
        if p.grad is None:
            continue
        want = ref.grads[name].float()
        err = ((p.grad.float() - want).abs().max() / want.abs().max().clamp_min(max(floor, 1e-30))).item()
        if err > worst:
            worst, where = err, name
    return worst, where


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA; nothing to wait for on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _elapsed_s(step: Callable[[], object], device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    step()
    sync(device)
    return time.perf_counter() - start


def _first_call_s(step: Callable[[], object], device: torch.device, scratch: str) -> float:
    with (fresh_cache(dir=scratch, delete=False), inductor_config.patch(fx_graph_cache=False),
          functorch_config.patch(enable_autograd_cache=False)):
        return _elapsed_s(step, device)


def warm_call_s(contender: Contender, base: torch.nn.Module, inputs: tuple, device: torch.device,
                scratch: str) -> tuple[float, dict]:
    """First training step of a fresh Dynamo compiling `contender` from warm on-disk caches in `scratch`: a
    priming compile fills them (graph caches on), then a second compile, also on a fresh copy, is timed. Also
    returns what the graph caches answered the timed compile (cache_answers)."""

    def fresh_compile() -> Callable:
        torch._dynamo.reset()
        clear_caches()  # the in-memory ones: only the on-disk caches stay warm
        return contender.wrap(copy.deepcopy(base))

    with fresh_cache(dir=scratch):
        train_step(fresh_compile(), inputs)
        run = fresh_compile()
        before = cache_answers()
        seconds = _elapsed_s(lambda: train_step(run, inputs), device)
        after = cache_answers()
        return seconds, {name: after[name] - before[name] for name in after}


TOP_KERNELS = 15
CACHE_COUNTERS = {"fx_graph": ("inductor", "fxgraph_cache_"), "aot_autograd": ("aot_autograd", "autograd_cache_")}


def cache_answers() -> dict:
    """Dynamo's running counts of graph-cache answers: {"fx_graph_hit": n, "fx_graph_miss": n, ...}."""
    from torch._dynamo.utils import counters

    return {f"{cache}_{answer}": counters[group][prefix + answer]
            for cache, (group, prefix) in CACHE_COUNTERS.items() for answer in ("hit", "miss", "bypass")}


def peak_mib(step: Callable[[], object], device: torch.device) -> float | None:
    """Most memory one call of `step` holds above what was allocated before it (None off CUDA)."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    step()
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - before) / 2**20


def _phase(step: Callable[[], object], first_call_s: float, model: torch.nn.Module, device: torch.device) -> Phase:
    wall = median_us(step, device)
    kernels = kernel_profile(step) if device.type == "cuda" else None
    model.zero_grad(set_to_none=True)
    if kernels is None:
        return Phase(wall, None, peak_mib(step, device), first_call_s)
    top = list(kernels.items())[:TOP_KERNELS]
    return Phase(wall, sum(us for us, _ in kernels.values()), peak_mib(step, device), first_call_s,
                 top_kernels={name: us for name, (us, _) in top},
                 top_kernel_launches={name: launches for name, (_, launches) in top})


def warm_up_compiler(device: torch.device) -> None:
    """Compile and run a tiny training step, so that one-time costs (imports, compile workers, toolchain checks)
    are not charged to the first contender's compile time."""
    torch._dynamo.reset()
    x, w = torch.randn(8, 8, device=device), torch.randn(8, 8, device=device, requires_grad=True)
    torch.compile(lambda a, b: (a @ b).relu().sum())(x, w).backward()
    sync(device)


def measure(contender: Contender, base: torch.nn.Module, inputs: tuple, ref: Reference, device: torch.device,
            train: bool) -> Result:
    """Compile (first calls), check and time `contender` on a fresh copy of `base`.

    The loss error is the larger of the training step's and the forward step's."""
    torch._dynamo.reset()
    model = copy.deepcopy(base)
    run = contender.wrap(model)
    result = Result(contender.name)
    losses: dict[str, float] = {}  # read at once: a CUDA-graphed step's output is overwritten by the next step
    with tempfile.TemporaryDirectory() as scratch:
        with contender.watch() as watched:
            if train:
                first_train = _first_call_s(lambda: losses.setdefault("train", train_step(run, inputs).item()), device, scratch)
                result.grad_rel_err, result.grad_where = max_grad_error(model, ref)
            first_forward = _first_call_s(lambda: losses.setdefault("forward", forward_step(run, inputs).item()), device, scratch)
            result.loss_rel_err = max(rel_err(loss, ref.loss) for loss in losses.values())
            result.phases["forward"] = _phase(lambda: forward_step(run, inputs), first_forward, model, device)
            if train:
                result.phases["train"] = _phase(lambda: train_step(run, inputs), first_train, model, device)
        del run
        if train:  # outside watch(): kevolve's decision collector turns the graph caches off
            warm, caches = warm_call_s(contender, base, inputs, device, scratch)
            result.phases["train"] = dataclasses.replace(result.phases["train"], warm_call_s=warm,
                                                         warm_call_caches=caches)
    result.watched = watched
    del model
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result
