"""Benchmark: chart pages (JSON bytes) to a typed frame, time and peak memory.

    .venv/bin/python bench/normalize.py [--rows 1000000] [--page 900] [--runs 5]

On the same ka10081 daily-chart pages, interleaved in each run (the order
rotates) so every path sees the same load on the machine:

- ``schemas.normalize_pages`` (Polars JSON reader + vectorized kind expressions,
  a chunk of pages at a time);
- hand-written: ``pl.read_json`` of each page against a string schema, explode,
  and one ``select`` of hand-written casts giving the same frame (no checks),
  plain (one page after another) and with the project's two reader threads;
- parse-only floor: ``pl.read_json`` of each page and ``pl.concat``, plain and
  on two threads;
- naive: ``json.loads`` and a Python loop per row.

Peak memory: each path once more in a fresh child process, the pages built
first, then the kernel's RSS high-water mark reset (``/proc/self/clear_refs``)
and read back (``VmHWM``) after the path ran: the growth of the process
against the output frame's ``estimated_size``.  Prints the medians and the
same-run ratios and writes ``bench/results/normalize.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

import schemas

API_ID = "ka10081"
LIST_KEY = "stk_dt_pole_chart_qry"


def make_pages(rows: int, page_size: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    pages = []
    price = 70000
    made = 0
    while made < rows:
        n = min(page_size, rows - made)
        day = dt.date(2025, 9, 8)  # each page is another symbol's last ~3.5 years
        items = []
        for _ in range(n):
            change = rng.randint(-1500, 1500)
            prev, price = price, max(1000, price + change)
            sign = "+" if price > prev else ("-" if price < prev else "")
            lo, hi = min(prev, price) - rng.randint(0, 500), max(prev, price) + rng.randint(0, 500)
            qty = rng.randint(1_000_000, 30_000_000)
            items.append(
                {
                    "cur_prc": f"{sign}{price}",
                    "trde_qty": str(qty),
                    "trde_prica": str(qty * price // 1_000_000),
                    "dt": day.strftime("%Y%m%d"),
                    "open_pric": f"{sign}{prev}",
                    "high_pric": f"{sign}{hi}",
                    "low_pric": f"{sign}{lo}",
                    "pred_pre": f"{'+' if change >= 0 else '-'}{abs(change)}",
                    "pred_pre_sig": "2" if change > 0 else "5",
                    "trde_tern_rt": f"+{rng.randint(0, 500) / 100:.2f}",
                }
            )
            day -= dt.timedelta(days=1)
        body = {
            "stk_cd": f"{len(pages) % 999999:06d}",
            LIST_KEY: items,
            "return_code": 0,
            "return_msg": "정상적으로 처리되었습니다",
        }
        pages.append(json.dumps(body, ensure_ascii=False).encode())
        made += n
    return pages


def _int(v: str) -> int | None:
    if v == "":
        return None
    return -int(v.lstrip("+-")) if "-" in v else int(v.lstrip("+-"))


def naive(pages: list[bytes]) -> pl.DataFrame:
    """What a straightforward client does: json.loads and a Python loop per row."""
    records = []
    for page in pages:
        body = json.loads(page)
        code = body["stk_cd"]
        for r in body[LIST_KEY]:
            cur = r["cur_prc"]
            records.append(
                {
                    "cur_prc": abs(_int(cur) or 0) if cur else None,
                    "cur_prc_dir": (-1 if cur.startswith("-") else 1 if cur.startswith("+") else 0)
                    if cur
                    else None,
                    "trde_qty": _int(r["trde_qty"]),
                    "trde_prica": _int(r["trde_prica"]),
                    "dt": dt.datetime.strptime(r["dt"], "%Y%m%d").date(),
                    "open_pric": abs(_int(r["open_pric"]) or 0),
                    "high_pric": abs(_int(r["high_pric"]) or 0),
                    "low_pric": abs(_int(r["low_pric"]) or 0),
                    "pred_pre": _int(r["pred_pre"]),
                    "pred_pre_sig": r["pred_pre_sig"] or None,
                    "trde_tern_rt": float(r["trde_tern_rt"]) if r["trde_tern_rt"] else None,
                    "stk_cd": code,
                }
            )
    return pl.DataFrame(records)


ITEMS = ("cur_prc", "trde_qty", "trde_prica", "dt", "open_pric", "high_pric", "low_pric", "pred_pre")
ITEMS += ("pred_pre_sig", "trde_tern_rt")
PAGE_SCHEMA = {
    "stk_cd": pl.String,
    LIST_KEY: pl.List(pl.Struct({n: pl.String for n in ITEMS})),
    "return_code": pl.Int64,
    "return_msg": pl.String,
}


def _parse(page: bytes) -> pl.DataFrame:
    return pl.read_json(io.BytesIO(page), schema=PAGE_SCHEMA)


def parse_only(pages: list[bytes]) -> pl.DataFrame:
    """The floor: Polars' JSON reader alone, a page after another."""
    return pl.concat(map(_parse, pages))


def parse_only_threads(pages: list[bytes]) -> pl.DataFrame:
    with ThreadPoolExecutor(max_workers=2) as pool:
        return pl.concat(pool.map(_parse, pages))


def _casts(bodies: pl.DataFrame) -> pl.DataFrame:
    items = bodies.select(LIST_KEY, "stk_cd").explode(LIST_KEY).unnest(LIST_KEY)

    def price(c: str) -> list[pl.Expr]:
        s = pl.col(c)
        marker = s.str.starts_with("+").cast(pl.Int8) - s.str.starts_with("-").cast(pl.Int8)
        return [s.str.strip_chars_start("+-").cast(pl.Int64).alias(c), marker.alias(f"{c}_dir")]

    def blank(c: str) -> pl.Expr:
        return pl.when(pl.col(c) != "").then(pl.col(c))

    rt = pl.col("trde_tern_rt")
    return items.select(
        *price("cur_prc"),
        pl.col("trde_qty").cast(pl.Int64),
        pl.col("trde_prica").cast(pl.Int64),
        pl.col("dt").str.to_date("%Y%m%d"),
        *price("open_pric"),
        *price("high_pric"),
        *price("low_pric"),
        pl.col("pred_pre").str.to_integer(),
        blank("pred_pre_sig"),
        pl.when(rt.str.starts_with("-"))
        .then(-rt.str.strip_chars_start("+-").cast(pl.Float64))
        .otherwise(rt.str.strip_chars_start("+-").cast(pl.Float64)),
        "stk_cd",
        stk_cd_venue=pl.lit("KRX"),
    )


def hand_written(pages: list[bytes]) -> pl.DataFrame:
    """``pl.read_json`` of each page and hand-written casts to the same frame, no checks."""
    return _casts(parse_only(pages))


def hand_written_threads(pages: list[bytes]) -> pl.DataFrame:
    return _casts(parse_only_threads(pages))


def project(pages: list[bytes]) -> pl.DataFrame:
    return schemas.normalize_pages(API_ID, pages)


PATHS: dict[str, tuple[str, Callable[[list[bytes]], pl.DataFrame]]] = {
    "project": ("`schemas.normalize_pages` (bytes -> typed frame, checked)", project),
    "hand": ("hand-written: `pl.read_json` a page after another + casts", hand_written),
    "hand2": ("hand-written, the pages on two threads like the project", hand_written_threads),
    "parse": ("parse-only floor: `pl.read_json` a page after another", parse_only),
    "parse2": ("parse-only floor, the pages on two threads", parse_only_threads),
    "naive": ("naive: `json.loads` + per-row Python", naive),
}
MEMORY = ("project", "hand", "hand2", "parse")


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def memory_child(path: str, rows: int, page: int) -> None:
    """In a fresh process: build the pages, reset the RSS high-water mark, run ``path`` once."""
    pages = make_pages(rows, page)
    PATHS[path][1](pages[:2])  # imports and first-use allocations are not the path's
    Path("/proc/self/clear_refs").write_text("5")
    base = _status("VmRSS")
    frame = PATHS[path][1](pages)
    print(json.dumps({"growth": _status("VmHWM") - base, "frame": frame.estimated_size()}))


def memory(path: str, args: argparse.Namespace) -> dict[str, int]:
    argv = [
        sys.executable,
        __file__,
        "--memory-child",
        path,
        "--rows",
        str(args.rows),
        "--page",
        str(args.page),
    ]
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def check_same(pages: list[bytes]) -> None:
    """Every path gives the project's values on a sample (the floor: the same rows)."""
    want = project(pages)
    for name in ("hand", "hand2", "naive"):
        got = PATHS[name][1](pages)
        assert name == "naive" or got.schema == want.schema, (name, got.schema)
        for col in got.columns:
            assert want[col].to_list() == got[col].to_list(), (name, col)
    assert parse_only(pages)[LIST_KEY].list.len().sum() == want.height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--page", type=int, default=900)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--memory-runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "normalize.md")
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.rows, args.page)
        return

    load_start, started = os.getloadavg(), time.monotonic()
    pages = make_pages(args.rows, args.page)
    mb = sum(map(len, pages)) / 1e6
    check_same(pages[:3])
    times: dict[str, list[float]] = {k: [] for k in PATHS}
    names = list(PATHS)
    for i in range(args.runs):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            t0 = time.perf_counter()
            frame = PATHS[name][1](pages)
            times[name].append(time.perf_counter() - t0)
            assert name.startswith("parse") or frame.height == args.rows, name
            del frame
        print(
            f"run {i + 1}/{args.runs}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()),
            flush=True,
        )
    mem = {k: [memory(k, args) for _ in range(args.memory_runs)] for k in MEMORY}
    load_end = os.getloadavg()
    text = report(args, len(pages), mb, times, mem, load_start, load_end, time.monotonic() - started)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")


def report(
    args: argparse.Namespace,
    n_pages: int,
    mb: float,
    times: dict[str, list[float]],
    mem: dict[str, list[dict[str, int]]],
    load_start: tuple[float, float, float],
    load_end: tuple[float, float, float],
    took: float,
) -> str:
    med = {k: statistics.median(v) for k, v in times.items()}
    # ratios per run (the paths of a run ran back to back), then their median
    vs = {k: statistics.median(t / p for t, p in zip(times[k], times["project"], strict=True)) for k in times}
    frame = statistics.median(m["frame"] for m in mem["project"])
    lines = [
        "# bench/normalize.py",
        "",
        f"{args.rows:,} ka10081 rows in {n_pages:,} JSON pages of {args.page} rows ({mb:.0f} MB); "
        f"{args.runs} runs, the paths interleaved in each (the order rotating); median per path, and the "
        "median over runs of each path's time / the project's time in the same run. "
        f"Python {platform.python_version()}, polars {pl.__version__}, {os.cpu_count()} cores shared with "
        f"other work: load average {load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end "
        f"({took / 60:.1f} min), so absolute times are inflated and the ratios are the steadier numbers.",
        "",
        "| path | median s | rows/s | time / project's (same run) | runs, s |",
        "|---|---|---|---|---|",
    ]
    for k, (label, _) in PATHS.items():
        each = ", ".join(f"{t:.2f}" for t in times[k])
        lines.append(f"| {label} | {med[k]:.2f} | {args.rows / med[k]:,.0f} | {vs[k]:.2f}x | {each} |")
    hand = min(vs["hand"], vs["hand2"])
    lines += [
        "",
        f"- vs the naive path: **{vs['naive']:.1f}x** faster (target >= 10x: "
        f"{'met' if vs['naive'] >= 10 else 'not met'}).",
        f"- vs plain `pl.read_json` with hand-written casts: **{vs['hand']:.2f}x** (the pages on two threads "
        f"like the project: {vs['hand2']:.2f}x; target >= 1.0x, at least as fast: "
        f"{'met' if hand >= 1.0 else 'not met'}).",
        f"- parse-only floor: `pl.read_json` alone takes {vs['parse']:.2f}x the project's time a page after "
        f"another, {vs['parse2']:.2f}x on two threads: the project costs {1 / vs['parse2']:.2f}x the "
        "floor it can reach with the same threads.",
        "",
        f"Peak memory, a fresh process per measurement ({args.memory_runs} each, median): growth of the "
        "resident set (kernel high-water mark) while the path ran, against the output frame "
        f"({frame / 2**20:.0f} MB `estimated_size`; the pages themselves, {mb:.0f} MB, were built before).",
        "",
        "| path | peak growth | x the output frame | runs, MB |",
        "|---|---|---|---|",
    ]
    for k in MEMORY:
        g = statistics.median(m["growth"] for m in mem[k])
        each = ", ".join(f"{m['growth'] / 2**20:.0f}" for m in mem[k])
        lines.append(f"| {PATHS[k][0]} | {g / 2**20:.0f} MB | {g / frame:.2f}x | {each} |")
    g = statistics.median(m["growth"] for m in mem["project"])
    lines += [
        "",
        f"Target (issue 16): <= 2x the output: {'met' if g <= 2 * frame else 'not met'} ({g / frame:.2f}x).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
