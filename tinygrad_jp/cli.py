"""コマンドライン: ``tinygrad-jp demo NAME [--out DIR] [--show]``、``tinygrad-jp demo all``、
``tinygrad-jp download mnist|fashion [--root DIR]``。"""

from __future__ import annotations

import argparse
import sys
import time

from . import __version__, datasets, demos


def _parser() -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:<20} {desc}" for name, (_, desc) in demos.DEMOS.items())
    all_line = f"  {'all':<20} すべてのデモを順に実行する (mnist はデータがあるときだけ)"
    p = argparse.ArgumentParser(
        prog="tinygrad-jp",
        description="tinygrad_jp: 第3章「活性化関数と最適化」の実験を実行する",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"デモ一覧:\n{listing}\n{all_line}",
    )
    p.add_argument("--version", action="version", version=f"tinygrad_jp {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    d = sub.add_parser("demo", help="章の実験を実行し、図を PNG で書き出す",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=f"デモ一覧:\n{listing}\n{all_line}")
    d.add_argument("name", help="デモの名前 (または all)")
    d.add_argument("--out", default="figures", help="図を書き出すフォルダ (なければ作る。既定: figures)")
    d.add_argument("--show", action="store_true", help="図をウィンドウでも表示する")
    d.add_argument("--interactive", action="store_true", help="backprop_steps で 1 ステップごとに Enter を待つ")
    dl = sub.add_parser("download", help="MNIST か Fashion-MNIST をダウンロードしてキャッシュに置く (一度だけ)")
    dl.add_argument("kind", choices=sorted(datasets.SOURCES), help="データセット (mnist: 手書き数字、fashion: 衣類)")
    dl.add_argument("--root", default=None,
                    help=f"置き場所 (既定: 環境変数 {datasets.ENV_VAR} か OS ごとのキャッシュフォルダ)")
    return p


def _download(kind: str, root: str | None) -> int:
    try:
        paths = datasets.download(kind, root)
    except datasets.DownloadError as e:
        print(f"tinygrad-jp: {e}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "download":
        return _download(args.kind, args.root)
    if args.command != "demo":
        _parser().print_help()
        return 0
    if args.interactive and not sys.stdin.isatty():
        print(f"tinygrad-jp: {demos.NO_TERMINAL}", file=sys.stderr)
        return 2
    names = demos.all_names() if args.name == "all" else [args.name]
    if args.name != "all" and args.name not in demos.DEMOS:
        print(f"tinygrad-jp: unknown demo {args.name!r}; available: {', '.join(demos.DEMOS)}, all", file=sys.stderr)
        return 2
    start = time.perf_counter()
    for name in names:
        print(f"###### {name} ######")
        began = time.perf_counter()
        options = {"interactive": True} if args.interactive and name == "backprop_steps" else {}
        for path in demos.run(name, args.out, show=args.show, **options):
            print(path)
        print(f"({name}: {time.perf_counter() - began:.1f} 秒)")
    if len(names) > 1:
        print(f"(合計 {time.perf_counter() - start:.1f} 秒)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
