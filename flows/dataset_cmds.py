"""``kwh datasets``: the datasets and families a batch run can fetch, with their TRs; and the
check that names a misspelled dataset's nearest names ("did you mean").
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Annotated

import polars as pl
import typer

from flows.lake_cmds import console, frame_table
from warehouse import WarehouseError
from warehouse import datasets as registry

__all__ = ["check_dataset_names", "register"]


def _names() -> tuple[list[str], list[str]]:
    all_ds = registry()
    return sorted(all_ds), sorted({ds.family for ds in all_ds.values()})


def check_dataset_names(names: str | Sequence[str]) -> None:
    """Every name (comma-separated or repeated) is a dataset or a family; else a one-line error
    naming the nearest ones."""
    items = [names] if isinstance(names, str) else list(names)
    wanted = [n.strip() for item in items for n in item.split(",") if n.strip()]
    datasets, families = _names()
    for name in wanted:
        if name in datasets or name in families:
            continue
        close = difflib.get_close_matches(name, datasets + families, n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(close)}?" if close else "`kwh datasets` lists them"
        raise WarehouseError(f"unknown dataset {name!r}: {hint}")


def register(app: typer.Typer) -> None:
    @app.command("datasets")
    def datasets_cmd(
        family: Annotated[str | None, typer.Argument(help="only this family (e.g. investor)")] = None,
    ) -> None:
        """The datasets by family, each with its TR, style and what one row is."""
        all_ds = registry()
        if family is not None:
            check_dataset_names(family)
        rows = [
            {
                "family": ds.family,
                "dataset": ds.name,
                "TR": ", ".join(ds.sources),
                "style": ds.style,
                "description": ds.description,
                "key": ", ".join(ds.key),
            }
            for ds in all_ds.values()
            if family in (None, ds.family, ds.name)
        ]
        frame = pl.DataFrame(rows).sort("family", "dataset", maintain_order=True)
        console.print(frame_table(frame, title=f"{frame.height} datasets"))
        counts = frame.group_by("family", maintain_order=True).len()
        console.print(
            "families (fetch a whole one with -d FAMILY): "
            + ", ".join(f"{f} ({n})" for f, n in counts.iter_rows())
        )
