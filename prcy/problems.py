"""The problems on the Python side: each problem's default loss, a mixture's cluster law, and the one
place where a loss given by name, as a published plugin, as ``"module:attr"`` or as a capsule becomes
the ``"prcy.Loss.v2"`` capsule the kernels run (``prcy.kernels.losses``; labels: ``prcy.kernels.problems``).

Loss plugins. A package publishes a loss under the entry-point group ``prcy.losses`` (``--loss NAME``),
or a user names one as ``"module:attr"``. Either way the object must be a ``"prcy.Loss.v2"`` capsule or
a function marked with ``loss_factory`` (called without arguments, it returns one); prcy calls nothing
else. Importing the module runs its code: a loss reference, on the command line or in a grid file,
names code to run. Whatever the import or the factory raises (``SystemExit`` included; not Ctrl-C)
becomes a ``ValueError`` naming the loss.
"""
from __future__ import annotations

from prcy.options import DEFAULT_LOSS, check_loss_reference, plugin_losses

FACTORY_MARK = "__prcy_loss_factory__"

# a Gaussian mixture's clusters c and their probabilities (Mignacco et al. 2020, eqs 1-3): the law that
# prcy.kernels.dynamics draws the simulations' inputs from and prcy.dmft the effective process's samples
CLUSTERS = {"mixture-2": ((1.0, -1.0), (0.5, 0.5)), "mixture-3": ((0.0, 1.0, -1.0), (0.5, 0.25, 0.25))}


def loss_factory(func):
    """Mark ``func`` as a prcy loss factory: a function of no arguments returning a ``"prcy.Loss.v2"``
    capsule, which ``--loss module:func`` (or a published entry point) may call. Usable as a
    decorator, in Python or Cython."""
    setattr(func, FACTORY_MARK, True)
    return func


def _guarded(reference: str, call):
    """``call()``, with anything it raises but Ctrl-C turned into a ``ValueError`` naming the loss."""
    try:
        return call()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:      # SystemExit and the like from code prcy does not own
        raise ValueError(f"loss: {reference!r} could not be loaded ({type(exc).__name__}: {exc})") from None


def load_loss(reference: str, hidden: int = 1):
    """The capsule of a loss given by reference: a name published under the entry-point group
    ``prcy.losses`` or ``"module:attr"`` (see the module docstring); ``ValueError`` naming the loss
    when it cannot be loaded, or when the object is neither a capsule nor a marked factory, or not a
    usable capsule (a ``"prcy.CommitteeLoss.v1"`` capsule for a student with ``hidden > 1`` units)."""
    import importlib

    from prcy.kernels import losses

    check_loss_reference(reference)
    if ":" in reference:
        module, attr = reference.split(":")
        obj = _guarded(reference, lambda: getattr(importlib.import_module(module), attr))
    else:
        obj = _guarded(reference, plugin_losses()[reference].load)
    if callable(obj) and getattr(obj, FACTORY_MARK, False) is True:
        obj = _guarded(reference, obj)
    elif type(obj).__name__ != "PyCapsule":
        raise ValueError(f"loss: {reference!r} is a {type(obj).__name__}; allowed: a prcy.Loss.v2 capsule or a "
                         f"function marked with prcy.problems.loss_factory (prcy calls nothing else)")
    try:
        (losses.check_committee_capsule if hidden > 1 else losses.check_capsule)(obj)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"loss: {reference!r} gives no usable capsule ({exc})") from None
    return obj


def resolve_loss(problem: str, loss=None, hidden: int = 1, **parameters):
    """``(capsule, name recorded in the file)`` for ``loss`` on ``problem``.

    Parameters
    ----------
    problem : str
        The problem, whose default loss (``DEFAULT_LOSS``) is used when ``loss`` is None.
    loss : None, str or capsule
        A built-in loss name (``prcy.kernels.losses.NAMES``), a published name or ``"module:attr"``
        (``load_loss``), or a ``"prcy.Loss.v2"`` capsule (recorded as ``"user capsule"``).
    hidden : int
        The student's hidden units: above 1 the capsule is a committee loss (``"prcy.CommitteeLoss.v1"``;
        a built-in name must be one of ``prcy.kernels.losses.COMMITTEE_NAMES``).
    **parameters
        Values for the built-in losses' parameters (``prcy.kernels.losses.PARAMETERS``: ``smoothing``,
        ``onset``); those the loss does not use are ignored.
    """
    from prcy.kernels import losses

    if loss is None:
        loss = DEFAULT_LOSS[problem]
    if isinstance(loss, str):
        if loss in losses.PARAMETERS:
            missing = [k for k in losses.PARAMETERS[loss] if k not in parameters]
            if missing:
                raise ValueError(f"loss {loss!r}: needs {', '.join(missing)}")
            values = {k: parameters[k] for k in losses.PARAMETERS[loss]}
            if hidden == 1:
                return losses.capsule(loss, **values), loss
            if loss not in losses.COMMITTEE_NAMES:
                raise ValueError(f"loss: {loss!r} has no committee form (hidden = {hidden}); allowed with hidden > 1: "
                                 f"{', '.join(losses.COMMITTEE_NAMES)} or a prcy.CommitteeLoss.v1 capsule")
            return losses.committee_capsule(loss, **values), loss
        return load_loss(loss, hidden), loss
    # TypeError naming the loss when it is not a usable capsule
    (losses.check_committee_capsule if hidden > 1 else losses.check_capsule)(loss)
    return loss, "user capsule"
