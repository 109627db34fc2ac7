"""Benchmark: chart pages (JSON bytes) to a typed frame.

    .venv/bin/python bench/normalize.py [--rows 1000000] [--page 900] [--runs 5]

Compares ``schemas.normalize_pages`` (Polars JSON reader + vectorized kind
expressions) with a naive path that parses each page with ``json`` and
converts row by row in Python, on the same ka10081 daily-chart pages.
Prints the median of several runs and writes ``bench/results/normalize.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import random
import statistics
import time
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


def timed(fn, pages: list[bytes], runs: int) -> tuple[float, int]:
    times, height = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        frame = fn(pages)
        times.append(time.perf_counter() - t0)
        height = frame.height
    return statistics.median(times), height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--page", type=int, default=900)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "normalize.md")
    args = parser.parse_args()

    pages = make_pages(args.rows, args.page)
    mb = sum(map(len, pages)) / 1e6
    # same values on both paths (checked on a sample)
    sample = pages[:3]
    fast_sample = schemas.normalize_pages(API_ID, sample)
    slow_sample = naive(sample)
    for col in slow_sample.columns:
        assert fast_sample[col].to_list() == slow_sample[col].to_list(), col

    fast_s, n_fast = timed(lambda p: schemas.normalize_pages(API_ID, p), pages, args.runs)
    slow_s, n_slow = timed(naive, pages, args.runs)
    assert n_fast == n_slow == args.rows
    fast_rate, slow_rate = args.rows / fast_s, args.rows / slow_s
    lines = [
        "# bench/normalize.py",
        "",
        f"{args.rows:,} ka10081 rows in {len(pages):,} JSON pages of {args.page} rows ({mb:.0f} MB), "
        f"median of {args.runs} runs, {platform.python_version()}, polars {pl.__version__}, "
        f"{__import__('os').cpu_count()} cores.",
        "",
        "| path | median s | rows/s | ratio |",
        "|---|---|---|---|",
        f"| `schemas.normalize_pages` (bytes -> typed frame) | {fast_s:.2f} | {fast_rate:,.0f} | "
        f"{slow_s / fast_s:.1f}x |",
        f"| naive: `json.loads` + per-row Python | {slow_s:.2f} | {slow_rate:,.0f} | 1.0x |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
