"""What the displays share: the lazy matplotlib import, the axes layout and the
docstring entries of what the layout takes and gives."""

import numpy as np

INSTALL_HINT = 'pip install "sktransfer[plot]"'

#: The docstring entries of what :func:`layout_axes` takes and gives, which every
#: display documents alike, written once: a line ``<<name>>`` in a docstring
#: stands for the entry (see :func:`shared_docs`).
SHARED_DOCS = {
    "ax": """ax : matplotlib Axes or array-like of Axes, default=None
    None: a new figure. One Axes: its area is split into the panels (or
    used as is for one panel). Several Axes: one per panel, in order.""",
    "figure_": """figure_ : matplotlib Figure
    The figure holding the panels.""",
    "bounding_ax_": """bounding_ax_ : matplotlib Axes or None
    The Axes passed as ``ax`` and split into the panels, if any.""",
}


def shared_docs(documented):
    """Decorator of a class or function: each line ``<<name>>`` of its docstring
    becomes the entry ``SHARED_DOCS[name]``, indented as the marker line is.

    A docstring stripped by ``python -OO`` (None) is left as it is.
    """
    if documented.__doc__ is None:
        return documented
    lines = []
    for line in documented.__doc__.split("\n"):
        marker = line.strip()
        if marker.startswith("<<") and marker.endswith(">>"):
            indent = line[:len(line) - len(line.lstrip())]
            lines += [indent + entry for entry in SHARED_DOCS[marker[2:-2]].split("\n")]
        else:
            lines.append(line)
    documented.__doc__ = "\n".join(lines)
    return documented


def check_matplotlib(caller):
    """Raise a clear ImportError when matplotlib is missing.

    Called first by every ``from_*`` classmethod and ``plot``, so a missing
    matplotlib is reported before any computation; matplotlib itself is only
    imported inside ``plot``.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError as error:
        raise ImportError(
            f"{caller} requires matplotlib, which is not installed. Install it "
            f"with: {INSTALL_HINT} (or pip install matplotlib)."
        ) from error


def layout_axes(ax, n_panels, *, nrows, ncols, figsize):
    """The Axes to draw ``n_panels`` panels in, as a flat list, and the figure.

    ``ax=None``: a new figure with an ``nrows x ncols`` grid (constrained
    layout). One Axes and one panel: that Axes. One Axes and several panels:
    its area is split into the grid (the Axes itself is turned off), as
    scikit-learn's PartialDependenceDisplay does. An array-like of Axes: used in
    order; it must hold at least ``n_panels``.

    Returns ``(axes, figure, bounding_ax)``: ``axes`` has ``nrows * ncols``
    entries (unused ones turned off), ``bounding_ax`` is the split Axes or None.
    """
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes
    from matplotlib.gridspec import GridSpecFromSubplotSpec

    if ax is None:
        figure, grid = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False,
                                    constrained_layout=True)
        axes = list(grid.ravel())
        bounding = None
    elif isinstance(ax, Axes):
        figure = ax.figure
        if n_panels == 1:
            return [ax], figure, None
        spec = ax.get_subplotspec()
        if spec is None:
            raise ValueError(
                f"{n_panels} panels cannot be laid out in an Axes that is not a "
                "subplot; pass one Axes per panel instead (an array-like of Axes)."
            )
        ax.set_axis_off()
        grid = GridSpecFromSubplotSpec(nrows, ncols, subplot_spec=spec)
        axes = [figure.add_subplot(grid[i]) for i in range(nrows * ncols)]
        bounding = ax
    else:
        axes = list(np.asarray(ax, dtype=object).ravel())
        if len(axes) < n_panels or not all(isinstance(a, Axes) for a in axes):
            raise ValueError(
                f"ax must be None, one matplotlib Axes or at least {n_panels} Axes "
                f"(one per panel); got {len(axes)} objects."
            )
        figure = axes[0].figure
        bounding = None
    for extra in axes[n_panels:]:
        extra.set_axis_off()
    return axes, figure, bounding
