"""The miniwdl boundary: parse every WDL file of a run folder, choose the main WDL, resolve its
imports inside the folder only, type-check it, and package what it imports as the dependencies
ZIP Cromwell resolves imports against.

Files are served to miniwdl from memory under a fixed virtual root, so nothing outside the run
folder is ever read and the packaged paths do not depend on where the function runs.

The ZIP holds the WDL files only: the main WDL at its root, the files it imports (transitively)
at their paths relative to it, and those from outside the main WDL's directory under
`__outside_wdl/` with the import statements of the packed copies rewritten (`WDL.Zip.build`).
The MANIFEST.json that miniwdl adds is left out: Cromwell never reads it (the main WDL travels
as `workflowSource`). Entries are sorted, dated 1980-01-01 and compressed the same way every
time, so one folder always gives the same bytes.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import posixpath
import re
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import WDL
import WDL.Zip

from submit.folder import Findings, is_wdl, path_problem, shown
from submit.jsonfile import decode_text

#: Where the run folder appears to miniwdl. Never a real directory: sources come from memory.
VIRTUAL_ROOT = "/courier-run-folder"
CROMWELL_VERSIONS = ("draft-2", "1.0", "1.1")
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_TOKEN_RE = re.compile(r"Token\('\w+', '((?:[^'\\]|\\.)*)'\)")
_AT_RE = re.compile(r"\s*at line \d+,? col(?:umn)? \d+\.?")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)

_zip_logger = logging.getLogger("courier.submit.wdl_zip")
_zip_logger.addHandler(logging.NullHandler())
_zip_logger.propagate = False


@dataclass(frozen=True, slots=True)
class WdlPackage:
    """A type-checked main WDL and what Cromwell needs to run it."""

    main_wdl: str
    workflow: Any  # WDL.Tree.Workflow
    workflow_name: str
    version: str
    workflow_source: str
    dependencies: bytes | None
    used_files: tuple[str, ...]


@dataclass(slots=True)
class _Import:
    uri: str
    line: int
    column: int


@dataclass(slots=True)
class _Parsed:
    path: str
    text: str
    version: str
    workflow_name: str | None
    imports: list[_Import] = field(default_factory=list)


_EMPTY = _Parsed(path="", text="", version="", workflow_name=None)


class _SourceRefused(Exception):
    """Raised inside miniwdl's reader when an import may not be served; carries the sentence."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _abspath(rel: str) -> str:
    return f"{VIRTUAL_ROOT}/{rel}"


def _relpath(abspath: str) -> str:
    prefix = VIRTUAL_ROOT + "/"
    return abspath[len(prefix) :] if abspath.startswith(prefix) else abspath


def _strip_root(message: str) -> str:
    return message.replace(VIRTUAL_ROOT + "/", "")


def resolve_import(importer: str, uri: str) -> tuple[str | None, str | None]:
    """The folder path an import statement of `importer` names, or why it cannot be served."""
    if _URL_RE.match(uri):
        return None, (
            f"imports '{shown(uri)}', which is a URL; Courier packages only files inside the run folder: "
            "copy the file into the folder and import it by its relative path"
        )
    if uri.startswith("/"):
        return None, (
            f"imports '{shown(uri)}', an absolute path; import files of the run folder by relative path"
        )
    if not uri or any(not ch.isprintable() for ch in uri) or "\\" in uri:
        return None, f"imports '{shown(uri)}', which is not a usable relative path"
    target = posixpath.normpath(posixpath.join(posixpath.dirname(importer), uri))
    if target == ".." or target.startswith("../"):
        return None, f"imports '{shown(uri)}', which is outside the run folder"
    return target, None


def _syntax_message(exc: Any) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    first = _TOKEN_RE.sub(
        lambda m: "'" + shown(" ".join(m.group(1).replace("\\n", " ").split()), 30) + "'", first
    )
    first = _AT_RE.sub("", first).rstrip(". ")
    return f"syntax error: {first}"


def _where(path: str, pos: Any) -> str:
    line = getattr(pos, "line", 0) or 0
    column = getattr(pos, "column", 0) or 0
    return f"{shown(path)}:{line}:{column}" if line else shown(path)


def _error_reasons(exc: BaseException, fallback_path: str) -> list[str]:
    """One sentence per problem in a miniwdl exception, innermost cause first."""
    while isinstance(exc, WDL.Error.ImportError) and exc.__cause__ is not None:
        if isinstance(exc.__cause__, _SourceRefused | FileNotFoundError | KeyError):
            importer = (
                _relpath(exc.pos.abspath) if exc.pos.abspath.startswith(VIRTUAL_ROOT) else fallback_path
            )
            cause = exc.__cause__
            detail = cause.reason if isinstance(cause, _SourceRefused) else "could not be read"
            return [f"{_where(importer, exc.pos)}: {detail}"]
        exc = exc.__cause__
    if isinstance(exc, WDL.Error.MultipleValidationErrors):
        return [reason for inner in exc.exceptions for reason in _error_reasons(inner, fallback_path)]
    pos = getattr(exc, "pos", None)
    abspath = getattr(pos, "abspath", "") or ""
    path = _relpath(abspath) if abspath.startswith(VIRTUAL_ROOT + "/") else fallback_path
    if isinstance(exc, WDL.Error.SyntaxError):
        return [f"{_where(path, pos)}: {_syntax_message(exc)}"]
    if isinstance(exc, WDL.Error.ValidationError | WDL.Error.ImportError):
        return [f"{_where(path, pos)}: {shown(_strip_root(str(exc)), 400)}"]
    if isinstance(exc, RecursionError):
        return [f"{shown(path)}: nested too deeply for the WDL parser"]
    detail = shown(_strip_root(str(exc)) or type(exc).__name__, 300)
    return [f"{shown(path)}: miniwdl could not check this file: {detail}"]


def _parse(path: str, text: str, findings: Findings) -> _Parsed | None:
    try:
        doc = WDL.parse_document(text, uri=path)
    except Exception as exc:
        for reason in _error_reasons(exc, path):
            findings.refuse(reason)
        return None
    parsed = _Parsed(
        path=path,
        text=text,
        version=doc.wdl_version or "draft-2",
        workflow_name=doc.workflow.name if doc.workflow is not None else None,
    )
    for imp in doc.imports:
        parsed.imports.append(_Import(uri=imp.uri, line=imp.pos.line, column=imp.pos.column))
    return parsed


class _Folder:
    """Lazy, cached decoding and parsing of the folder's files, each problem reported once."""

    def __init__(self, files: Mapping[str, bytes], oversized: Mapping[str, int]) -> None:
        self.files = files
        self.oversized = oversized
        self.texts: dict[str, str] = {}
        self.parsed: dict[str, _Parsed | None] = {}
        self.findings: dict[str, Findings] = {}

    def parse(self, path: str) -> _Parsed | None:
        if path not in self.parsed:
            local = Findings()
            text = decode_text(path, self.files[path], local)
            result = None
            if text is not None:
                self.texts[path] = text
                result = _parse(path, text, local)
            self.parsed[path] = result
            self.findings[path] = local
        return self.parsed[path]

    def report(self, path: str, into: Findings, *, as_warning: bool = False) -> None:
        local = self.findings.get(path)
        if local is None:
            return
        for warning in local.warnings:
            into.warn(warning)
        for reason in local.reasons:
            if as_warning:
                into.warn(f"{reason} (this file is not used by the run)")
            else:
                into.refuse(reason)


def _chosen_main(
    folder: _Folder, wdl_paths: list[str], findings: Findings, chosen: str, option_name: str
) -> str | None:
    if chosen in folder.files:
        return chosen
    if chosen in folder.oversized:
        return None  # the size refusal already names it
    listing = ", ".join(shown(p) for p in wdl_paths) or "none"
    findings.refuse(
        f"options.json: {option_name} names '{shown(chosen)}', which is not in the run folder "
        f"(its .wdl files: {listing})",
        missing=chosen,
    )
    return None


def _imported_paths(folder: _Folder, wdl_paths: list[str]) -> set[str]:
    imported: set[str] = set()
    for path in wdl_paths:
        for imp in (folder.parse(path) or _EMPTY).imports:
            target, _ = resolve_import(path, imp.uri)
            if target is not None and target != path:
                imported.add(target)
    return imported


def _detect_main(folder: _Folder, wdl_paths: list[str], findings: Findings, option_name: str) -> str | None:
    """The only .wdl file holding a workflow that no other file imports, or None (refused)."""
    if any(is_wdl(path) for path in folder.oversized):
        return None  # a .wdl file too big to read might be the main one; its size refusal says so
    if not wdl_paths:
        findings.refuse(
            "the run folder holds no .wdl file; copy the workflow's WDL files next to the inputs file",
            missing="*.wdl",
        )
        return None
    unreadable = [p for p in wdl_paths if folder.parse(p) is None]
    for path in unreadable:
        folder.report(path, findings)
    if unreadable:
        return None
    imported = _imported_paths(folder, wdl_paths)
    with_workflow = [p for p in wdl_paths if (folder.parsed[p] or _EMPTY).workflow_name]
    candidates = [p for p in with_workflow if p not in imported]
    how = f'set "{option_name}" in options.json to the WDL file to run, e.g. {{"{option_name}": "main.wdl"}}'
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        if not with_workflow:
            listing = ", ".join(shown(p) for p in wdl_paths[:10])
            findings.refuse(
                f"no .wdl file in the run folder holds a workflow (found only tasks in: {listing}); "
                "copy the main WDL file into the folder",
                missing="the main WDL file",
            )
        else:
            listing = ", ".join(shown(p) for p in with_workflow[:10])
            findings.refuse(
                f"every workflow in the run folder is imported by another file ({listing}), so the main "
                f"WDL cannot be told; {how}"
            )
        return None
    listing = ", ".join(
        f"{shown(p)} (workflow {(folder.parsed[p] or _EMPTY).workflow_name})" for p in candidates[:10]
    )
    findings.refuse(f"{len(candidates)} .wdl files could be the main workflow: {listing}; {how}")
    return None


def _collect_imports(folder: _Folder, main: str, findings: Findings) -> list[str] | None:
    """Every file the main WDL uses (itself first), or None after recording why not."""
    order: list[str] = []
    queue = [main]
    ok = True
    while queue:
        path = queue.pop(0)
        if path in order:
            continue
        order.append(path)
        parsed = folder.parse(path)
        if parsed is None:
            folder.report(path, findings)
            ok = False
            continue
        for imp in parsed.imports:
            target, problem = resolve_import(path, imp.uri)
            where = f"{shown(path)}:{imp.line}:{imp.column}"
            if problem is not None:
                findings.refuse(f"{where}: {problem}")
                ok = False
            elif target is not None and target in folder.oversized:
                ok = False  # the size refusal already names it
            elif target is not None and target not in folder.files:
                findings.refuse(
                    f"{shown(target)}: imported by {shown(path)}:{imp.line} but not found in the run folder",
                    missing=target,
                )
                ok = False
            elif target is not None:
                problem = path_problem(target)
                if problem is not None:
                    findings.refuse(f"{where}: the imported file name {problem}")
                    ok = False
                    continue
                queue.append(target)
    return order if ok else None


def _check_versions(folder: _Folder, used: list[str], findings: Findings) -> str | None:
    main = folder.parsed[used[0]]
    # bandit B101: narrows the type for mypy; Lambda never runs Python with -O
    assert main is not None  # nosec B101
    if main.version not in CROMWELL_VERSIONS:
        findings.refuse(
            f"{shown(main.path)}: WDL version {shown(main.version)} is not one Cromwell runs; "
            "declare 'version 1.0' or 'version 1.1' (or use draft-2)"
        )
        return None
    for path in used[1:]:
        parsed = folder.parsed[path]
        if parsed is None or parsed.version == main.version:
            continue
        if "draft-2" in (parsed.version, main.version) or parsed.version not in CROMWELL_VERSIONS:
            findings.refuse(
                f"{shown(path)} is WDL {shown(parsed.version)} but {shown(main.path)} is WDL {main.version}; "
                "Cromwell needs the main WDL and its imports in one WDL version"
            )
        else:
            findings.warn(
                f"{shown(path)} is WDL {parsed.version} but {shown(main.path)} is WDL {main.version}; "
                "Cromwell may refuse imports of another version"
            )
    return main.version


def _load(folder: _Folder, main: str, findings: Findings) -> Any | None:
    texts = folder.texts

    async def read_source(uri: str, path: list[str], importer: Any) -> Any:
        del path
        if importer is None:
            rel: str | None = _relpath(uri)
        else:
            rel, problem = resolve_import(_relpath(importer.pos.abspath), uri)
            if problem is not None:
                raise _SourceRefused(problem)
        if rel is None or rel not in texts:
            raise _SourceRefused(f"imports '{shown(uri)}', which is not in the run folder")
        await asyncio.sleep(0)
        return WDL.Tree.ReadSourceResult(source_text=texts[rel], abspath=_abspath(rel))

    try:
        return WDL.load(_abspath(main), check_quant=True, read_source=read_source)
    except Exception as exc:
        for reason in _error_reasons(exc, main):
            findings.refuse(reason)
        return None


def _reproducible_zip(entries: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            archive.writestr(info, entries[name], compresslevel=9)
    return buffer.getvalue()


def _package(doc: Any, main: str, main_text: str, findings: Findings) -> tuple[str, bytes | None] | None:
    """The workflow source as Cromwell must receive it, and the dependencies ZIP (None: no imports)."""
    if not doc.imports:
        return main_text, None
    try:
        with tempfile.TemporaryDirectory(prefix="courier-wdl-zip-") as scratch:
            archive_path = os.path.join(scratch, "dependencies.zip")
            WDL.Zip.build(doc, archive_path, _zip_logger)
            with zipfile.ZipFile(archive_path) as archive:
                entries = {name: archive.read(name) for name in archive.namelist() if name != "MANIFEST.json"}
    except Exception as exc:
        findings.refuse(
            f"{shown(main)}: its imports could not be packaged for Cromwell: "
            f"{shown(_strip_root(str(exc)) or type(exc).__name__, 300)}"
        )
        return None
    source = entries[posixpath.basename(main)].decode("utf-8")
    return source, _reproducible_zip(entries)


def analyse(
    files: Mapping[str, bytes],
    oversized: Mapping[str, int],
    findings: Findings,
    *,
    chosen_main: str | None,
    option_name: str,
) -> WdlPackage | None:
    """Choose, check and package the main WDL of a folder; None after recording every problem."""
    folder = _Folder(files, oversized)
    wdl_paths = sorted(p for p in files if is_wdl(p) and path_problem(p) is None)
    if chosen_main is not None:
        main = _chosen_main(folder, wdl_paths, findings, chosen_main, option_name)
    else:
        main = _detect_main(folder, wdl_paths, findings, option_name)
    if main is None:
        return None
    used = _collect_imports(folder, main, findings)
    if chosen_main is not None:
        for path in wdl_paths:
            if path not in (used or ()) and folder.parse(path) is None:
                folder.report(path, findings, as_warning=True)
    if used is None:
        return None
    for path in used:
        folder.report(path, findings)
    version = _check_versions(folder, used, findings)
    doc = _load(folder, main, findings)
    if doc is None or version is None:
        return None
    if doc.workflow is None:
        findings.refuse(
            f"{shown(main)} holds no workflow (only tasks); name the WDL file that holds the workflow "
            f"in options.json as {option_name}"
        )
        return None
    packaged = _package(doc, main, folder.texts[main], findings)
    if packaged is None:
        return None
    source, dependencies = packaged
    return WdlPackage(
        main_wdl=main,
        workflow=doc.workflow,
        workflow_name=doc.workflow.name,
        version=version,
        workflow_source=source,
        dependencies=dependencies,
        used_files=tuple(used),
    )
