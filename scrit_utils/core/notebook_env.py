"""Keep library noise out of the notebooks that ``scrit run`` saves; show it on its terminal instead.

``scrit run`` (:mod:`scrit_utils.driver`) starts each kernel without ipykernel's capture of the
process's own stderr and runs :func:`setup` in an injected first cell. From then on

- everything written to ``sys.stderr`` -- tqdm progress bars, Python ``logging`` (transformers,
  datasets, ...), ``warnings`` -- goes to the terminal that runs ``scrit run``, not into the
  saved notebook; ``print`` output, tables, figures and errors still go to the notebook;
- ``tqdm.auto`` is the plain terminal bar (never the notebook widget);
- transformers' ``Trainer`` uses its terminal progress bar instead of the HTML "Training Loss"
  table it shows inside notebooks;
- inline figures are embedded as previews: 90 dpi, reduced to a 64-colour palette (the full
  resolution PNG/PDF are saved under ``results/figures/``), about a third of the bytes of a
  plain inline PNG, which keeps an executed notebook small.

An interactive session (JupyterLab) does not call :func:`setup` and keeps its progress bars.

Usage (what the driver injects)::

    from scrit_utils.core import notebook_env
    notebook_env.setup()
"""
from __future__ import annotations

import io
import sys
import warnings

INLINE_DPI = 90
INLINE_COLORS = 64


def _to_terminal(message, category, filename, lineno, file=None, line=None) -> None:
    term = sys.__stderr__
    if term is not None:
        term.write(warnings.formatwarning(message, category, filename, lineno, line))
        term.flush()


def setup() -> None:
    """Route stderr, warnings and progress bars to the process's own stderr (the terminal)."""
    term = sys.__stderr__
    if term is None:  # no terminal: nothing to route to
        return
    sys.stderr = term
    warnings.showwarning = _to_terminal
    import tqdm.auto
    import tqdm.std

    tqdm.auto.tqdm, tqdm.auto.trange = tqdm.std.tqdm, tqdm.std.trange
    _preview_figures()
    try:
        import transformers.utils as tu
        import transformers.utils.import_utils as tiu
    except ImportError:  # pragma: no cover - transformers is a dependency
        return
    tu.is_in_notebook = tiu.is_in_notebook = lambda: False
    trainer = sys.modules.get("transformers.trainer")
    if trainer is not None:  # already imported (not the case in a fresh kernel)
        from transformers.trainer_callback import ProgressCallback

        trainer.DEFAULT_PROGRESS_CALLBACK = ProgressCallback


def png_preview(fig) -> bytes:
    """A small PNG of ``fig``: ``INLINE_DPI``, quantised to ``INLINE_COLORS`` colours."""
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=INLINE_DPI, bbox_inches="tight")
    img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB").quantize(colors=INLINE_COLORS,
                                                                         method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    img.save(out, format="png", optimize=True)
    return out.getvalue()


def _preview_figures() -> None:
    """Show figures as :func:`png_preview`. The inline backend registers its own formatter when its
    module is imported (at the first figure otherwise), so it is imported here first and replaced."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None:
            return
        import matplotlib.pyplot  # noqa: F401
        import matplotlib_inline.backend_inline  # noqa: F401 - registers the inline formatter now
        from matplotlib.figure import Figure

        shell.display_formatter.formatters["image/png"].for_type(Figure, png_preview)
    except Exception:  # no IPython or no matplotlib: nothing to configure
        pass
