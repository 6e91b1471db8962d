"""The `kevolve` torch.compile backend: Inductor compiles the graph, KevolvePass swaps in our kernels."""
from __future__ import annotations

import copy
import logging

import torch
from torch._inductor import list_mode_options
from torch._inductor.compile_fx import compile_fx

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

    Raises ValueError naming any unknown option or mode. Where compiling the graph with kevolve's kernels fails
    (with the option `fallback`), the graph as Dynamo gave it is compiled by Inductor alone, with a warning; a
    backward graph, which AOTAutograd compiles at the first backward, is not covered.
    """
    opts = KevolveOptions.from_user(options)
    if mode is not None and mode not in MODES:
        raise ValueError(f"kevolve: unknown mode {mode!r}; known modes: {', '.join(MODES)}")
    patches = dict(list_mode_options(mode)) if mode else {}
    if not opts.fallback:
        return _compile_with_kernels(gm, example_inputs, opts, patches)
    as_given = torch.fx.GraphModule(gm, copy.deepcopy(gm.graph))  # shares gm's parameters, keeps its graph
    as_given.meta.update(gm.meta)
    try:
        return _compile_with_kernels(gm, example_inputs, opts, patches)
    except Exception as e:
        log.warning("kevolve: compiling the graph with kevolve's kernels failed (%s: %s); Inductor alone compiles it",
                    type(e).__name__, e)
        return compile_fx(as_given, example_inputs, config_patches=patches)


def _compile_with_kernels(gm: torch.fx.GraphModule, example_inputs, opts: KevolveOptions, patches: dict):
    """Inductor's compile of `gm` with kevolve's pattern rewrite first and KevolvePass after autograd."""
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
    return compile_fx(gm, example_inputs, config_patches=patches)
