"""Round trips: one matrix written by the libraries people use, across their options, scores as its float64 truth.

Each writer (pandas ``to_csv`` / ``to_parquet`` / ``to_feather``, ``numpy.savetxt``) is driven over the product of
its options. The value is compared with a float64 SVD of the matrix *as written* (after the writer's
``float_format``/``fmt``) to 1e-9 relative and N and K are checked, so a header read as a data row, an index or a
label column scored as a feature, or a lost first row shows up at once; a file that cannot be read is refused in one
line. Failures of one product are collected and reported together. Hand-written tables (an ``id`` column, a list
column, a BOM, a blank cell, ``;`` and tab delimiters) score as the matrix written or are refused naming the cell.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

import rankme
from conftest import SMALL_REF, SMALL_Z, reference_rankme, score_file
from rankme import EmbeddingError
from rankme.cli import main
from rankme.io.files import load_embeddings
from rankme.scoring.source import score_source

pd = pytest.importorskip("pandas")

N, K = 60, 6
Z = np.random.default_rng(7).standard_normal((N, K)) * np.array([4.0, 2.5, 1.5, 0.9, 0.4, 0.15])
LABELS = np.random.default_rng(8).integers(0, 5, N)
KEEP = np.random.default_rng(9).random(N) < 0.7  # the rows a filtered frame keeps
PERM = np.random.default_rng(10).permutation(N)
INDEXES = ("none", "default", "named", "filtered", "shuffled")
EXTRAS = (None, "label", "Target", "y", "class", "id", "labels")
SEPS = (",", ";", "\t", "|")
MIXED_NAMES = pytest.mark.filterwarnings("ignore:The DataFrame has column names of mixed type")  # pandas' parquet


def _frame(index: str, names: str, extra: str | None) -> tuple[object, np.ndarray]:
    """A DataFrame as users build one, and the feature matrix it holds (rows in the frame's order)."""
    cols: list = list(range(K)) if names == "int" else [f"f{j}" for j in range(K)]
    df = pd.DataFrame(Z.copy(), columns=cols)
    if extra is not None:  # a label / target / id beside the features, first or last
        df.insert(0 if extra in ("Target", "id") else K, extra, LABELS if extra != "id" else np.arange(N) + 1000)
    if index == "named":
        df = df.iloc[PERM]
        df.index.name = "sample_id"
    elif index == "filtered":
        df = df[KEEP]
    elif index == "shuffled":
        df = df.iloc[PERM]
    return df, df[cols].to_numpy(dtype=np.float64)


def _as_written(m: np.ndarray, fmt: str | None) -> np.ndarray:
    """The matrix a reader can get back from values formatted with ``fmt`` (None: exact repr)."""
    return m if fmt is None else np.vectorize(lambda v: float(fmt % v))(m)


def _problem(path, truth: np.ndarray, excluded=(), **kw) -> str | None:
    """None when the file scores as ``truth`` (value, N, K) with a note naming each ``excluded`` column."""
    try:
        src = load_embeddings(path, **kw)
        res = score_source(src, ["rankme"], progress=False)
    except EmbeddingError as e:
        return f"refused: {e}"
    if (res.n, res.dim) != truth.shape:
        return f"N×K {res.n}×{res.dim}, want {truth.shape}; notes {src.notes}"
    want = reference_rankme(truth)
    if abs(res.metrics["rankme"] - want) > 1e-9 * want:
        return f"RankMe {res.metrics['rankme']!r}, want {want!r}"
    missing = [c for c in excluded if not any(repr(c) in n for n in src.notes)]
    return f"no note names {missing}: {src.notes}" if missing else None


def _report(problems: list[str]) -> None:
    assert not problems, f"{len(problems)} failing combination(s):\n" + "\n".join(problems[:20])


# -- pandas to_csv ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("extra", EXTRAS)
@pytest.mark.parametrize("index", INDEXES)
def test_pandas_to_csv(tmp_path, index, extra):
    """Every sep × float_format × column-name kind, index written or not, with a label/id column or none."""
    problems = []
    for names, sep, fmt in itertools.product(("int", "str"), SEPS, (None, "%.17g", "%.6f")):
        df, m = _frame(index, names, extra)
        p = tmp_path / f"{names}-{SEPS.index(sep)}-{fmt and fmt[2:-1]}.csv"
        df.to_csv(p, sep=sep, float_format=fmt, index=index != "none")
        excluded = ([] if index == "none" else ["sample_id" if index == "named" else "Unnamed: 0"])
        excluded += [extra] if extra is not None else []
        if (why := _problem(p, _as_written(m, fmt), excluded)) is not None:
            lines = p.read_text().splitlines()
            problems.append(f"{p.name} (index={index}, extra={extra}): {why}; header {lines[0][:60]!r}")
    _report(problems)


@pytest.mark.parametrize("index", ("none", "default", "shuffled"))
def test_pandas_to_csv_without_header_keeps_the_first_row(tmp_path, index):
    """``header=False``: the first line is data (N rows); a default or shuffled index (0..N-1) is not a feature."""
    problems = []
    for names, sep in itertools.product(("int", "str"), SEPS):
        df, m = _frame(index, names, None)
        p = tmp_path / f"{names}-{SEPS.index(sep)}.csv"
        df.to_csv(p, sep=sep, header=False, index=index != "none")
        if (why := _problem(p, m)) is not None:
            problems.append(f"{p.name} (index={index}): {why}")
    _report(problems)



@pytest.mark.parametrize("header", (True, False))
def test_pandas_to_csv_decimal_comma(tmp_path, header):
    """``decimal=","`` (Excel's default in much of Europe) with ``;``, tab and ``|``: read as the matrix written, with
    a note; with the ``,`` delimiter the quoted cells are refused, naming the decimal comma."""
    problems = []
    for index, names, sep, fmt in itertools.product(("none", "default", "shuffled"), ("int", "str"), SEPS[1:],
                                                    (None, "%.6f", "%.17g")):
        df, m = _frame(index, names, None)
        p = tmp_path / f"{index}-{names}-{SEPS.index(sep)}-{fmt and fmt[2:-1]}.csv"
        df.to_csv(p, sep=sep, decimal=",", float_format=fmt, header=header, index=index != "none")
        excluded = [] if index == "none" or not header else ["Unnamed: 0"]
        if (why := _problem(p, _as_written(m, fmt), excluded)) is not None:
            problems.append(f"{p.name}: {why}; first line {p.read_text().splitlines()[0][:60]!r}")
        elif not any("decimal separator" in n for n in load_embeddings(p).notes):
            problems.append(f"{p.name}: no note on the decimal comma")
    df, m = _frame("none", "str", None)
    df.to_csv(tmp_path / "z.tsv", sep="\t", decimal=",", header=header, index=False)
    if (why := _problem(tmp_path / "z.tsv", m)) is not None:
        problems.append(f"z.tsv: {why}")
    _report(problems)
    df.to_csv(tmp_path / "comma.csv", decimal=",", header=header, index=False)
    with pytest.raises(EmbeddingError, match=r"comma.csv: column '(f0|0)' holds numbers written with a decimal "
                                             r"comma, e\.g\. '[-\d]+,\d+' at data row 0 \(line [12]\)"):
        load_embeddings(tmp_path / "comma.csv")


@pytest.mark.parametrize("index", ("sample", "id", "two-levels", "named-levels", "text-level"))
def test_pandas_to_csv_named_and_multiindex(tmp_path, index):
    """An index pandas writes as leading columns: named (``rename_axis``), or two levels (``set_index([a, b])``),
    with or without a header: not features, excluded with a note naming them."""
    problems = []
    for header, sep in itertools.product((True, False), SEPS):
        df, m = _frame("shuffled", "str", None)
        if index in ("sample", "id"):
            df = df.rename_axis(index)
            levels = [index]
        else:
            first = np.arange(N) % 3 if index != "text-level" else np.array(["train", "val", "test"])[np.arange(N) % 3]
            df.index = pd.MultiIndex.from_arrays([first, np.arange(N) // 3])
            if index != "two-levels":
                df = df.rename_axis(["split", "i"])
            levels = ["split", "i"] if index != "two-levels" else ["Unnamed: 0", "Unnamed: 1"]
        p = tmp_path / f"{header}-{SEPS.index(sep)}.csv"
        df.to_csv(p, sep=sep, header=header)
        excluded = [c for c in (levels if header else ["0", "1"][: len(levels)]) if c != "split"]
        if (why := _problem(p, m, excluded)) is not None:
            problems.append(f"{p.name} (index={index}): {why}; first line {p.read_text().splitlines()[0][:40]!r}")
    _report(problems)


@pytest.mark.parametrize("sep", SEPS)
def test_one_missing_cell_is_an_error_whatever_its_spelling(tmp_path, sep):
    """One missing cell, in any spelling pandas reads as missing (its own list, and ``-``), written by
    ``to_csv(na_rep=...)`` (or ``numpy.savetxt``'s ``nan``): an error naming the column, the data row and the line,
    as for a blank cell; never a column dropped."""
    from pandas._libs.parsers import STR_NA_VALUES

    problems = []
    for spelling in sorted(STR_NA_VALUES | {"-"}):
        for header, row in itertools.product((True, False), (0, 5)):
            df, _ = _frame("none", "str", None)
            df.iloc[row, 2] = np.nan
            p = tmp_path / "na.csv"
            df.to_csv(p, sep=sep, na_rep=spelling, header=header, index=False)
            assert spelling == "-" or pd.read_csv(p, sep=sep, header=0 if header else None).isna().sum().sum() == 1
            col, line = ("f2", row + 2) if header else ("2", row + 1)
            want = f"column '{col}' has 1 missing value(s), first at data row {row} (line {line})"
            try:
                load_embeddings(p)
                problems.append(f"{spelling!r} (header={header}, row {row}): scored")
            except EmbeddingError as e:
                if want not in str(e):
                    problems.append(f"{spelling!r} (header={header}, row {row}): {e}")
    _report(problems)
    z = Z.copy()
    z[3, 1] = np.nan
    np.savetxt(tmp_path / "s.csv", z, delimiter="," if sep == "|" else sep)
    with pytest.raises(EmbeddingError, match=r"column '1' has 1 missing value\(s\), first at data row 3 \(line 4\)"):
        load_embeddings(tmp_path / "s.csv")


def test_tables_that_cannot_be_read_say_what_is_wrong(tmp_path):
    """MultiIndex columns (two header lines), quoted thousands separators and a stray text cell in a column of
    numbers: one line naming the problem and the fix, never a silently dropped column or a delimiter blamed."""
    df, _ = _frame("none", "str", None)
    multi = df.copy()
    multi.columns = pd.MultiIndex.from_tuples([("a" if j < 3 else "b", f"x{j}") for j in range(K)])
    for kw in ({}, {"index": False}):
        multi.to_csv(tmp_path / "multi.csv", **kw)
        with pytest.raises(EmbeddingError, match=r"multi.csv: has two header lines \('a' above 'x0'\): .*MultiIndex "
                                                 r"columns; flatten the names before writing"):
            load_embeddings(tmp_path / "multi.csv")
    (df * 1000).to_csv(tmp_path / "thousands.csv", float_format="{:,}".format, index=False)
    with pytest.raises(EmbeddingError, match=r"column 'f0' holds numbers with thousands separators, e\.g\. "
                                             r"'[-\d]+,\d{3}\.\d+' at data row \d+ \(line \d+\)") as err:
        load_embeddings(tmp_path / "thousands.csv")
    assert err.value.names == ("exclude",) and "exclude=" in str(err.value)
    text = df.astype(object)
    text.iloc[4, 3] = "#DIV/0!"
    text.to_csv(tmp_path / "div.csv", index=False)
    with pytest.raises(EmbeddingError, match=r"column 'f3' holds numbers and the text '#DIV/0!' at data row 4 "
                                             r"\(line 6\): fix or drop that cell"):
        load_embeddings(tmp_path / "div.csv")
    assert _problem(tmp_path / "div.csv", Z[:, [0, 1, 2, 4, 5]], exclude=["f3"]) is None


def test_all_integer_header_rows(tmp_path):
    """``0..K-1`` (pandas' default names) and ``1..K`` above non-integer data are headers; integer data stays data."""
    body = "\n".join(",".join(repr(float(v)) for v in row) for row in Z)
    for header in (",".join(map(str, range(K))), ",".join(map(str, range(1, K + 1)))):
        (tmp_path / "h.csv").write_text(header + "\n" + body + "\n")
        assert _problem(tmp_path / "h.csv", Z) is None, header
    ints = np.random.default_rng(3).integers(-9, 9, (N, K)).astype(np.float64)
    ints[0] = np.arange(K) + 1  # a first data row that looks like 1..K: the data below is integer, so it is data
    (tmp_path / "i.csv").write_text("\n".join(",".join(str(int(v)) for v in row) for row in ints) + "\n")
    assert _problem(tmp_path / "i.csv", ints) is None


def test_text_table_edge_cases(tmp_path):
    """``x,y`` coordinates are features; a trailing delimiter's empty column is dropped with a note; a ``#``-prefixed
    header names the columns; a ragged whitespace table is refused naming the line."""
    xy = Z[:, :2]
    df = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1]})
    df.to_csv(tmp_path / "xy.csv", index=False)
    assert _problem(tmp_path / "xy.csv", xy) is None
    (tmp_path / "trail.csv").write_text("".join(",".join(repr(float(v)) for v in row) + ",\n" for row in Z))
    assert _problem(tmp_path / "trail.csv", Z, [str(K)]) is None
    rows = "".join(f"{i},{float(a)!r},{float(b)!r}\n" for i, (a, b) in enumerate(xy))
    (tmp_path / "hash.csv").write_text("#id,f0,f1\n" + rows)
    assert _problem(tmp_path / "hash.csv", xy, ["id"]) is None
    (tmp_path / "ragged.txt.csv").write_text("1.5 2.5 3\n4.5 5\n")
    with pytest.raises(EmbeddingError, match=r"ragged.txt.csv: line 2 has 2 fields.*3 \(delimiter whitespace\)"):
        load_embeddings(tmp_path / "ragged.txt.csv")


# -- pandas to_parquet / to_feather -----------------------------------------------------------------------------
@MIXED_NAMES
@pytest.mark.parametrize("extra", EXTRAS)
@pytest.mark.parametrize("index", (*INDEXES, "kept"))
def test_pandas_to_parquet(tmp_path, index, extra):
    """Every compression × column-name kind × ``index=`` option: a stored index (``__index_level_0__``, or named in
    the pandas metadata) and a label/id column are not features."""
    pytest.importorskip("pyarrow.parquet")
    problems = []
    for names, compression in itertools.product(("int", "str"), ("snappy", "zstd", None)):
        df, m = _frame(index, names, extra)
        p = tmp_path / f"{names}-{compression}.parquet"
        if index == "kept":  # index=True stores even a RangeIndex as a column
            df.to_parquet(p, compression=compression, index=True)
        else:
            df.to_parquet(p, compression=compression, index=False if index == "none" else None)
        stored = {"kept": "__index_level_0__", "filtered": "__index_level_0__", "shuffled": "__index_level_0__",
                  "named": "sample_id"}.get(index)
        excluded = [c for c in (stored, extra) if c is not None]
        if (why := _problem(p, m, excluded)) is not None:
            problems.append(f"{p.name} (index={index}, extra={extra}): {why}")
    _report(problems)


@pytest.mark.parametrize("index", INDEXES)
def test_pandas_to_feather(tmp_path, index):
    """``to_feather`` (any compression) with its index kept, or moved to an ``index`` column by ``reset_index``."""
    pytest.importorskip("pyarrow.feather")
    problems = []
    for extra, compression, reset in itertools.product((None, "label", "y"), ("lz4", "zstd", "uncompressed"),
                                                       (False, True)):
        df, m = _frame(index, "str", extra)
        if reset:
            df = df.reset_index(drop=index == "none")
        p = tmp_path / f"{extra}-{compression}-{reset}.feather"
        df.to_feather(p, compression=compression)
        stored = {"filtered": "__index_level_0__", "shuffled": "__index_level_0__", "named": "sample_id"}.get(index)
        if reset and index != "none":
            stored = "sample_id" if index == "named" else "index"
        excluded = [c for c in (stored, extra) if c is not None]
        if (why := _problem(p, m, excluded)) is not None:
            problems.append(f"{p.name} (index={index}): {why}")
    _report(problems)



@pytest.mark.parametrize("index", INDEXES)
def test_pyarrow_ipc_stream_and_file(tmp_path, index):
    """``pyarrow.ipc.new_stream`` (the streaming format) reads as ``new_file`` does, whatever the suffix, with the
    pandas index in the schema's metadata not scored."""
    pa = pytest.importorskip("pyarrow")
    problems = []
    for writer, suffix in itertools.product(("stream", "file"), (".arrow", ".ipc", ".feather")):
        df, m = _frame(index, "str", "label")
        table = pa.Table.from_pandas(df)
        p = tmp_path / f"{writer}{suffix}"
        with (pa.ipc.new_stream if writer == "stream" else pa.ipc.new_file)(p, table.schema) as w:
            w.write_table(table)
        stored = {"filtered": "__index_level_0__", "shuffled": "__index_level_0__", "named": "sample_id"}.get(index)
        if (why := _problem(p, m, [c for c in (stored, "label") if c is not None])) is not None:
            problems.append(f"{p.name} (index={index}): {why}")
    _report(problems)
    (tmp_path / "junk.arrow").write_bytes(b"not arrow at all")
    with pytest.raises(EmbeddingError, match=r"junk.arrow: is not a readable Arrow IPC \(file or stream\) / Feather"):
        load_embeddings(tmp_path / "junk.arrow")

# -- numpy.savetxt ----------------------------------------------------------------------------------------------
def test_numpy_savetxt(tmp_path):
    """Every delimiter × header (none, names, ``0..K-1``, names with a label column) × comments × fmt."""
    problems = []
    headers = (None, "names", "range", "label")
    for i, (delim, header, comments, fmt) in enumerate(itertools.product(
            (",", " ", "\t"), headers, ("# ", ""), ("%.18e", "%.10g"))):
        m = np.column_stack([Z, LABELS]) if header == "label" else Z
        names = [f"f{j}" for j in range(K)] + (["label"] if header == "label" else [])
        text = {None: None, "range": delim.join(map(str, range(K)))}.get(header, delim.join(names))
        p = tmp_path / f"s{i}.csv"
        kw = {} if text is None else {"header": text}
        np.savetxt(p, m, fmt=fmt, delimiter=delim, comments=comments, **kw)
        if (why := _problem(p, _as_written(Z, fmt), ["label"] if header == "label" else [])) is not None:
            problems.append(f"{p.name} (delimiter={delim!r}, header={header}, comments={comments!r}, "
                            f"fmt={fmt}): {why}; first line {p.read_text().splitlines()[0][:50]!r}")
    _report(problems)


# -- hand-written tables: an index, an id column, a list column, a BOM, a blank cell, other delimiters ----------
def test_csv_with_pandas_default_index_scores_the_features_only(tmp_path):
    p = tmp_path / "z.csv"
    pd.DataFrame(SMALL_Z, columns=[f"f{i}" for i in range(8)]).to_csv(p)  # index column written by default
    src = load_embeddings(p)
    assert src.dim == 8 and rankme.rankme(src.array) == pytest.approx(SMALL_REF, rel=1e-9)
    assert any("pandas default index" in n for n in src.notes)
    pd.DataFrame(SMALL_Z).to_csv(tmp_path / "numeric_names.csv")  # header ",0,1,...,7"
    assert score_file(tmp_path / "numeric_names.csv") == pytest.approx(SMALL_REF, rel=1e-9)


def test_csv_id_column_is_excluded_and_columns_can_be_chosen(tmp_path):
    p = tmp_path / "z.csv"
    lines = ["id," + ",".join(f"f{i}" for i in range(8))]
    lines += [f"{1000 + i}," + ",".join(repr(float(v)) for v in row) for i, row in enumerate(SMALL_Z)]
    p.write_text("\n".join(lines) + "\n")
    src = load_embeddings(p)
    assert src.dim == 8 and any("identifier" in n and "'id'" in n for n in src.notes)
    assert rankme.rankme(src.array) == pytest.approx(SMALL_REF, rel=1e-9)
    assert load_embeddings(p, columns=["f0", "f1"]).dim == 2
    assert load_embeddings(p, exclude=["f7"]).dim == 7
    with pytest.raises(EmbeddingError, match="no column"):
        load_embeddings(p, columns=["nope"])


def test_parquet_id_and_list_embedding_column(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"id": np.arange(120), "embedding": list(SMALL_Z)}), tmp_path / "e.parquet")
    src = load_embeddings(tmp_path / "e.parquet")
    assert src.dim == 8 and rankme.rankme(src.array) == pytest.approx(SMALL_REF, rel=1e-9)
    assert any("list column 'embedding'" in n for n in src.notes)
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(SMALL_Z.ravel()), 8)
    pq.write_table(pa.table({"id": np.arange(120), "v": fixed}), tmp_path / "f.parquet")
    assert score_file(tmp_path / "f.parquet") == pytest.approx(SMALL_REF, rel=1e-9)
    ragged = [list(r) for r in SMALL_Z]
    ragged[5] = ragged[5][:7]
    pq.write_table(pa.table({"embedding": ragged}), tmp_path / "r.parquet")
    with pytest.raises(EmbeddingError, match=r"different lengths \(8 in row 0, 7 in row 5\)"):
        load_embeddings(tmp_path / "r.parquet")
    pq.write_table(pa.table({"a": [1.0, None, 3.0], "b": [1.0, 2.0, 3.0]}), tmp_path / "n.parquet")
    with pytest.raises(EmbeddingError, match=r"column 'a' has 1 missing value.*row 1"):
        load_embeddings(tmp_path / "n.parquet")


def test_csv_bom_blank_cell_and_delimiters(tmp_path):
    body = "\n".join(",".join(repr(float(v)) for v in row) for row in SMALL_Z) + "\n"
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + body.encode())
    src = load_embeddings(tmp_path / "bom.csv")
    assert src.n_rows == 120 and score_file(tmp_path / "bom.csv") == pytest.approx(SMALL_REF, rel=1e-9)
    (tmp_path / "semi.csv").write_text(body.replace(",", ";"))
    assert score_file(tmp_path / "semi.csv") == pytest.approx(SMALL_REF, rel=1e-9)
    (tmp_path / "z.tsv").write_text(body.replace(",", "\t"))
    assert score_file(tmp_path / "z.tsv") == pytest.approx(SMALL_REF, rel=1e-9)
    lines = body.splitlines()
    lines[3] = "," + lines[3].split(",", 1)[1]  # a blank cell in column 0 of data row 3
    (tmp_path / "blank.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(EmbeddingError, match=r"column '0' has 1 missing value\(s\), first at data row 3 \(line 4\)"):
        load_embeddings(tmp_path / "blank.csv")


# -- compressed CSV ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("compression", ("gzip", "bz2", "zip", "xz"))
def test_compressed_csv_is_refused_in_one_line(tmp_path, compression):
    """A compressed CSV (``z.csv.gz``, or compressed bytes behind a ``.csv`` name) is refused, saying to decompress."""
    df, _ = _frame("default", "str", None)
    suffix = {"gzip": "gz", "bz2": "bz2", "zip": "zip", "xz": "xz"}[compression]
    for p in (tmp_path / f"z.csv.{suffix}", tmp_path / "z.csv"):
        df.to_csv(p, compression=compression)
        with pytest.raises(EmbeddingError) as err:
            load_embeddings(p)
        msg = str(err.value)
        assert "\n" not in msg and msg.startswith(str(p)) and "decompress" in msg, msg


# -- the CLI ----------------------------------------------------------------------------------------------------
@MIXED_NAMES
def test_cli_scores_and_notes_the_excluded_columns(tmp_path, capsys):
    """``rankme score`` on a shuffled frame saved with its index and a label: value, N, K, and a note naming both."""
    df, m = _frame("shuffled", "int", "label")
    p = tmp_path / "z.csv"
    df.to_csv(p)
    assert main(["score", str(p), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "note:" in err and "'Unnamed: 0'" in err and "'label'" in err, err
    assert main(["score", str(p), "--json"]) == 0
    (res,) = json.loads(capsys.readouterr().out)
    assert (res["n"], res["dim"]) == (N, K)
    assert res["metrics"]["rankme"] == pytest.approx(reference_rankme(m), rel=1e-9)
    q = tmp_path / "z.parquet"
    df.to_parquet(q)
    assert main(["score", str(q), "--json"]) == 0
    (res,) = json.loads(capsys.readouterr().out)
    assert (res["n"], res["dim"]) == (N, K) and any("'__index_level_0__'" in n for n in res["notes"])
    assert res["metrics"]["rankme"] == pytest.approx(reference_rankme(m), rel=1e-9)


def test_cli_columns_override_and_exclude_adds(tmp_path, capsys):
    """``--columns`` scores exactly those columns (a label included); ``--exclude`` drops more columns, the
    automatic exclusions (index, label) still apply."""
    df, m = _frame("shuffled", "str", "label")
    p = tmp_path / "z.csv"
    df.to_csv(p)
    assert main(["score", str(p), "--json", "--columns", ",".join([*(f"f{j}" for j in range(K)), "label"])]) == 0
    (res,) = json.loads(capsys.readouterr().out)
    want = np.column_stack([m, df["label"].to_numpy()])
    assert res["dim"] == K + 1 and res["metrics"]["rankme"] == pytest.approx(reference_rankme(want), rel=1e-9)
    assert main(["score", str(p), "--json", "--exclude", "f5"]) == 0
    (res,) = json.loads(capsys.readouterr().out)
    assert res["dim"] == K - 1 and res["metrics"]["rankme"] == pytest.approx(reference_rankme(m[:, :-1]), rel=1e-9)
    df.to_csv(tmp_path / "z.csv.gz")
    assert main(["score", str(tmp_path / "z.csv.gz"), "--no-progress"]) == 2  # no file scored
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("rankme: error:") and "decompress" in line, line
