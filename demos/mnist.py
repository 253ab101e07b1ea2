"""第3章のデモ (本物の手書き数字)。使い方: python demos/mnist.py --out figures (tinygrad-jp demo mnist と同じ)

データは先に tinygrad-jp download mnist で一度だけダウンロードしておく。
"""

from tinygrad_jp.demos import script_main

if __name__ == "__main__":
    script_main("mnist")
