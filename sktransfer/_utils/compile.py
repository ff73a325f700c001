"""``compile=``: forward passes through :func:`torch.compile`, eager where it
cannot compile the module.

An estimator keeps its uncompiled module as the fitted attribute (what pickles
and :func:`sktransfer.save` store) and wraps it in a :class:`CompiledModule`
for the forward passes of one ``fit``, ``predict`` or ``transform`` only.
Wrapping the same module again reuses torch's compiled code (its cache is keyed
by the module's code and guarded by its state), so only the first call of a
process pays for compilation.
"""

import inspect

import torch
from torch import nn
from .caller import warn

#: The constraint of ``compile=`` (``_parameter_constraints``).
CONSTRAINT = ["boolean", dict]


def compile_options(compile):
    """The keyword arguments of :func:`torch.compile` that ``compile`` asks
    for (``{}`` for True), or None for eager; raises ValueError for a dict
    naming an argument torch.compile does not take."""
    if not isinstance(compile, dict):
        return {} if compile else None
    accepted = set(inspect.signature(torch.compile).parameters) - {"model"}
    unknown = sorted(set(compile) - accepted)
    if unknown:
        raise ValueError(f"compile={compile!r:.120}: torch.compile takes no argument "
                         f"{', '.join(map(repr, unknown))}; it takes "
                         f"{', '.join(sorted(accepted))}.")
    return dict(compile)


def compiled(module, compile):
    """``module`` itself when ``compile`` is False, else a :class:`CompiledModule`
    around it."""
    options = compile_options(compile)
    return module if options is None else CompiledModule(module, options)


def _out_of_memory(exc):
    """Whether ``exc``, or an error it was raised from, is running out of memory."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


class CompiledModule(nn.Module):
    """Calls ``torch.compile(module, **options)``; runs ``module`` eagerly, with
    a warning, when its first call fails to compile.

    torch.compile compiles at the first call, and raises then, in many kinds
    for one cause (no C compiler, an unsupported Python or operator), so that
    call alone is guarded: when it fails, ``module`` runs eagerly; if that
    fails too, the eager error (the model's own) is raised and nothing is
    blamed on compiling. Running out of memory is raised as it is, and later
    calls are never caught.

    ``module`` is its only submodule, so ``train()``, ``eval()`` and ``to()``
    reach it; other attributes are read from it. The compiled callable is not
    part of its state: a copy or a pickle compiles again (from torch's cache).
    """

    def __init__(self, module, options):
        super().__init__()
        self.module = module
        self.options = dict(options)
        self._reset()

    def _reset(self):
        # Set past nn.Module's __setattr__, which would register the compiled
        # module as a second submodule (and its parameters twice).
        object.__setattr__(self, "_compiled", None)
        object.__setattr__(self, "_eager", False)

    def forward(self, *args, **kwargs):
        if self._eager:
            return self.module(*args, **kwargs)
        if self._compiled is not None:
            return self._compiled(*args, **kwargs)
        try:
            compiled_module = torch.compile(self.module, **self.options)
            out = compiled_module(*args, **kwargs)
        except Exception as exc:  # torch raises many kinds for one cause
            if _out_of_memory(exc):
                raise
            failure = exc
        else:
            object.__setattr__(self, "_compiled", compiled_module)
            return out
        # Outside the except block: a model error raised here is the eager one,
        # not chained to the compiler's.
        out = self.module(*args, **kwargs)
        object.__setattr__(self, "_eager", True)
        warn(
            f"compile={self.options or True!r}: torch.compile could not compile "
            f"{type(self.module).__name__} ({type(failure).__name__}: "
            f"{str(failure).strip()[:300]}); running it eagerly instead (same "
            "results, no speed-up). Pass compile=False to silence this warning.",
            RuntimeWarning,
        )
        return out

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module" or "module" not in self.__dict__.get("_modules", {}):
                raise
            return getattr(self._modules["module"], name)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_compiled", None)
        state.pop("_eager", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._reset()
