"""The `kevolve` torch.compile backend: Inductor compiles the graph, KevolvePass swaps in our kernels."""
from __future__ import annotations

import copy
import logging

import torch
import torch._inductor.config as inductor_config
from torch._inductor import list_mode_options
from torch._inductor.compile_fx import compile_fx, compile_fx_inner

from ..cache import Dispatcher, ShippedStore, UserStore
from ..patterns import rewrite_patterns
from .cat_inputs import cat_patches
from .options import MODES, KevolveOptions
from .warm_start import static_launch_patches

log = logging.getLogger("torch_kevolve")

__all__ = ["kevolve_backend", "KevolveOptions", "make_dispatcher"]


def make_dispatcher(options: KevolveOptions) -> Dispatcher:
    """The dispatcher over the user cache and the shipped cache (if enabled); unreadable stores are skipped."""
    return Dispatcher(UserStore(options.cache_dir), ShippedStore() if options.shipped_cache else None)


def kevolve_backend(gm: torch.fx.GraphModule, example_inputs, *, options: dict | None = None, mode: str | None = None):
    """torch.compile backend: `torch.compile(model, backend="kevolve", options={...}, mode=...)`.

    Raises ValueError naming any unknown option or mode. With the option `fallback`, a forward or backward graph
    whose lowering with kevolve's kernels fails is lowered by Inductor alone (`_lower_or_fall_back`), and where the
    compile fails anywhere else, the graph as Dynamo gave it is compiled by Inductor alone; each with a warning.
    """
    opts = KevolveOptions.from_user(options)
    if mode is not None and mode not in MODES:
        raise ValueError(f"kevolve: unknown mode {mode!r}; known modes: {', '.join(MODES)}")
    patches = dict(list_mode_options(mode)) if mode else {}
    if not opts.fallback:
        return _compile_with_kernels(gm, example_inputs, opts, patches)
    as_given = _unchanged_copy(gm)
    try:
        return _compile_with_kernels(gm, example_inputs, opts, patches, inner_compile=_lower_or_fall_back)
    except Exception as e:
        log.warning("kevolve: compiling the graph with kevolve's kernels failed (%s: %s); Inductor alone compiles it",
                    type(e).__name__, e)
        return compile_fx(as_given, example_inputs, config_patches=patches)


def _lower_or_fall_back(gm: torch.fx.GraphModule, example_inputs, **kwargs):
    """Inductor's lowering of one graph after autograd (compile_fx_inner), KevolvePass included; where that fails,
    the graph as AOTAutograd gave it, lowered without the pass."""
    as_given = _unchanged_copy(gm)
    try:
        return compile_fx_inner(gm, example_inputs, **kwargs)
    except Exception as e:
        log.warning("kevolve: lowering the %s graph with kevolve's kernels failed (%s: %s); Inductor alone lowers it",
                    "backward" if kwargs.get("is_backward") else "forward", type(e).__name__, e)
        with inductor_config.patch(post_grad_custom_post_pass=None):
            return compile_fx_inner(as_given, example_inputs, **kwargs)


def _unchanged_copy(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """A copy of `gm`'s graph over the same parameters and buffers, which passes on `gm` leave as it is."""
    copy_ = torch.fx.GraphModule(gm, copy.deepcopy(gm.graph))
    copy_.meta.update(gm.meta)
    return copy_


def _compile_with_kernels(gm: torch.fx.GraphModule, example_inputs, opts: KevolveOptions, patches: dict,
                          inner_compile=compile_fx_inner):
    """Inductor's compile of `gm` with kevolve's pattern rewrite first and KevolvePass after autograd, each graph
    after autograd lowered by `inner_compile`."""
    from .graph_pass import KevolvePass

    patches = dict(patches)
    if opts.patterns:
        replaced = rewrite_patterns(gm)
        if replaced:
            log.debug("kevolve: patterns replaced by pattern ops: %s", ", ".join(replaced))
    patches.update(cat_patches(gm))
    patches.update(static_launch_patches())
    dispatcher = make_dispatcher(opts)
    transfer = None
    if opts.transfer:
        from .transfer import NeighbourTransfer

        transfer = NeighbourTransfer(UserStore(opts.cache_dir), ShippedStore() if opts.shipped_cache else None,
                                     dispatcher, opts.transfer_distance)
    patches["post_grad_custom_post_pass"] = KevolvePass(opts, dispatcher, transfer)
    return compile_fx(gm, example_inputs, inner_compile=inner_compile, config_patches=patches)
