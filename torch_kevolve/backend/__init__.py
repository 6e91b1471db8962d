"""The `kevolve` torch.compile backend: Inductor compiles the graph, KevolvePass swaps in our kernels."""
from __future__ import annotations

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

    Raises ValueError naming any unknown option or mode.
    """
    from .graph_pass import KevolvePass

    opts = KevolveOptions.from_user(options)
    if mode is not None and mode not in MODES:
        raise ValueError(f"kevolve: unknown mode {mode!r}; known modes: {', '.join(MODES)}")
    if opts.patterns:
        replaced = rewrite_patterns(gm)
        if replaced:
            log.debug("kevolve: patterns replaced by pattern ops: %s", ", ".join(replaced))
    patches = dict(list_mode_options(mode)) if mode else {}
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
