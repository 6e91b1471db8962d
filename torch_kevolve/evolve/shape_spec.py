"""`--shape-spec "name=value,..."`: edit a family's example problem into the problem a user names."""
from __future__ import annotations

import dataclasses

import torch

from ..key import Problem

_TRUE, _FALSE = ("1", "true", "yes"), ("0", "false", "no")


def apply_spec(template: Problem, spec: str) -> Problem:
    """`template` with the dims, params and dtypes that `spec` names replaced; ValueError naming what is wrong."""
    dims, params, dtypes = dict(template.dims), dict(template.params), dict(template.dtypes)
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, text = item.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not text:
            raise ValueError(f"shape spec item {item!r} is not name=value")
        if name in dims:
            dims[name] = _integer(name, text)
        elif name in params:
            params[name] = _like(name, text, params[name])
        elif name in dtypes:
            if not isinstance(getattr(torch, text, None), torch.dtype):
                raise ValueError(f"{name}={text}: not a torch dtype")
            dtypes[name] = text
        else:
            raise ValueError(f"{template.op} has no {name!r}; its names are dims {sorted(dims)}, params "
                             f"{sorted(params)}, dtypes {sorted(dtypes)}")
    return dataclasses.replace(template, dims=tuple(dims.items()), params=tuple(params.items()),
                               dtypes=tuple(dtypes.items()))


def _integer(name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name}={text}: expected an integer") from None
    if value < 0:
        raise ValueError(f"{name}={text}: must not be negative")
    return value


def _like(name: str, text: str, current):
    if isinstance(current, bool):
        if text.lower() not in _TRUE + _FALSE:
            raise ValueError(f"{name}={text}: expected true or false")
        return text.lower() in _TRUE
    if isinstance(current, int):
        return _integer(name, text) if not text.startswith("-") else -_integer(name, text[1:])
    return text
