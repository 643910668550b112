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

Interactive defaults (:func:`load`, which every study notebook's first code cell calls): opened in
JupyterLab (``SCRIT_RUN_SHA`` unset, i.e. not under ``scrit run``), a notebook whose parameter
``profile`` is ``None`` runs on the study's profile (``configs/toy-v3.yaml``, make study's) when that profile's stages
for this notebook are finished under ``artifacts/`` (reading them takes seconds), and otherwise on the
smoke profile (tiny settings, minutes), printing one line that says which and why. Unless the
notebook's ``write_results`` is true, its figures, tables and reports go to ``results/interactive/``
and never overwrite the committed study results under ``results/``. Under ``scrit run`` the driver's
profile and overrides are used as given.

Usage (what the driver injects, and a notebook's first code cell)::

    from scrit_utils.core import notebook_env
    notebook_env.setup()
    cfg = notebook_env.load(profile, overrides, data.stage, write_results)
"""
from __future__ import annotations

import io
import os
import sys
import warnings
from typing import Callable, Sequence

from scrit_utils.core import config
from scrit_utils.core.provenance import RUN_SHA_ENV

INLINE_DPI = 90
INLINE_COLORS = 64
#: the study's profile, read when its stages are cached; else the quick one
STUDY_PROFILE = "configs/toy-v3.yaml"
QUICK_PROFILE = "configs/smoke.yaml"
#: where interactive runs put figures, tables and reports (``run.results_dir``), beside the committed results
INTERACTIVE_RESULTS = "results/interactive"


def under_driver() -> bool:
    """True inside ``scrit run`` (the driver sets ``SCRIT_RUN_SHA`` for its kernels)."""
    return bool(os.environ.get(RUN_SHA_ENV))


def _stage_list(stages: Callable, cfg) -> list:
    got = stages(cfg)
    return list(got) if isinstance(got, (list, tuple)) else [got]


def pick_profile(stages: Callable, say=print) -> str:
    """The interactive default for ``profile = None``: the study's profile when this notebook's stages
    (``stages(cfg)``: a Stage or a list) are finished in its cache, else the smoke profile; says which and why."""
    try:
        study = config.load(STUDY_PROFILE)
        missing = [st for st in _stage_list(stages, study) if not st.done]
        cache = config.resolve_path(study.run.artifacts_dir)
        shown = cache.relative_to(config.REPO_ROOT) if cache.is_relative_to(config.REPO_ROOT) else cache
        why = f"the study's stage {missing[0].name}/{missing[0].hash} is not in {shown}/" if missing else ""
    except Exception as e:  # e.g. a model dir missing: the quick profile still runs
        missing, why = [True], f"the study's stages could not be looked up ({type(e).__name__}: {e})"
    if not missing:
        say(f"profile = None -> {STUDY_PROFILE}: the study's finished stages are in the cache, so this notebook "
            "reads them (seconds)")
        return STUDY_PROFILE
    say(f"profile = None -> {QUICK_PROFILE} (tiny settings, minutes): {why}; `make study` computes the study's "
        f'stages (about 55 min on 2 cores), or set profile = "{STUDY_PROFILE}" to compute them in this notebook')
    return QUICK_PROFILE


def results_root(write_results: bool = False) -> str:
    """``results`` under ``scrit run`` or with ``write_results``, else :data:`INTERACTIVE_RESULTS`."""
    return "results" if under_driver() or write_results else INTERACTIVE_RESULTS


def load(profile: str | None, overrides: Sequence[str] = (), stages: Callable | None = None,
         write_results: bool = False, say=print):
    """The notebook's :class:`~scrit_utils.core.config.StudyConfig`, then one status line per stage.

    Under ``scrit run``: ``config.load(profile, overrides)``, as the driver passed them. Interactively:
    ``profile=None`` is :func:`pick_profile`'s choice, and unless ``write_results`` (or an explicit
    ``run.results_dir=`` override) results go to :data:`INTERACTIVE_RESULTS`."""
    overrides = list(overrides or [])
    if not under_driver():
        if profile is None:
            if stages is None:
                raise ValueError("profile = None needs the notebook's stages to choose a profile")
            profile = pick_profile(stages, say)
        if not write_results and not any(str(o).startswith("run.results_dir=") for o in overrides):
            overrides.append(f"run.results_dir={INTERACTIVE_RESULTS}")
            say(f"results go to {INTERACTIVE_RESULTS}/ (write_results = True writes to results/, the committed "
                "study results)")
    elif profile is None:
        raise ValueError("scrit run passes a profile; profile = None is for interactive use")
    cfg = config.load(profile, overrides)
    for st in _stage_list(stages, cfg) if stages else []:
        say(stage_status(cfg, st))
    return cfg


def stage_status(cfg, st) -> str:
    """``profile toy: stage 01_data/3f2a...: read from the cache`` or ``...: computed now (not in the cache)``;
    worded to stay true in the saved notebook, after the stage has finished."""
    how = "read from the cache (finished earlier)" if st.done else "computed now (not in the cache)"
    return f"profile {cfg.run.name}: stage {st.name}/{st.hash}: {how}"


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
