"""第3章のデモ。使い方: python demos/optimizers.py --out figures (tinygrad-jp demo optimizers と同じ)"""

from tinygrad_jp.demos import script_main

if __name__ == "__main__":
    script_main("optimizers")
