"""Parse the vendor's API reference (a PDF turned into text) into raw TR records.

Pure text processing: the faithful shape of what the reference says, with no
interpretation of field meaning.  ``build_catalog`` applies the reviewed
repairs and the field kinds on top of this.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ExampleText",
    "RawField",
    "RawTR",
    "parse_example",
    "parse_example_blocks",
    "parse_reference",
]

_TABLE_HEAD = re.compile(r"^구분\tElement\t")
_ROW = re.compile(r"^(Header|Body)\t")
_SECTION_MARKERS = {"Request", "Response", "Request Example", "Response Example"}


@dataclass
class RawField:
    """One table row: the element name as printed, before any repair."""

    name: str
    label: str
    type: str
    required: bool
    length: str
    description: str
    depth: int  # 0: body scalar, 1: item of a list ("- x"), 2: nested ("-- x")


@dataclass
class ExampleText:
    """The text of one Request/Response Example: fenced blocks concatenated."""

    blocks: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.blocks)


@dataclass
class RawTR:
    api_id: str
    name: str
    menu: str
    method: str
    url: str
    prod_domain: str
    paper_domain: str
    paper_unsupported: bool
    request: list[RawField]
    response: list[RawField]
    request_example: ExampleText
    response_example: ExampleText
    first_line: int


def _split_sections(lines: list[str]) -> list[tuple[int, list[str]]]:
    """Split the reference at each ``메뉴 위치`` line (one per TR)."""
    starts = [i for i, line in enumerate(lines) if line.startswith("메뉴 위치\t")]
    out = []
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        out.append((start + 1, lines[start:end]))
    return out


def _parse_row(line: str) -> RawField:
    cells = line.split("\t")
    cells += [""] * (7 - len(cells))
    _, element, label, typ, required, length, description = cells[:7]
    element = element.strip()
    depth = 0
    m = re.match(r"^(-\s*-|-)\s+", element)
    if m:
        depth = 2 if m.group(1).replace(" ", "") == "--" else 1
        element = element[m.end() :]
    return RawField(
        name=element.strip(),
        label=label.strip(),
        type=typ.strip(),
        required=required.strip().upper() == "Y",
        length=length.strip(),
        description=description.strip(),
        depth=depth,
    )


def _parse_section(first_line: int, lines: list[str]) -> RawTR:
    meta: dict[str, str] = {}
    request: list[RawField] = []
    response: list[RawField] = []
    examples = {"Request Example": ExampleText(), "Response Example": ExampleText()}
    mode: str | None = None  # which table or example we are in
    fenced: list[str] | None = None
    paper_unsupported = False
    for line in lines:
        if fenced is not None:
            if line.strip() == "```":
                assert mode in examples
                examples[mode].blocks.append("\n".join(fenced))
                fenced = None
            else:
                fenced.append(line)
            continue
        bare = line.rstrip("\t").strip()
        if bare.startswith("<pre>"):  # one page carries its examples as HTML
            bare = bare.removeprefix("<pre>").removesuffix("</pre>").strip()
        if bare in _SECTION_MARKERS:
            mode = bare
            continue
        if "모의투자를 지원하지 않습니다" in line:
            paper_unsupported = True
        if mode in examples:
            if bare == "```":
                fenced = []
            elif bare.startswith(("{", "[", "}", "'", '"')) and not line.startswith(("Header\t", "Body\t")):
                # examples laid out as one-line table cells (spreadsheet pages)
                examples[mode].blocks.append(bare)
            elif bare in ("키움 REST API", "API 정보"):  # the next page's header ends it
                mode = None
            continue
        if _TABLE_HEAD.match(line):
            continue
        if _ROW.match(line):
            row = _parse_row(line)
            if mode == "Request":
                request.append(row)
            elif mode == "Response":
                response.append(row)
            continue
        if "\t" in line:
            key, _, value = line.partition("\t")
            meta.setdefault(key.strip(), value.strip())
    return RawTR(
        api_id=meta.get("API ID", ""),
        name=meta.get("API 명", ""),
        menu=meta.get("메뉴 위치", ""),
        method=meta.get("Method", ""),
        url=meta.get("URL", ""),
        prod_domain=meta.get("운영 도메인", ""),
        paper_domain=meta.get("모의투자 도메인", ""),
        paper_unsupported=paper_unsupported,
        request=request,
        response=response,
        request_example=examples["Request Example"],
        response_example=examples["Response Example"],
        first_line=first_line,
    )


def parse_reference(text: str) -> tuple[list[RawTR], dict[str, list[str]], dict[str, str]]:
    """Return the TR sections, the table of contents and the error-code table.

    The table of contents maps an id to ``[name, category, sub-category]``.
    """
    lines = text.splitlines()
    toc: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    in_errors = False
    for line in lines:
        cells = line.split("\t")
        if line.startswith("No.\t오류코드"):
            in_errors = True
            continue
        if in_errors and len(cells) == 3 and cells[0].isdigit():
            errors[cells[1].strip()] = cells[2].strip()
            continue
        if not in_errors and len(cells) == 6 and cells[0].isdigit():
            toc[cells[1].strip()] = [cells[2].strip(), cells[3].strip(), cells[4].strip()]
    sections = [_parse_section(start, chunk) for start, chunk in _split_sections(lines)]
    return sections, toc, errors


# --- examples -------------------------------------------------------------------


def parse_example(text: str) -> tuple[Any, list[str]]:
    """Parse a (possibly damaged) example body; return the value and the repairs made.

    Tolerates what the PDF extraction and the vendor's editors left behind:
    ``#`` comment lines, single quotes, trailing commas, a body split over
    several fenced blocks by a page break.  Raises ``ValueError`` when the
    text is beyond those repairs.
    """
    return _parse_body(text)


def parse_example_blocks(blocks: list[str]) -> tuple[Any, list[str]]:
    """Parse an example printed over several fenced blocks (page breaks).

    The PDF closes every page's block with the brackets still open, so the
    joins tried are: as printed, then each block but the last stripped of its
    trailing closing-bracket lines and joined as a continuation, a next
    field, or a next list item.
    """
    if len(blocks) == 1:
        return _parse_body(blocks[0])
    first_error: ValueError | None = None
    try:
        return _parse_body("\n".join(blocks), allow_split=False)
    except ValueError as exc:
        first_error = exc
    stripped = [_CLOSERS.sub("", b) for b in blocks[:-1]] + [blocks[-1]]
    joins = (("\n", "continued"), (",\n", "next field"), ("},\n{", "next item"), ("},\n", "next item"))
    for joiner, what in joins:
        try:
            value, repairs = _parse_body(joiner.join(stripped), allow_split=False)
        except ValueError:
            continue
        return value, [f"joined {len(blocks)} page-broken blocks ({what})", *repairs]
    try:
        return _parse_body("\n".join(blocks))
    except ValueError:
        raise first_error from None


_CLOSERS = re.compile(r"(\s*[}\]],?)+\s*$")


def _parse_body(text: str, allow_split: bool = True) -> tuple[Any, list[str]]:
    repairs: list[str] = []
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    if len(lines) != len(text.splitlines()):
        repairs.append("dropped comment lines")
    kept = [ln for ln in lines if ln.strip() != "..."]
    if len(kept) != len(lines):
        repairs.append("dropped '...' elisions")
        lines = kept
    body = "\n".join(lines).strip()
    if not body:
        raise ValueError("empty example")
    try:
        return json.loads(body), repairs
    except json.JSONDecodeError:
        pass
    fixed = re.sub(r",(\s*[}\]])", r"\1", body)
    if fixed != body:
        repairs.append("removed trailing commas")
    try:
        return json.loads(fixed), repairs
    except json.JSONDecodeError:
        pass
    try:
        value = ast.literal_eval(fixed)
    except (ValueError, SyntaxError):
        value = None
    if isinstance(value, dict | list):
        repairs.append("read as a Python literal (single quotes)")
        return value, repairs
    balanced = _balance(fixed)
    if balanced != fixed:
        try:
            value = json.loads(balanced)
        except json.JSONDecodeError:
            value = None
        if value is not None:
            repairs.append("closed unbalanced brackets / added missing commas")
            return value, repairs
    if "'" in fixed:
        try:
            value = json.loads(_balance(fixed.replace("'", '"')))
        except json.JSONDecodeError:
            value = None
        if value is not None:
            repairs.append("single quotes to double; closed unbalanced brackets")
            return value, repairs
    # several JSON documents in a row (e.g. a REG ack followed by a REAL frame)
    docs = _split_documents(fixed) if allow_split else []
    if len(docs) > 1:
        parsed = []
        for doc in docs:
            value, _ = _parse_body(doc)
            parsed.append(value)
        repairs.append(f"split into {len(docs)} documents")
        return parsed, repairs
    raise ValueError("example is not JSON even after repairs")


def _split_documents(text: str) -> list[str]:
    """Split text holding several top-level ``{...}`` documents."""
    docs, depth, start, quote = [], 0, None, None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0 and start is not None:
                docs.append(text[start : i + 1])
                start = None
    return docs


_MISSING_COMMA = re.compile(r'(["}\]\d])(\s*\n\s*)(")')


def _balance(text: str) -> str:
    """Insert the closers and commas a page break or an editor dropped."""
    text = _MISSING_COMMA.sub(r"\1,\2\3", text)
    out: list[str] = []
    stack: list[str] = []
    quote = False
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            out.append(ch)
            if ch == '"' and text[i - 1] != "\\":
                quote = False
            i += 1
            continue
        if ch == '"':
            # a key where a list item is expected: the list was never closed
            if stack and stack[-1] == "[" and re.match(r'"[^"]*"\s*:', text[i:]):
                _close_list(out)
                stack.pop()
            quote = True
        elif ch in "{[":
            stack.append(ch)
        elif ch == "}":
            while stack and stack[-1] == "[":
                _close_list(out)
                stack.pop()
            if stack:
                stack.pop()
        elif ch == "]":
            while stack and stack[-1] == "{":
                out.append("}")
                stack.pop()
            if stack:
                stack.pop()
        out.append(ch)
        i += 1
    out.extend("}" if c == "{" else "]" for c in reversed(stack))
    return re.sub(r",(\s*[}\]])", r"\1", "".join(out))


def _close_list(out: list[str]) -> None:
    """Close a list just after its last element (before a dangling comma)."""
    j = len(out)
    while j and out[j - 1].isspace():
        j -= 1
    if j and out[j - 1] == ",":
        out.insert(j - 1, "]")
    else:
        out.insert(j, "],")
