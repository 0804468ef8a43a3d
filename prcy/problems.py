"""The problems on the Python side: each problem's default loss, and the one place where a loss
given by name, as ``"module:function"`` or as a capsule becomes the ``"prcy.Loss.v2"`` capsule the
kernels run (``prcy.kernels.losses``; labels: ``prcy.kernels.problems``)."""
from __future__ import annotations

from prcy.options import DEFAULT_LOSS


def resolve_loss(problem: str, loss=None, **parameters):
    """``(capsule, name recorded in the file)`` for ``loss`` on ``problem``.

    Parameters
    ----------
    problem : str
        The problem, whose default loss (``DEFAULT_LOSS``) is used when ``loss`` is None.
    loss : None, str or capsule
        A built-in loss name (``prcy.kernels.losses.NAMES``), ``"module:function"`` (see
        ``prcy.specs.load_loss``) or a ``"prcy.Loss.v2"`` capsule (recorded as ``"user capsule"``).
    **parameters
        Values for the built-in losses' parameters (``prcy.kernels.losses.PARAMETERS``: ``smoothing``,
        ``onset``); those the loss does not use are ignored.
    """
    from prcy.kernels import losses
    from prcy.specs import load_loss

    if loss is None:
        loss = DEFAULT_LOSS[problem]
    if isinstance(loss, str):
        if loss in losses.PARAMETERS:
            missing = [k for k in losses.PARAMETERS[loss] if k not in parameters]
            if missing:
                raise ValueError(f"loss {loss!r}: needs {', '.join(missing)}")
            return losses.capsule(loss, **{k: parameters[k] for k in losses.PARAMETERS[loss]}), loss
        return load_loss(loss), loss
    losses.check_capsule(loss)        # TypeError naming the loss when it is not a usable capsule
    return loss, "user capsule"
