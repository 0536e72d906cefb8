"""One style of progress bar for every long step of a fit."""

from __future__ import annotations

from tqdm.auto import tqdm

# Bars appear only for work that lasts longer than this, so quick fits stay silent.
_DELAY_SECONDS = 2.0


def progress_bar(total: int, description: str, unit: str, enabled: bool) -> tqdm:
    """A tqdm bar that shows itself only if the work outlasts two seconds.

    Examples
    --------
    >>> from pybinscale.scaling._progress import progress_bar
    >>> with progress_bar(3, "demo", "step", enabled=False) as bar:
    ...     bar.update(3)
    """
    return tqdm(
        total=total,
        desc=description,
        unit=unit,
        disable=not enabled,
        delay=_DELAY_SECONDS,
        leave=False,
    )
