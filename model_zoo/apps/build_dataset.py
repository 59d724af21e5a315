"""Build an MMCTR dataset from your own interaction log and item table (``model_zoo.datasets.builder``).

    # positive-only log: the latest interactions as positives, 3 popularity-tempered negatives each
    python -m model_zoo.apps.build_dataset --interactions log.csv --user-col user --item-col item --time-col ts \\
        --negatives 3 --negative-sampling popularity --items items.csv --item-text-cols title \\
        --category-col genres --category-sep '|' --name MyData --out data/MyData_build

    # rating log: label = rating >= 4, no sampled negatives
    python -m model_zoo.apps.build_dataset ... --rating-col rating --label-rule 'rating>=4' ...

    # MovieLens layouts (ratings.csv, movies.csv, tags.csv): every column preset
    python -m model_zoo.apps.build_dataset --preset movielens ../shared/data/ml-latest-small --name MovieLens \\
        --out data/MovieLens_build

then ``python run_expid.py --config <out> --expid <Model>_<name>`` for any registered model. Bad input (a missing
column, a non-numeric timestamp, an empty log, duplicate item ids, ...) prints one line naming the file, column, row
and value and exits with code 2; nothing is written then (a previous build at ``--out`` stays as it was).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any, Optional, Sequence, Tuple

from model_zoo.errors import ConfigError, ZooError

__all__ = ["build_parser", "main", "PRESETS"]

PRESETS = ("movielens",)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model_zoo.apps.build_dataset",
                                     description="Build MMCTR files (MicroLens_1M_x1 schema) + configs from a log.")
    src = parser.add_argument_group("interaction log")
    src.add_argument("--preset", nargs=2, metavar=("NAME", "DIR"), default=None,
                     help=f"a known layout in DIR: {', '.join(PRESETS)} (ratings.csv, movies.csv, tags.csv); "
                          f"explicit options below override it")
    src.add_argument("--interactions", metavar="FILE", help="log file (.csv, .tsv, .parquet)")
    src.add_argument("--user-col", help="user id column")
    src.add_argument("--item-col", help="item id column (also of --items unless --items-item-col)")
    src.add_argument("--time-col", help="timestamp column (numbers, or dates in parquet)")
    src.add_argument("--rating-col", default=None, help="rating column read by --label-rule")
    mode = parser.add_argument_group("labels (one mode)")
    mode.add_argument("--label-rule", default=None, help="rating log: e.g. 'rating>=4' (no sampled negatives)")
    mode.add_argument("--negatives", type=int, default=None, help="positive-only log: negatives per positive (3)")
    mode.add_argument("--negative-sampling", choices=("uniform", "popularity"), default=None,
                      help="negative sampler (default popularity)")
    mode.add_argument("--popularity-alpha", type=float, default=None, help="popularity exponent (0.75)")
    mode.add_argument("--popularity-counts", choices=("log", "train", "split"), default=None,
                      help="the sampler's items and counts: every interaction (log, default), train ones only, "
                           "or up to the end of each row's split (split: no item before it first occurs)")
    items = parser.add_argument_group("items")
    items.add_argument("--items", metavar="FILE", help="item table (.csv, .tsv, .parquet), one row per item")
    items.add_argument("--items-item-col", default=None, help="its item id column (default --item-col)")
    items.add_argument("--item-text-cols", nargs="+", default=None, help="text columns, joined with '. '")
    items.add_argument("--category-col", default=None, help="column of separated categories, e.g. genres")
    items.add_argument("--category-sep", default=None, help="category separator (default '|')")
    items.add_argument("--ignore-category", action="append", default=None, help="category value to drop (repeat)")
    items.add_argument("--tags", metavar="FILE", default=None, help="extra (item, tag) applications, e.g. tags.csv")
    items.add_argument("--tags-item-col", default=None, help="item column of --tags (default the items' one)")
    items.add_argument("--tags-col", default=None, help="tag column of --tags (default 'tag')")
    items.add_argument("--images", metavar="DIR", default=None, help="covers named {raw item id}.jpg|jpeg|png")
    items.add_argument("--text-vectors", metavar="FILE", default=None,
                       help="precomputed text vectors: parquet with the item column and one list<float> column")
    items.add_argument("--image-vectors", metavar="FILE", default=None, help="precomputed image vectors (same layout)")
    out = parser.add_argument_group("output")
    out.add_argument("--name", required=True, help="dataset id; expids are <Model>_<name>")
    out.add_argument("--out", required=True, metavar="DIR", help="output directory (new, empty or a previous build)")
    out.add_argument("--max-len", type=int, default=100, help="stored history length (100)")
    out.add_argument("--split", choices=("leave-last-out", "time"), default="leave-last-out", help="split rule")
    out.add_argument("--time-split", type=float, nargs=2, default=(0.8, 0.9), metavar=("VALID_Q", "TEST_Q"),
                     help="--split time: timestamp quantiles where valid and test start (0.8 0.9)")
    out.add_argument("--min-history", type=int, default=1, help="rows with a shorter history are not emitted (1)")
    out.add_argument("--min-tag-items", type=int, default=2, help="drop extra tags used on fewer items (2)")
    out.add_argument("--seed", type=int, default=2025, help="seed of the negative sampler and the PCA (2025)")
    out.add_argument("--cache-dir", default=None, help="encoder cache (default <out>/encoder_cache)")
    out.add_argument("--model-root", default=None, help="checkpoints of the generated expids (default Base's)")
    out.add_argument("--epochs", type=int, default=None, help="override epochs of every generated expid")
    out.add_argument("--quiet", action="store_true",
                     help="no progress bars (there are none anyway unless stderr is a terminal)")
    return parser


def _pick(explicit: Any, preset_value: Any, what: str) -> Any:
    """The explicit option, else the preset's value; ConfigError when neither is given."""
    value = explicit if explicit is not None else preset_value
    if value is None:
        raise ConfigError(f"missing {what} (or use --preset)")
    return value


def _of(source: Any, attr: str) -> Any:
    """``source.attr``, or None without a preset."""
    return getattr(source, attr) if source is not None else None


def _sources(args: argparse.Namespace) -> Tuple[Any, Any]:
    """InteractionSource and ItemSource from the preset (if any) overridden by the explicit options."""
    from model_zoo.datasets.builder import InteractionSource, ItemSource, movielens_sources

    base_log = base_items = None
    if args.preset:
        name, root = args.preset
        if name not in PRESETS:
            raise ConfigError(f"--preset {name!r}; expected one of {PRESETS}")
        base_log, base_items = movielens_sources(root)
    interactions = InteractionSource(
        path=_pick(args.interactions, _of(base_log, "path"), "--interactions FILE"),
        user_col=_pick(args.user_col, _of(base_log, "user_col"), "--user-col"),
        item_col=_pick(args.item_col, _of(base_log, "item_col"), "--item-col"),
        time_col=_pick(args.time_col, _of(base_log, "time_col"), "--time-col"),
        rating_col=args.rating_col if args.rating_col is not None else _of(base_log, "rating_col"))
    item_col = args.items_item_col or args.item_col or _of(base_items, "item_col")
    text_cols = args.item_text_cols if args.item_text_cols is not None else _of(base_items, "text_cols")
    if text_cols is None and args.text_vectors is None:
        raise ConfigError("missing --item-text-cols (e.g. --item-text-cols title) or --text-vectors FILE")
    items = ItemSource(
        path=_pick(args.items, _of(base_items, "path"), "--items FILE"),
        item_col=_pick(item_col, None, "--item-col or --items-item-col"),
        text_cols=tuple(text_cols or ()),
        category_col=args.category_col if args.category_col is not None else _of(base_items, "category_col"),
        category_sep=args.category_sep or _of(base_items, "category_sep") or "|",
        ignore_categories=tuple(args.ignore_category if args.ignore_category is not None
                                else (_of(base_items, "ignore_categories") or ())),
        tags_path=args.tags if args.tags is not None else _of(base_items, "tags_path"),
        tags_item_col=args.tags_item_col or _of(base_items, "tags_item_col"),
        tags_col=args.tags_col or _of(base_items, "tags_col") or "tag",
        images_dir=args.images, text_vectors=args.text_vectors, image_vectors=args.image_vectors)
    return interactions, items


def run(args: argparse.Namespace) -> Any:
    """Build the dataset described by parsed ``args``; returns the :class:`BuildResult`."""
    from model_zoo.datasets.builder import BuildOptions, build_dataset

    if args.label_rule is not None and any(v is not None for v in (args.negatives, args.negative_sampling,
                                                                    args.popularity_alpha, args.popularity_counts)):
        raise ConfigError("--label-rule (rating log) cannot be combined with --negatives / --negative-sampling / "
                          "--popularity-alpha (positive-only log); expected one mode")
    interactions, items = _sources(args)
    defaults = {f.name: f.default for f in dataclasses.fields(BuildOptions)}
    options = BuildOptions(
        name=args.name, max_len=args.max_len, split=args.split.replace("-", "_"), time_split=tuple(args.time_split),
        min_history=args.min_history, negatives=args.negatives,
        negative_sampling=args.negative_sampling or defaults["negative_sampling"],
        popularity_alpha=(args.popularity_alpha if args.popularity_alpha is not None
                          else defaults["popularity_alpha"]),
        popularity_counts=args.popularity_counts or defaults["popularity_counts"],
        label_rule=args.label_rule, min_tag_items=args.min_tag_items, seed=args.seed, cache_dir=args.cache_dir,
        model_root=args.model_root, epochs=args.epochs, progress=not args.quiet and sys.stderr.isatty())
    return build_dataset(interactions, items, args.out, options)


def _summary(result: Any) -> str:
    m = result.manifest
    c = m["counts"]
    lines = [f"{m['dataset_id']} -> {result.out_dir} ({m['mode']}, {m['seconds']:.1f} s)",
             f"  {c['users']:,} users, {c['items']:,} items, {c['interactions']:,} interactions, {c['tags']:,} tags"]
    for split, s in c["splits"].items():
        cold, new = c["cold_target_share"].get(split), c["new_target_share"].get(split)
        lines.append(f"  {split:<5} {s['rows']:>9,} rows, label rate {s['label_rate']:.4f}"
                     + (f", cold-item rows {cold:.2%}, new-item rows {new:.2%}" if cold is not None else ""))
    lines.append(f"  run:   python run_expid.py --config {result.out_dir} --expid <expid>")
    lines.append(f"  expids: {', '.join(result.expids)}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; 0 on success, 2 on bad input or options (one line on stderr)."""
    args = build_parser().parse_args(argv)
    try:
        result = run(args)
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(_summary(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
